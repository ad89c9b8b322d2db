"""Scored as it was: a fit snapshot is taken at each handoff, later edits of the lead do
not rewrite it, and the backtest scores each handed lead with it (events up to the
handoff only); leads without one fall back to today's fit and are counted apart."""

import datetime as dt

import pytest

from leadflow.lifecycle import lead_transition
from leadflow.models import Company
from privacy.participants import person_erase, person_export
from privacy.person import person_find
from scoring.models import DraftHandoffScore, FitSnapshot
from scoring.selectors import preview_from_run, scoring_model_preview
from scoring.services import (
    fit_snapshot_take,
    preview_run_execute,
    preview_run_start,
    scoring_model_clone,
)
from tests.factories import EngagementEventFactory, LeadFactory
from tests.scoring.conftest import T0, make_model, page_views, publish

DAY = dt.timedelta(days=1)
NOW = T0 + 60 * DAY
HANDOFF = T0 + 5 * DAY


def hand_over(lead, then: str):
    lead_transition(lead=lead, to_stage="mql", actor="test", at=HANDOFF)
    lead_transition(lead=lead, to_stage=then, actor="test", at=HANDOFF + DAY)


def edit(lead, **fields):
    for name, value in fields.items():
        setattr(lead, name, value)
    lead.save()


@pytest.fixture
def history(db):
    """Published: an executive gets 20 fit points, a page view 10; MQL at fit 20 and
    engagement 20. The draft asks for engagement 30."""
    published = make_model(
        fit=[{"field": "role", "operator": "equals", "value": "executive", "points": 20}],
        engagement=[{"kind": "page_view", "points": 10}],
        fit_threshold=20,
        engagement_threshold=20,
    )
    publish(published)
    draft = scoring_model_clone(source=published)
    draft.engagement_threshold = 30
    draft.save()
    leads = {name: LeadFactory(email=f"{name}@example.jp", role="executive") for name in "abce"}
    leads["d"] = LeadFactory(email="d@example.jp", role="staff")
    leads["f"] = LeadFactory(email="f@example.jp", role="executive")
    for name, n in {"a": 3, "b": 2, "c": 3, "d": 3, "e": 3, "f": 5}.items():
        page_views(leads[name], n)
    # After the handoff: ten more views each; they must not count in the backtest. (One
    # at the very instant would: it may be the event that made the lead an MQL.)
    for lead in leads.values():
        for i in range(10):
            at = HANDOFF + dt.timedelta(seconds=1) + i * DAY
            EngagementEventFactory(lead=lead, kind="page_view", occurred_at=at)
    hand_over(leads["a"], "sql")
    hand_over(leads["b"], "sql")
    hand_over(leads["c"], "recycled")  # rejected by sales
    hand_over(leads["d"], "sql")
    hand_over(leads["e"], "sql")
    # e was handed over before snapshots were kept: it has none.
    FitSnapshot.objects.filter(lead=leads["e"]).delete()
    # Later edits: c and e are staff now, d became an executive.
    edit(leads["c"], role="staff")
    edit(leads["d"], role="executive")
    edit(leads["e"], role="staff")
    return published, draft, leads


@pytest.mark.django_db
def test_the_snapshot_taken_at_the_handoff_survives_an_edit_of_the_lead(history):
    _published, _draft, leads = history
    lead = leads["c"]
    lead.refresh_from_db()

    snapshot = FitSnapshot.objects.get(lead=lead)

    assert lead.role == "staff"
    assert (snapshot.role, snapshot.email, snapshot.taken_at) == (
        "executive",
        "c@example.jp",
        HANDOFF,
    )
    assert FitSnapshot.objects.count() == 4  # a, b, c, d (e's predates the snapshots)


