import datetime as dt

import pytest
import time_machine

from handoff import activities, verdicts
from handoff.models import (
    Activity,
    ActivityKind,
    ActivityOutcome,
    Handoff,
    HandoffPolicy,
    HandoffStatus,
    RejectionReason,
)
from leadflow import lifecycle
from leadflow.errors import DomainError, InvalidTransition
from leadflow.models import Lead, Stage, StageTransition
from tests.handoff.helpers import make_mql, make_team

TOKYO = dt.timezone(dt.timedelta(hours=9))
NOW = dt.datetime(2026, 11, 2, 10, 0, tzinfo=TOKYO)


@pytest.fixture
def handoff(db):
    make_team(reps=1, default=True)
    return make_mql()


def _transitions(handoff):
    return list(
        StageTransition.objects.filter(lead=handoff.lead).values_list("from_stage", "to_stage")
    )


def test_rejection_reasons_are_seeded_with_both_languages(db):
    reasons = list(RejectionReason.objects.values_list("code", "label_ja", "label_en"))
    assert [code for code, _ja, _en in reasons] == [
        "not_reachable",
        "no_budget",
        "no_authority",
        "timing",
        "competitor",
        "not_target",
        "duplicate",
        "bad_data",
        "other",
    ]
    assert reasons[1] == ("no_budget", "予算がない", "No budget")


def test_accept_with_one_bant_answer_is_refused_and_changes_nothing(handoff):
    with pytest.raises(DomainError) as caught:
        verdicts.handoff_accept(
            handoff=handoff, actor=handoff.assigned_to, bant={"budget": True, "need": False}
        )

    assert caught.value.code == "bant_too_few"
    assert caught.value.message == (
        "To accept as SQL, at least 2 of budget, authority, need and timeline must be yes "
        "(1 checked)."
    )
    assert caught.value.fields == {"bant": [caught.value.message]}
    stored = Handoff.objects.get(pk=handoff.pk)
    assert (stored.status, stored.decided_at, stored.bant_budget) == (
        HandoffStatus.OPEN,
        None,
        None,
    )
    assert Lead.objects.get(pk=handoff.lead_id).stage == Stage.MQL
    assert _transitions(handoff) == [("known", "mql")]


def test_accept_with_two_bant_answers_makes_an_sql(handoff):
    rep = handoff.assigned_to

    with time_machine.travel(NOW, tick=False):
        result = verdicts.handoff_accept(
            handoff=handoff, actor=rep, bant={"budget": True, "timeline": True}
        )

    stored = Handoff.objects.get(pk=handoff.pk)
    assert result.status == stored.status == HandoffStatus.ACCEPTED
    assert stored.bant == {"budget": True, "authority": False, "need": False, "timeline": True}
    assert (stored.decided_at, stored.decided_by) == (NOW, rep)
    assert Lead.objects.get(pk=handoff.lead_id).stage == Stage.SQL
    sql = StageTransition.objects.get(lead=handoff.lead, to_stage=Stage.SQL)
    assert sql.actor_user == rep
    assert sql.reason == "Accepted by sales (BANT 2/4)."
    assert sql.context == {
        "handoff_id": handoff.pk,
        "bant": {"budget": True, "authority": False, "need": False, "timeline": True},
    }


def test_the_bant_minimum_is_configurable(handoff):
    HandoffPolicy.objects.update_or_create(pk=1, defaults={"bant_min_yes": 3})

    with pytest.raises(DomainError, match="at least 3 of budget"):
        verdicts.handoff_accept(
            handoff=handoff, actor=handoff.assigned_to, bant={"budget": True, "need": True}
        )
    verdicts.handoff_accept(
        handoff=handoff,
        actor=handoff.assigned_to,
        bant={"budget": True, "need": True, "authority": True},
    )
    assert Handoff.objects.get(pk=handoff.pk).status == HandoffStatus.ACCEPTED


def test_unknown_bant_items_are_refused(handoff):
    with pytest.raises(DomainError, match="Unknown BANT item"):
        verdicts.handoff_accept(
            handoff=handoff, actor=handoff.assigned_to, bant={"budget": True, "money": True}
        )


