"""Preview and backtest of a draft against a hand-built history."""

import datetime as dt

import pytest

from leadflow.lifecycle import lead_transition
from leadflow.models import Stage
from scoring.models import EngagementRule
from scoring.selectors import scoring_model_changes, scoring_model_preview
from scoring.services import scoring_model_clone
from tests.factories import EngagementEventFactory, LeadFactory
from tests.scoring.conftest import T0, make_model, publish

DAY = dt.timedelta(days=1)
NOW = T0 + 60 * DAY


def views(lead, n, start):
    for i in range(n):
        EngagementEventFactory(
            lead=lead, kind="page_view", occurred_at=start + dt.timedelta(hours=i)
        )


def history(lead, *moves):
    """Walk a lead through stages: ("mql", day), ("sql", day) ... from "known"."""
    for stage, day in moves:
        lead_transition(lead=lead, to_stage=stage, actor="test", at=T0 + day * DAY)


@pytest.fixture
def scenario(db):
    # Published: 10 per page view, MQL at 30. Draft: MQL at 20, and unsubscribing costs 20.
    published = make_model(
        engagement=[{"kind": "page_view", "points": 10}], fit_threshold=0, engagement_threshold=30
    )
    publish(published)
    draft = scoring_model_clone(source=published)
    draft.engagement_threshold = 20
    draft.save()
    EngagementRule.objects.create(model=draft, kind="unsubscribe", points=-20, position=1)
    leads = {name: LeadFactory(email=f"{name}@example.jp") for name in "abcdef"}
    views(leads["a"], 3, T0)  # both would have made it an MQL
    views(leads["b"], 2, T0)  # only the draft
    views(leads["c"], 3, T0)  # only the published model (the unsubscribe counts in the draft)
    EngagementEventFactory(lead=leads["c"], kind="unsubscribe", occurred_at=T0 + 4 * DAY)
    views(leads["d"], 4, T0)  # both
    views(leads["e"], 1, T0)  # neither at its handoff...
    views(leads["e"], 10, T0 + 20 * DAY)  # ...these came after it and must not count
    views(leads["f"], 2, T0)  # never handed over
    history(leads["a"], ("mql", 5), ("sql", 6))
    history(leads["b"], ("mql", 5), ("sql", 6))
    history(leads["c"], ("mql", 5), ("recycled", 7))
    history(leads["d"], ("mql", 5), ("recycled", 7))
    history(leads["e"], ("mql", 5), ("sql", 6), ("customer", 30))
    return published, draft, leads


@pytest.mark.django_db
def test_the_backtest_scores_each_lead_as_of_its_handoff(scenario):
    _published, draft, _leads = scenario

    preview = scoring_model_preview(draft=draft, as_of=NOW)

    assert preview.history_leads == 5
    won, rejected = preview.backtest
    # Became SQL/customer: a, b, e. Published would have sent a; the draft a and b.
    assert (won.leads, won.published, won.draft) == (3, 1, 2)
    assert won.published_share == pytest.approx(100 / 3)
    assert won.draft_share == pytest.approx(200 / 3)
    assert won.better is True
    # Rejected by sales: c, d. Published would have sent both; the draft only d.
    assert (rejected.leads, rejected.published, rejected.draft) == (2, 2, 1)
    assert rejected.draft_share == 50.0
    assert rejected.better is True


@pytest.mark.django_db
def test_the_preview_counts_mqls_now_and_lists_the_leads_that_change(scenario):
    _published, draft, _leads = scenario

    preview = scoring_model_preview(draft=draft, as_of=NOW)

    # Now, with every event: e has 110 points under both models.
    assert preview.total_leads == 6
    assert preview.now_published.qualify == 4  # a, c, d, e
    assert preview.now_draft.qualify == 5  # a, b, d, e, f
    assert (preview.gained, preview.lost, preview.mql_change) == (2, 1, "+1")
    # Recycled 53 days ago, past the 30-day cool-down: c and d move; a, b, e are with sales.
    assert (preview.now_published.moves, preview.now_published.with_sales) == (2, 2)  # c, d
    assert (preview.now_draft.moves, preview.now_draft.with_sales) == (2, 3)  # d, f
    changes = scoring_model_changes(draft=draft, as_of=NOW)
    assert changes.total == 3
    assert {(c.email, c.gained) for c in changes.leads} == {
        ("b@example.jp", True),
        ("f@example.jp", True),
        ("c@example.jp", False),
    }
    c = next(c for c in changes.leads if c.email == "c@example.jp")
    assert (c.published_engagement, c.draft_engagement, c.stage) == (30, 10, Stage.RECYCLED)
    assert [(r.label, r.before, r.after) for r in c.rules] == [("Unsubscribe", 0, -20)]
