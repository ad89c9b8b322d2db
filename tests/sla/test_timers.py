"""Timers start with the handoff, are met by the event that satisfies them, and follow a
reassignment without restarting. The clock is pinned; 11-23 (Mon) is 勤労感謝の日."""

from __future__ import annotations

import pytest

from handoff import activities, routing, verdicts
from handoff.models import Handoff, RejectionReason
from leadflow.errors import DomainError
from leadflow.models import Stage
from sla.models import SlaSettings, SlaTimer, TimerPolicy
from tests.sla.conftest import at, mql


def _timers(handoff):
    return {t.kind: t for t in SlaTimer.objects.filter(handoff=handoff)}


def test_each_handoff_gets_its_timers_at_the_mql(kanto, time_machine):
    time_machine.move_to(at(11, 18, 10), tick=False)
    alice = kanto[1][0]

    handoff = mql(alice, at(11, 18, 10))  # Wednesday 10:00

    timers = _timers(handoff)
    first, verdict = timers["first_contact"], timers["verdict"]
    # 24 clock hours; the reminder at 75 % = 18 h.
    assert (first.started_at, first.due_at, first.remind_at) == (
        at(11, 18, 10),
        at(11, 19, 10),
        at(11, 19, 4),
    )
    assert (first.status, first.rep, first.rep_since) == ("pending", alice, at(11, 18, 10))
    # Five business days after Wednesday: Thu, Fri, (weekend, holiday) Tue, Wed, Thu 18:00.
    assert verdict.due_at == at(11, 26, 18)
    # 75 % of its 53 business hours (8 + 5 × 9) = 39 h 45 min: Wed 8, Thu 9, Fri 9, Tue 9,
    # then 4 h 45 min into Wednesday 11-25.
    assert verdict.remind_at == at(11, 25, 13, 45)
    assert verdict.counts_business_time is True


def test_first_contact_counted_in_business_hours_when_the_policy_says_so(kanto, time_machine):
    TimerPolicy.objects.filter(kind="first_contact").update(counts_business_time=True)
    time_machine.move_to(at(11, 20, 17), tick=False)

    handoff = mql(kanto[1][0], at(11, 20, 17))  # Friday 17:00

    # 24 business hours: Fri 1 h, (weekend, holiday) Tue 9 h, Wed 9 h, Thu 5 h → 14:00.
    assert _timers(handoff)["first_contact"].due_at == at(11, 26, 14)


def test_first_activity_meets_the_first_contact_on_time(kanto, time_machine):
    time_machine.move_to(at(11, 18, 12), tick=False)
    alice = kanto[1][0]
    handoff = mql(alice, at(11, 18, 10))

    activities.activity_log(handoff=handoff, actor=alice, kind="call", outcome="no_answer")
    activities.activity_log(
        handoff=handoff, actor=alice, kind="email", outcome="other", at=at(11, 18, 11)
    )

    first = _timers(handoff)["first_contact"]
    assert (first.status, first.met_at, first.on_time) == ("met", at(11, 18, 11), True)
    assert _timers(handoff)["verdict"].status == "pending"


def test_a_late_first_contact_is_a_breach_met_late_without_escalation(kanto, time_machine):
    time_machine.move_to(at(11, 19, 15), tick=False)
    alice = kanto[1][0]
    handoff = mql(alice, at(11, 18, 10))

    activities.activity_log(handoff=handoff, actor=alice, kind="call", outcome="reached")

    first = _timers(handoff)["first_contact"]
    assert (first.status, first.met_at, first.on_time) == ("breached", at(11, 19, 15), False)
    assert first.breached_at == at(11, 19, 15)
    assert first.escalated_at == at(11, 19, 15)  # done, only late: nobody is escalated


def test_a_call_logged_after_the_sweep_but_made_in_time_counts_in_time(kanto, time_machine):
    from sla.services import timers_sweep

    time_machine.move_to(at(11, 19, 11), tick=False)
    alice = kanto[1][0]
    handoff = mql(alice, at(11, 18, 10))
    timers_sweep()
    assert _timers(handoff)["first_contact"].status == "breached"

    activities.activity_log(
        handoff=handoff, actor=alice, kind="call", outcome="reached", at=at(11, 19, 9)
    )

    first = _timers(handoff)["first_contact"]
    assert (first.status, first.met_at, first.on_time) == ("met", at(11, 19, 9), True)


def test_accept_meets_the_verdict_and_an_open_first_contact(kanto, time_machine):
    time_machine.move_to(at(11, 19, 9), tick=False)
    alice = kanto[1][0]
    handoff = mql(alice, at(11, 18, 10))

    verdicts.handoff_accept(handoff=handoff, actor=alice, bant={"budget": True, "need": True})

    timers = _timers(handoff)
    assert (timers["verdict"].status, timers["verdict"].met_at) == ("met", at(11, 19, 9))
    assert (timers["first_contact"].status, timers["first_contact"].met_at) == (
        "met",
        at(11, 19, 9),
    )
    assert Handoff.objects.get(pk=handoff.pk).first_contact_at is None  # the KPI is not fooled


