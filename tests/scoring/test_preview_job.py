"""The preview as a job: computed in batches into the draft's stored scores, read back
with the same figures the live preview gives, kept until the draft changes, and shown
with a progress panel that polls until the job is done."""

import datetime as dt

import pytest
import time_machine

from leadflow.lifecycle import lead_transition
from scoring import selectors
from scoring.models import (
    DraftLeadScore,
    EngagementRule,
    FitCategory,
    PreviewRun,
    PreviewStatus,
)
from scoring.selectors import (
    preview_from_run,
    preview_run_changes,
    preview_run_current,
    preview_scores_sql,
    scoring_model_changes,
    scoring_model_preview,
)
from scoring.services import (
    preview_run_execute,
    preview_run_start,
    preview_run_step,
    scoring_model_clone,
)
from scoring.tasks import preview_run_task
from tests.factories import LeadFactory
from tests.scoring.conftest import T0, make_model, page_views, publish

DAY = dt.timedelta(days=1)
NOW = T0 + 60 * DAY


@pytest.fixture
def studio(db):
    """Published: 10 per page view, MQL at engagement 30. Draft: MQL at 20. Six leads
    with 3, 2, 1, 4, 2, 0 views; a and d were handed to sales (a won, d rejected)."""
    published = make_model(
        categories=[{"name": "size", "min_points": 0, "max_points": 20}],
        engagement=[{"kind": "page_view", "points": 10, "cap_points": 100}],
        fit_threshold=0,
        engagement_threshold=30,
    )
    publish(published)
    draft = scoring_model_clone(source=published)
    draft.engagement_threshold = 20
    draft.save()
    leads = {name: LeadFactory(email=f"{name}@example.jp") for name in "abcdef"}
    for name, n in zip("abcdef", (3, 2, 1, 4, 2, 0), strict=True):
        page_views(leads[name], n)
    lead_transition(lead=leads["a"], to_stage="mql", actor="test", at=T0 + 5 * DAY)
    lead_transition(lead=leads["a"], to_stage="sql", actor="test", at=T0 + 6 * DAY)
    lead_transition(lead=leads["d"], to_stage="mql", actor="test", at=T0 + 5 * DAY)
    lead_transition(lead=leads["d"], to_stage="recycled", actor="test", at=T0 + 7 * DAY)
    return published, draft, leads


def finished(draft, batch_size=2):
    with time_machine.travel(NOW, tick=False):
        run = preview_run_start(draft=draft, enqueue=False)
        preview_run_execute(run_id=run.pk, batch_size=batch_size)
    run.refresh_from_db()
    return run


@pytest.mark.django_db
def test_the_stored_preview_has_the_live_previews_figures(studio):
    _published, draft, _leads = studio

    run = finished(draft)
    stored = preview_from_run(run=run)
    live = scoring_model_preview(draft=draft, as_of=NOW)

    # Worked out: published qualifies a, d (engagement ≥ 30); the draft a, b, d, e (≥ 20).
    # a is SQL: it stays with sales. d was recycled on day 7 and now is day 60, past the
    # 30-day cool-down: it moves under both. b and e move under the draft only.
    assert (stored.total_leads, stored.gained, stored.lost) == (6, 2, 0)
    assert (stored.now_published.qualify, stored.now_draft.qualify) == (2, 4)
    assert (stored.now_draft.moves, stored.now_draft.with_sales) == (3, 1)
    assert (stored.now_published.moves, stored.now_published.with_sales) == (1, 1)
    assert stored.history_leads == 2
    assert [(r.leads, r.published, r.draft) for r in stored.backtest] == [(1, 1, 1), (1, 1, 1)]
    assert (run.status, run.done, run.history_done, run.percent) == (PreviewStatus.DONE, 6, 2, 100)
    for name in ("total_leads", "gained", "lost", "now_published", "now_draft", "history_leads"):
        assert getattr(stored, name) == getattr(live, name)
    assert stored.backtest == live.backtest


@pytest.mark.django_db
def test_the_stored_changed_leads_match_the_live_list(studio):
    _published, draft, leads = studio
    run = finished(draft)

    stored = preview_run_changes(run=run)
    live = scoring_model_changes(draft=draft, as_of=NOW)
    moves = preview_run_changes(run=run, only=selectors.MOVES, search="e@example")

    assert [c.email for c in stored.leads] == ["b@example.jp", "e@example.jp"]
    assert stored.leads == live.leads
    assert stored.total == live.total == 2
    assert [(c.email, c.draft_engagement) for c in moves.leads] == [("e@example.jp", 20)]
    assert [(r.before, r.after) for r in stored.leads[0].rules] == []  # same rules: policy only
    assert DraftLeadScore.objects.filter(run=run).count() == 6
    assert leads["f"].pk in set(DraftLeadScore.objects.values_list("lead_id", flat=True))