@pytest.mark.django_db
def test_the_backtest_scores_each_lead_with_the_fit_and_events_it_had_at_its_handoff(history):
    _published, draft, _leads = history
    # At the handoff (3 views = 30, 2 views = 20; fit from the snapshot, e: today's):
    #   a  fit 20 eng 30  won       published yes  draft yes
    #   b  fit 20 eng 20  won       published yes  draft no (30 needed)
    #   c  fit 20 eng 30  rejected  published yes  draft yes  (staff today: would be 0)
    #   d  fit  0 eng 30  won       neither                   (executive today: would be 20)
    #   e  fit  0 eng 30  won       neither  (no snapshot: today's fit, staff)
    preview = scoring_model_preview(draft=draft, as_of=NOW)

    won, rejected = preview.backtest
    assert preview.history_leads == 5
    assert preview.history_today_fit == 1
    assert (won.leads, won.published, won.draft) == (4, 2, 1)
    assert (rejected.leads, rejected.published, rejected.draft) == (1, 1, 1)


@pytest.mark.django_db
def test_the_job_stores_the_same_backtest_lead_by_lead(history):
    _published, draft, leads = history
    run = preview_run_start(draft=draft, enqueue=False)
    preview_run_execute(run_id=run.pk, batch_size=2)
    run.refresh_from_db()

    stored = preview_from_run(run=run)
    rows = {
        row.lead_id: (
            row.fit,
            row.engagement,
            row.qualifies,
            row.published_qualifies,
            row.won,
            row.rejected,
            row.fit_from_snapshot,
        )
        for row in DraftHandoffScore.objects.filter(run=run)
    }

    won, rejected = stored.backtest
    assert (stored.history_leads, stored.history_today_fit) == (5, 1)
    assert (won.leads, won.published, won.draft) == (4, 2, 1)
    assert (rejected.leads, rejected.published, rejected.draft) == (1, 1, 1)
    ids = {lead.pk: name for name, lead in leads.items()}
    assert {ids[lead_id]: row for lead_id, row in rows.items()} == {
        "a": (20, 30, True, True, True, False, True),
        "b": (20, 20, False, True, True, False, True),
        "c": (20, 30, True, True, False, True, True),
        "d": (0, 30, False, False, True, False, True),
        "e": (0, 30, False, False, True, False, False),
    }


@pytest.mark.django_db
def test_the_preview_page_says_how_many_leads_use_todays_fit(client, marketer, history):
    _published, draft, _leads = history
    client.force_login(marketer)

    page = client.get(f"/admin/scoring/scoringmodel/{draft.pk}/preview/")

    assert "1 of the 5 has no record of its data at the handoff" in page.content.decode()


@pytest.mark.django_db
def test_a_snapshot_keeps_company_fields_and_is_taken_once_per_moment(db):
    company = Company.objects.create(name="東京精密", employee_count=120, industry="manufacturing")
    lead = LeadFactory(company=company, attributes={"budget": "yes"})
    bare = LeadFactory(company=None)

    fit_snapshot_take(lead=lead, at=HANDOFF)
    fit_snapshot_take(lead=lead, at=HANDOFF)  # a second call for the same handoff
    fit_snapshot_take(lead=bare, at=HANDOFF)

    kept = FitSnapshot.objects.get(lead=lead)
    assert FitSnapshot.objects.filter(lead=lead).count() == 1
    assert (kept.company_name, kept.company_employee_count, kept.company_industry) == (
        "東京精密",
        120,
        "manufacturing",
    )
    assert kept.attributes == {"budget": "yes"}
    alone = FitSnapshot.objects.get(lead=bare)
    assert (alone.company_name, alone.company_employee_count) == ("", None)


@pytest.mark.django_db
def test_erasing_a_person_removes_their_snapshots_and_the_export_lists_them(history):
    _published, _draft, leads = history
    person = person_find(lead_id=leads["a"].pk)

    exported = person_export(person=person)
    counts = person_erase(person=person)

    assert [row["role"] for row in exported["fit_snapshots"]] == ["executive"]
    assert counts["scoring.FitSnapshot"] == 1
    assert not FitSnapshot.objects.filter(lead=leads["a"]).exists()