def test_a_late_verdict_is_breached(kanto, time_machine):
    time_machine.move_to(at(11, 27, 9), tick=False)
    alice = kanto[1][0]
    handoff = mql(alice, at(11, 18, 10))
    for when in (at(11, 18, 11), at(11, 19, 11), at(11, 20, 11)):
        activities.activity_log(
            handoff=handoff, actor=alice, kind="call", outcome="no_answer", at=when
        )

    verdicts.handoff_reject(
        handoff=handoff,
        actor=alice,
        reason=RejectionReason.objects.get(code="not_reachable"),
        comment="不通",
    )

    verdict = _timers(handoff)["verdict"]
    assert (verdict.status, verdict.met_at, verdict.on_time) == ("breached", at(11, 27, 9), False)


def test_not_reachable_needs_three_attempts(kanto, time_machine):
    time_machine.move_to(at(11, 19, 9), tick=False)
    alice = kanto[1][0]
    handoff = mql(alice, at(11, 18, 10))
    for _attempt in range(2):
        activities.activity_log(handoff=handoff, actor=alice, kind="call", outcome="no_answer")
    not_reachable = RejectionReason.objects.get(code="not_reachable")

    with pytest.raises(DomainError) as refused:
        verdicts.handoff_reject(
            handoff=handoff, actor=alice, reason=not_reachable, comment="2回不在"
        )

    assert refused.value.code == "too_few_attempts"
    assert refused.value.message == (
        "“Not reachable” needs at least 3 contact attempts; 2 logged so far. "
        "Log your calls and e-mails first."
    )
    handoff.refresh_from_db()
    assert handoff.status == "open"
    assert handoff.lead.stage == Stage.MQL
    assert _timers(handoff)["verdict"].status == "pending"

    # Another reason needs no attempts; the agreed number is editable.
    SlaSettings.objects.update_or_create(pk=1, defaults={"min_attempts_not_reachable": 2})
    verdicts.handoff_reject(handoff=handoff, actor=alice, reason=not_reachable, comment="不通")
    assert Handoff.objects.get(pk=handoff.pk).status == "rejected"


def test_reassignment_keeps_the_clock_and_moves_the_attribution(kanto, time_machine):
    time_machine.move_to(at(11, 18, 20), tick=False)
    _team, (alice, bob), manager = kanto
    handoff = mql(alice, at(11, 18, 10))
    before = _timers(handoff)

    routing.handoff_reassign(handoff=handoff, to_rep=bob, actor=manager, reason="休暇")

    after = _timers(handoff)
    for kind in ("first_contact", "verdict"):
        assert after[kind].due_at == before[kind].due_at  # the customer's clock runs on
        assert after[kind].started_at == at(11, 18, 10)
        assert (after[kind].rep, after[kind].rep_since) == (bob, at(11, 18, 20))


def test_a_met_timer_keeps_the_rep_who_met_it(kanto, time_machine):
    time_machine.move_to(at(11, 18, 20), tick=False)
    _team, (alice, bob), manager = kanto
    handoff = mql(alice, at(11, 18, 10))
    activities.activity_log(handoff=handoff, actor=alice, kind="call", outcome="reached")

    routing.handoff_reassign(handoff=handoff, to_rep=bob, actor=manager, reason="担当変更")

    timers = _timers(handoff)
    assert timers["first_contact"].rep == alice
    assert timers["verdict"].rep == bob


def test_a_switched_off_policy_starts_no_timer_and_edits_do_not_move_running_ones(
    kanto, time_machine
):
    time_machine.move_to(at(11, 18, 10), tick=False)
    alice = kanto[1][0]
    running = mql(alice, at(11, 18, 10))
    TimerPolicy.objects.filter(kind="verdict").update(is_active=False)
    TimerPolicy.objects.filter(kind="first_contact").update(amount=48)

    later = mql(alice, at(11, 18, 10))

    assert set(_timers(later)) == {"first_contact"}
    assert _timers(later)["first_contact"].due_at == at(11, 20, 10)
    assert _timers(running)["first_contact"].due_at == at(11, 19, 10)


def test_a_queued_handoff_is_timed_from_the_mql_without_a_rep(kanto, time_machine):
    from tests.handoff.helpers import set_profile

    time_machine.move_to(at(11, 18, 10), tick=False)
    _team, reps, manager = kanto
    for rep in reps:
        set_profile(rep, away=True)
    from leadflow.lifecycle import lead_transition
    from tests.factories import LeadFactory

    lead = LeadFactory()
    lead_transition(lead=lead, to_stage=Stage.MQL, actor="scoring")
    handoff = Handoff.objects.get(lead=lead)
    assert handoff.assigned_to is None
    assert {t.rep for t in _timers(handoff).values()} == {None}

    time_machine.move_to(at(11, 18, 15), tick=False)
    routing.handoff_reassign(handoff=handoff, to_rep=reps[1], actor=manager)
    first = _timers(handoff)["first_contact"]
    assert (first.rep, first.rep_since, first.due_at) == (reps[1], at(11, 18, 15), at(11, 19, 10))