@pytest.mark.django_db
def test_reopening_an_unchanged_draft_reads_the_stored_run(studio):
    _published, draft, _leads = studio
    run = finished(draft)
    rule = EngagementRule.objects.get(model=draft)
    rule.label = "Web page"  # a label changes no score
    rule.save()

    assert preview_run_start(draft=draft, enqueue=False) == run
    assert preview_run_current(draft=draft) == run
    assert PreviewRun.objects.count() == 1


def _points(draft):
    EngagementRule.objects.filter(model=draft).update(points=11)


def _cap(draft):
    EngagementRule.objects.filter(model=draft).update(cap_points=50)


def _decay(draft):
    EngagementRule.objects.filter(model=draft).update(half_life_days=30)


def _category(draft):
    FitCategory.objects.filter(model=draft).update(max_points=15)


def _fit_threshold(draft):
    draft.fit_threshold = 5
    draft.save()


def _hand_raiser(draft):
    draft.hand_raiser_kind = "consultation"
    draft.save()


def _hand_raiser_fit(draft):
    draft.hand_raiser_min_fit = 0
    draft.save()


def _cooldown(draft):
    draft.recycle_cooldown_days = 90
    draft.save()


def _new_rule(draft):
    EngagementRule.objects.create(model=draft, kind="email_open", points=1, position=5)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change",
    [
        _points,
        _cap,
        _decay,
        _category,
        _fit_threshold,
        _hand_raiser,
        _hand_raiser_fit,
        _cooldown,
        _new_rule,
    ],
)
def test_any_change_that_can_move_a_score_makes_the_stored_preview_stale(studio, change):
    _published, draft, _leads = studio
    run = finished(draft)

    change(draft)
    draft.refresh_from_db()

    assert preview_run_current(draft=draft) is None
    fresh = preview_run_start(draft=draft, enqueue=False)
    assert fresh != run and fresh.status == PreviewStatus.QUEUED


@pytest.mark.django_db
def test_a_draft_edited_while_its_job_runs_stops_that_job_and_the_next_one_clears_it(studio):
    _published, draft, _leads = studio
    with time_machine.travel(NOW, tick=False):
        old = preview_run_start(draft=draft, enqueue=False)
        assert preview_run_step(run_id=old.pk, time_budget=0, batch_size=2) is True  # start
        assert preview_run_step(run_id=old.pk, time_budget=0, batch_size=2) is True  # a, b
        _points(draft)

        assert preview_run_step(run_id=old.pk, time_budget=60, batch_size=2) is False
        old.refresh_from_db()
        assert (old.status, old.done) == (PreviewStatus.RUNNING, 2)

        new = preview_run_start(draft=draft, enqueue=False)
        preview_run_execute(run_id=new.pk, batch_size=2)

    assert list(PreviewRun.objects.values_list("pk", flat=True)) == [new.pk]
    assert DraftLeadScore.objects.count() == 6


@pytest.mark.django_db
def test_the_task_scores_one_time_budget_then_hands_over_to_itself(studio, monkeypatch):
    _published, draft, _leads = studio
    run = preview_run_start(draft=draft, enqueue=False)
    again = []
    monkeypatch.setattr(preview_run_task, "delay", lambda *args: again.append(args))
    monkeypatch.setattr("scoring.tasks.TIME_BUDGET_SECONDS", 0.0)

    preview_run_task(run.pk)  # the start: totals and two slices of the six leads
    run.refresh_from_db()
    slices = [(p.phase, p.finished) for p in run.slices.all()]
    assert (again, run.status, run.total, run.history_total) == ([(run.pk,)], "running", 6, 2)
    assert (run.done, slices) == (0, [("now", False), ("now", False)])
    again.pop()
    preview_run_task(run.pk)  # the first slice's four leads now (one batch), then its history
    run.refresh_from_db()
    slices = [(p.phase, p.finished) for p in run.slices.all()]
    assert (again, run.done, run.percent) == ([(run.pk,)], 4, 50)  # 4 of 6 + 2 units
    assert slices == [("history", False), ("now", False)]

    while again:
        again.pop()
        preview_run_task(run.pk)
    run.refresh_from_db()
    assert run.status == PreviewStatus.DONE
    preview_run_task(run.pk)  # delivered once more: nothing to do, nothing queued
    assert again == []


