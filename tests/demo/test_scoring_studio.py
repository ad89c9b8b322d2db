"""The demo reads sensibly in the scoring studio: events before their handoffs, enough
verdicts for the calibration to have a shape, a backtest of the published model that does
not read as broken, and at least one suggestion."""

from __future__ import annotations

import pytest
from django.db.models import Min

from leadflow.models import EngagementEvent, Stage, StageTransition
from scoring.calibration import calibration_for
from scoring.models import ModelStatus, ScoringModel
from scoring.selectors import scoring_model_preview
from scoring.services import scoring_model_clone
from scoring.suggestions import LOWER, feedback_for

pytestmark = [pytest.mark.xdist_group("demo"), pytest.mark.usefixtures("demo_data")]


@pytest.mark.django_db
def test_the_demo_reads_sensibly_in_the_scoring_studio():
    demo = ScoringModel.objects.get(status=ModelStatus.PUBLISHED)

    c = calibration_for(demo)
    # 170 past handoffs (leadflow.demo.history) and the 40 decided leads of the plan.
    assert c.total.leads == 210
    assert c.missing_history == 0  # every scored MQL had its events before its handoff
    deciles = c.deciles()
    assert len(deciles) == 10 and all(d.counts.enough for d in deciles)
    top, bottom = deciles[0].counts, deciles[-1].counts
    assert top.sql_rate > 3 * bottom.sql_rate  # higher scores became SQL more often
    p = c.current
    assert p.precision_enough and p.recall_enough
    assert p.recall > 80

    # The scoring's MQLs had their events before their handoff.
    handoffs = dict(
        StageTransition.objects.filter(to_stage=Stage.MQL, actor_system="scoring")
        .values("lead_id")
        .annotate(at=Min("occurred_at"))
        .values_list("lead_id", "at")
    )
    before = {
        lead_id
        for lead_id, at in EngagementEvent.objects.values_list("lead_id", "occurred_at")
        if lead_id in handoffs and at <= handoffs[lead_id]
    }
    assert handoffs and before == set(handoffs)

    # The backtest of the published model does not read as broken: the model that made
    # them MQLs would have made nearly all of them MQLs again.
    preview = scoring_model_preview(draft=scoring_model_clone(source=demo))
    won, _rejected = preview.backtest
    assert won.published_share > 80

    # Leads that only browsed product pages were mostly turned down for want of budget.
    first = feedback_for(demo).suggestions[0]
    assert (first.kind, first.rule_label, first.before, first.after) == (
        LOWER,
        "製品ページ閲覧",
        5,
        1,
    )
    assert (first.group_hits, first.group_leads) == (24, 40)