def test_reject_without_reason_and_comment_names_both_and_changes_nothing(handoff):
    with pytest.raises(DomainError) as caught:
        verdicts.handoff_reject(
            handoff=handoff, actor=handoff.assigned_to, reason=None, comment=" "
        )

    assert caught.value.code == "rejection_incomplete"
    assert caught.value.fields == {
        "reason": ["Choose a reason."],
        "comment": ["Write a comment for marketing."],
    }
    assert Handoff.objects.get(pk=handoff.pk).status == HandoffStatus.OPEN
    assert Lead.objects.get(pk=handoff.lead_id).stage == Stage.MQL
    assert _transitions(handoff) == [("known", "mql")]


def test_reject_with_a_reason_but_no_comment_is_refused(handoff):
    reason = RejectionReason.objects.get(code="timing")
    with pytest.raises(DomainError) as caught:
        verdicts.handoff_reject(
            handoff=handoff, actor=handoff.assigned_to, reason=reason, comment=""
        )
    assert caught.value.fields == {"comment": ["Write a comment for marketing."]}


def test_reject_with_reason_and_comment_recycles_the_lead_and_records_both(handoff):
    rep = handoff.assigned_to
    reason = RejectionReason.objects.get(code="no_budget")

    with time_machine.travel(NOW, tick=False):
        verdicts.handoff_reject(
            handoff=handoff, actor=rep, reason=reason, comment="予算は来期。4月に再連絡"
        )

    stored = Handoff.objects.get(pk=handoff.pk)
    assert (stored.status, stored.rejection_reason, stored.rejection_comment) == (
        HandoffStatus.REJECTED,
        reason,
        "予算は来期。4月に再連絡",
    )
    assert (stored.decided_at, stored.decided_by) == (NOW, rep)
    assert Lead.objects.get(pk=handoff.lead_id).stage == Stage.RECYCLED
    recycled = StageTransition.objects.get(lead=handoff.lead, to_stage=Stage.RECYCLED)
    assert recycled.occurred_at == NOW
    assert recycled.reason == "No budget: 予算は来期。4月に再連絡"
    assert recycled.context == {
        "handoff_id": handoff.pk,
        "rejection_reason": "no_budget",
        "rejection_comment": "予算は来期。4月に再連絡",
    }


def test_a_reason_switched_off_in_the_admin_is_refused(handoff):
    reason = RejectionReason.objects.get(code="other")
    reason.is_active = False
    reason.save()
    with pytest.raises(DomainError) as caught:
        verdicts.handoff_reject(
            handoff=handoff, actor=handoff.assigned_to, reason=reason, comment="x"
        )
    assert caught.value.fields == {"reason": ["This reason is no longer offered; choose another."]}


def test_a_decided_handoff_cannot_be_decided_again(handoff):
    rep = handoff.assigned_to
    verdicts.handoff_accept(handoff=handoff, actor=rep, bant={"budget": True, "need": True})

    with pytest.raises(DomainError, match=r"already decided \(Accepted \(SQL\)\)"):
        verdicts.handoff_reject(
            handoff=handoff,
            actor=rep,
            reason=RejectionReason.objects.get(code="timing"),
            comment="changed my mind",
        )
    assert Lead.objects.get(pk=handoff.lead_id).stage == Stage.SQL


def test_a_second_mql_after_recycling_gets_a_new_handoff(handoff):
    from leadflow.lifecycle import lead_transition

    verdicts.handoff_reject(
        handoff=handoff,
        actor=handoff.assigned_to,
        reason=RejectionReason.objects.get(code="timing"),
        comment="next quarter",
    )
    lead_transition(lead=handoff.lead, to_stage=Stage.MQL, actor="scoring")

    statuses = list(
        Handoff.objects.filter(lead=handoff.lead).order_by("id").values_list("status", flat=True)
    )
    assert statuses == [HandoffStatus.REJECTED, HandoffStatus.OPEN]


