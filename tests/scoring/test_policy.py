"""The MQL policy: fit AND engagement, the hand-raiser, the recycling cool-down, and
leads that scoring must never move."""

import datetime as dt

import pytest
import time_machine

from leadflow.lifecycle import lead_transition
from leadflow.models import Stage, StageTransition
from scoring.services import lead_score_attributes, lead_score_event
from tests.factories import EngagementEventFactory, LeadFactory
from tests.scoring.conftest import T0, make_model, publish

DAY = dt.timedelta(days=1)


@pytest.fixture
def model(db):
    model = make_model(
        fit=[
            {"field": "role", "operator": "equals", "value": "executive", "points": 35},
            {"field": "role", "operator": "equals", "value": "manager", "points": 25},
            {"field": "role", "operator": "equals", "value": "staff", "points": 20},
            {"field": "role", "operator": "equals", "value": "other", "points": 19},
        ],
        engagement=[
            {"kind": "email_click", "points": 10},
            {"kind": "consultation", "points": 5},
        ],
        fit_threshold=30,
        engagement_threshold=50,
        hand_raiser_kind="consultation",
        hand_raiser_min_fit=20,
        recycle_cooldown_days=30,
    )
    publish(model)
    return model


def click(lead, at, kind="email_click", times=1):
    for i in range(times):
        event = EngagementEventFactory(
            lead=lead, kind=kind, occurred_at=at + dt.timedelta(minutes=i)
        )
        with time_machine.travel(at + dt.timedelta(minutes=i), tick=False):
            lead_score_event(event=event)


@pytest.mark.django_db
def test_fit_and_engagement_must_both_reach_their_thresholds(model):
    engaged_low_fit = LeadFactory(role="manager")
    fit_low_engagement = LeadFactory(role="executive")
    click(engaged_low_fit, T0, times=6)
    click(fit_low_engagement, T0, times=4)

    for lead in (engaged_low_fit, fit_low_engagement):
        lead.refresh_from_db()
        assert lead.stage == Stage.KNOWN
    assert StageTransition.objects.count() == 0

    click(fit_low_engagement, T0 + DAY)  # engagement 50 now
    fit_low_engagement.refresh_from_db()
    assert fit_low_engagement.stage == Stage.MQL
    move = StageTransition.objects.get(lead=fit_low_engagement)
    assert (move.from_stage, move.to_stage, move.actor_system) == ("known", "mql", "scoring")
    assert move.reason == f"Scoring v{model.version}: fit 35 ≥ 30 and engagement 50 ≥ 50."
    assert move.context == {
        "scoring_model": model.pk,
        "version": model.version,
        "rule": "thresholds",
        "fit": 35,
        "engagement": 50,
    }


@pytest.mark.django_db
def test_a_hand_raiser_with_enough_fit_is_an_mql_at_once(model):
    staff = LeadFactory(role="staff")  # fit 20
    other = LeadFactory(role="other")  # fit 19

    click(staff, T0, kind="consultation")
    click(other, T0, kind="consultation")

    staff.refresh_from_db()
    other.refresh_from_db()
    assert staff.stage == Stage.MQL
    assert StageTransition.objects.get(lead=staff).context["rule"] == "hand_raiser"
    assert other.stage == Stage.KNOWN


@pytest.mark.django_db
def test_a_recycled_lead_waits_out_the_cool_down(model):
    lead = LeadFactory(role="executive", stage=Stage.MQL)
    lead_transition(lead=lead, to_stage=Stage.RECYCLED, actor="test", at=T0)

    click(lead, T0 + 29 * DAY, times=5)  # meets the policy, but inside 30 days
    lead.refresh_from_db()
    assert lead.stage == Stage.RECYCLED

    click(lead, T0 + 31 * DAY)
    lead.refresh_from_db()
    assert lead.stage == Stage.MQL
    assert StageTransition.objects.filter(lead=lead, to_stage=Stage.MQL).count() == 1


@pytest.mark.django_db
def test_a_hand_raiser_before_recycling_does_not_requalify_the_lead(model):
    lead = LeadFactory(role="manager", stage=Stage.MQL)
    click(lead, T0, kind="consultation")  # already MQL: nothing happens
    lead_transition(lead=lead, to_stage=Stage.RECYCLED, actor="test", at=T0 + DAY)

    click(lead, T0 + 40 * DAY)  # after the cool-down, but the hand was raised before
    lead.refresh_from_db()
    assert lead.stage == Stage.RECYCLED

    click(lead, T0 + 41 * DAY, kind="consultation")
    lead.refresh_from_db()
    assert lead.stage == Stage.MQL


@pytest.mark.django_db
@pytest.mark.parametrize(
    "stage", [Stage.MQL, Stage.SQL, Stage.OPPORTUNITY, Stage.CUSTOMER, Stage.DISQUALIFIED]
)
def test_leads_at_mql_or_beyond_are_never_moved(model, stage):
    lead = LeadFactory(role="executive", stage=stage)

    click(lead, T0, times=6)
    click(lead, T0, kind="consultation")

    lead.refresh_from_db()
    assert lead.stage == stage
    assert StageTransition.objects.count() == 0


@pytest.mark.django_db
def test_an_attribute_change_can_make_an_mql(model):
    lead = LeadFactory(role="staff")
    click(lead, T0, times=5)
    lead.refresh_from_db()
    assert lead.stage == Stage.KNOWN

    lead.role = "executive"
    lead.save()
    with time_machine.travel(T0 + dt.timedelta(hours=1), tick=False):
        score = lead_score_attributes(lead=lead)

    assert (score.fit, score.engagement) == (35, 50)
    lead.refresh_from_db()
    assert lead.stage == Stage.MQL


@pytest.mark.django_db
def test_without_a_published_model_nothing_is_scored():
    from scoring.models import ScoringModel

    ScoringModel.objects.update(status="archived")
    lead = LeadFactory()
    event = EngagementEventFactory(lead=lead)

    assert lead_score_event(event=event) is None
    assert lead_score_attributes(lead=lead) is None