@pytest.mark.django_db
def test_the_preview_page_shows_the_jobs_progress_until_it_is_done(
    client, marketer, studio, settings, django_capture_on_commit_callbacks
):
    _published, draft, _leads = studio
    settings.SCORING_PREVIEW_INLINE_LEADS = 0  # the size where the page must not compute
    url = f"/admin/scoring/scoringmodel/{draft.pk}/preview/"

    with time_machine.travel(NOW, tick=False):
        client.force_login(marketer)  # in the travelled time: the session must not expire
        with django_capture_on_commit_callbacks() as callbacks:
            waiting = client.get(url)
        run = PreviewRun.objects.get()
        polling = client.get(url + "progress/")
        changes = client.get(url + "changes/")
        preview_run_execute(run_id=run.pk)
        done = client.get(url + "progress/")
        with django_capture_on_commit_callbacks() as again:
            reopened = client.get(url)

    assert len(callbacks) == 2 and run.status == PreviewStatus.QUEUED  # a task per slice
    html = waiting.content.decode()
    assert f'hx-get="{url}progress/" hx-trigger="every 2s"' in html
    assert "Leads scored now: 0 / 0" in html
    assert "Leads meeting the MQL policy" not in html
    assert "What the draft changes" in html  # the diff needs no job
    assert "HX-Refresh" not in polling and 'hx-trigger="every 2s"' in polling.content.decode()
    assert "The preview is being computed" in changes.content.decode()
    assert done["HX-Refresh"] == "true" and "hx-trigger" not in done.content.decode()
    assert len(again) == 0 and PreviewRun.objects.count() == 1
    assert "Publishing the draft now moves 3 leads to MQL." in reopened.content.decode()


@pytest.mark.django_db
def test_compute_again_starts_a_fresh_run_for_the_same_draft(client, marketer, studio):
    _published, draft, leads = studio
    url = f"/admin/scoring/scoringmodel/{draft.pk}/preview/"
    with time_machine.travel(NOW, tick=False):
        client.force_login(marketer)
        first = client.get(url)
        page_views(leads["c"], 2)  # c now has 3 views: it qualifies under both

        recomputed = client.post(url)
        page = client.get(url)

    assert (first.status_code, recomputed.status_code) == (200, 302)
    assert PreviewRun.objects.count() == 1  # the new run removed the old one
    assert "Publishing the draft now moves 4 leads to MQL." in page.content.decode()


@pytest.mark.django_db
def test_a_published_model_has_no_preview(client, marketer, studio):
    published, _draft, _leads = studio
    client.force_login(marketer)

    page = client.get(f"/admin/scoring/scoringmodel/{published.pk}/preview/")

    assert page.status_code == 302
    assert page["Location"] == f"/admin/scoring/scoringmodel/{published.pk}/change/"
    assert not PreviewRun.objects.exists()


def _rows(sql):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql.text, sql.params)
        return sorted(cursor.fetchall())


@pytest.mark.django_db
def test_other_reads_get_each_models_stored_scores_by_lead(studio):
    published, draft, leads = studio
    assert preview_scores_sql(model=draft) is None  # never previewed
    finished(draft)
    ids = {lead.pk: name for name, lead in leads.items()}

    draft_rows = _rows(preview_scores_sql(model=draft))
    published_rows = _rows(preview_scores_sql(model=published))
    handoffs = _rows(preview_scores_sql(model=draft, at_handoff=True))

    # The same rules, so the same scores (3 views: 30 points); only the thresholds differ.
    expected = {"a": 30, "b": 20, "c": 10, "d": 40, "e": 20, "f": 0}
    assert {ids[r[0]]: (r[1], r[2]) for r in draft_rows} == {
        name: (0, points) for name, points in expected.items()
    }
    assert published_rows == draft_rows
    assert [(ids[r[0]], r[1], r[2], bool(r[5]), bool(r[6]), bool(r[7])) for r in handoffs] == [
        ("a", 0, 30, True, False, True),
        ("d", 0, 40, False, True, True),
    ]
    _points(draft)
    assert preview_scores_sql(model=draft) is None  # the draft changed since
    assert _rows(preview_scores_sql(model=published)) == published_rows