def test_the_first_activity_is_the_first_contact(handoff):
    rep = handoff.assigned_to
    with time_machine.travel(NOW, tick=False):
        first = activities.activity_log(
            handoff=handoff,
            actor=rep,
            kind=ActivityKind.CALL,
            outcome=ActivityOutcome.NO_ANSWER,
            note="不在",
        )
    with time_machine.travel(NOW + dt.timedelta(hours=3), tick=False):
        activities.activity_log(
            handoff=handoff, actor=rep, kind=ActivityKind.EMAIL, outcome=ActivityOutcome.REPLIED
        )

    assert (first.at, first.by, first.note) == (NOW, rep, "不在")
    assert Handoff.objects.get(pk=handoff.pk).first_contact_at == NOW
    assert Activity.objects.filter(handoff=handoff).count() == 2


def test_an_activity_logged_late_for_an_earlier_time_moves_the_first_contact(handoff):
    rep = handoff.assigned_to
    with time_machine.travel(NOW, tick=False):
        activities.activity_log(
            handoff=handoff, actor=rep, kind=ActivityKind.EMAIL, outcome=ActivityOutcome.REPLIED
        )
        activities.activity_log(
            handoff=handoff,
            actor=rep,
            kind=ActivityKind.CALL,
            outcome=ActivityOutcome.REACHED,
            at=NOW - dt.timedelta(hours=1),
        )
    assert Handoff.objects.get(pk=handoff.pk).first_contact_at == NOW - dt.timedelta(hours=1)


def test_bad_activities_are_refused_with_field_errors(handoff):
    rep = handoff.assigned_to
    with time_machine.travel(NOW, tick=False), pytest.raises(DomainError) as caught:
        activities.activity_log(
            handoff=handoff,
            actor=rep,
            kind="fax",
            outcome="great",
            at=NOW + dt.timedelta(days=1),
        )
    assert caught.value.fields == {
        "kind": ["Choose call, e-mail, meeting or other."],
        "outcome": ["Choose the outcome."],
        "at": ["An activity cannot be in the future."],
    }
    assert Activity.objects.count() == 0
    assert Handoff.objects.get(pk=handoff.pk).first_contact_at is None


def test_no_activities_on_a_rejected_handoff(handoff):
    rep = handoff.assigned_to
    verdicts.handoff_reject(
        handoff=handoff,
        actor=rep,
        reason=RejectionReason.objects.get(code="duplicate"),
        comment="dup",
    )
    with pytest.raises(DomainError, match="was rejected"):
        activities.activity_log(handoff=handoff, actor=rep, kind="call", outcome="reached")


def test_after_sql_opportunity_then_won(handoff):
    rep = handoff.assigned_to
    verdicts.handoff_accept(handoff=handoff, actor=rep, bant={"budget": True, "need": True})

    lifecycle.lead_mark_opportunity(lead=handoff.lead, actor=rep)
    won = lifecycle.lead_mark_won(lead=handoff.lead, actor="sfa:salesforce", reason="Closed won")

    assert Lead.objects.get(pk=handoff.lead_id).stage == Stage.CUSTOMER
    assert (won.actor_system, won.reason, won.context) == (
        "sfa:salesforce",
        "Closed won",
        {"handoff_id": handoff.pk},
    )


def test_lost_needs_a_reason_and_recycles(handoff):
    rep = handoff.assigned_to
    verdicts.handoff_accept(handoff=handoff, actor=rep, bant={"budget": True, "need": True})

    with pytest.raises(DomainError, match="Say why the deal was lost"):
        lifecycle.lead_mark_lost(lead=handoff.lead, actor=rep, reason="")
    lost = lifecycle.lead_mark_lost(lead=handoff.lead, actor=rep, reason="競合に決定")

    assert Lead.objects.get(pk=handoff.lead_id).stage == Stage.RECYCLED
    assert lost.context == {"handoff_id": handoff.pk, "lost_reason": "競合に決定"}


def test_after_sql_moves_need_an_sql(handoff):
    with pytest.raises(
        InvalidTransition, match="Only an SQL can become an opportunity; this lead is MQL"
    ):
        lifecycle.lead_mark_opportunity(lead=handoff.lead, actor=handoff.assigned_to)
    with pytest.raises(InvalidTransition, match="can be lost; this lead is MQL"):
        lifecycle.lead_mark_lost(lead=handoff.lead, actor=handoff.assigned_to, reason="x")
    assert Lead.objects.get(pk=handoff.lead_id).stage == Stage.MQL
