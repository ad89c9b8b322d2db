"""Replay a draft routing plan (#19 item 4): the figures on a hand-built history, worked
out by hand below; nothing live written; a changed draft invalidates its replay.

The clock is pinned on the default business calendar (9:00–18:00 Asia/Tokyo, weekdays,
national holidays). The history is one Monday, 2026-11-09, in team Kanto (default) with
reps A and B, made through the live services; the first-contact SLA is 1 business hour.

    MQL  arrives  went to  first contact  verdict   SLA due  breach
    H1   10:00    A        10:30          12:30     11:00    no
    H2   10:10    A        11:30          14:30     11:10    yes
    H3   14:00    B        14:10          15:10     15:00    no
    H4   14:05    A        15:05          16:05     15:05    no

Recorded behaviour: A responds in the median of 30, 80, 60 = 60 minutes and holds a
handoff the median of 2 h, 3 h, 1 h = 2 h from first contact to verdict; B 10 min, 1 h.

Actual: A received 3, open at once at most 2 (H1 and H2 from 10:10, H2 and H4 from
14:05), 1 breach; B received 1, peak 1, no breach. Nobody waited in the queue.
"""

from __future__ import annotations

import datetime as dt

import pytest

from handoff import activities, plans, replay, verdicts
from handoff.models import (
    AfterHours,
    Assignment,
    Handoff,
    HandoffClaim,
    PlanMember,
    PlanRep,
    PlanRule,
    PlanStatus,
    PlanTeam,
    ReplayRun,
    ReplayStatus,
    RepProfile,
    RoutingPlan,
    RoutingRule,
    Team,
    TeamMembership,
)
from leadflow.errors import DomainError
from leadflow.models import Lead, StageTransition
from sla.models import RepWorkingHours, SlaTimer, TimerPolicy
from tests.factories import UserFactory
from tests.handoff.helpers import make_mql_for, make_team

JST = dt.timezone(dt.timedelta(hours=9))


def at(hour, minute=0, day=9):
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=JST)


@pytest.fixture
def history(db, time_machine):
    """Kanto with reps A and B, and the four MQLs of the table above."""
    # update_or_create: a transactional test (the browser's) after another one finds the
    # seeded policies flushed.
    TimerPolicy.objects.update_or_create(
        kind="first_contact", defaults={"amount": 1, "unit": "hours", "counts_business_time": True}
    )
    kanto, (rep_a, rep_b), _manager = make_team("Kanto", reps=2, default=True)
    made = {}
    for name, arrives, rep, other in (
        ("H1", at(10), rep_a, rep_b),
        ("H2", at(10, 10), rep_a, rep_b),
        ("H3", at(14), rep_b, rep_a),
        ("H4", at(14, 5), rep_a, rep_b),
    ):
        time_machine.move_to(arrives, tick=False)
        made[name] = make_mql_for(rep, [other])
    for name, contact, verdict in (
        ("H1", at(10, 30), at(12, 30)),
        ("H2", at(11, 30), at(14, 30)),
        ("H3", at(14, 10), at(15, 10)),
        ("H4", at(15, 5), at(16, 5)),
    ):
        handoff = made[name]
        time_machine.move_to(contact, tick=False)
        activities.activity_log(
            handoff=handoff, actor=handoff.assigned_to, kind="call", outcome="reached"
        )
        time_machine.move_to(verdict, tick=False)
        handoff.refresh_from_db()
        verdicts.handoff_accept(
            handoff=handoff, actor=handoff.assigned_to, bant={"budget": True, "need": True}
        )
    # The replay is started the next morning, over the last week.
    time_machine.move_to(at(9, day=10), tick=False)
    return kanto, rep_a, rep_b


def _draft(**plan_team) -> RoutingPlan:
    plan = plans.routing_plan_draft_create(plan=RoutingPlan(name="Try"), actor=None)
    if plan_team:
        PlanTeam.objects.filter(plan=plan).update(**plan_team)
    return plan


def _plan_rep(plan, rep, **fields):
    PlanRep.objects.filter(plan=plan, rep=rep).update(**fields)


def _replayed(plan) -> dict:
    run = replay.replay_run_start(plan=plan, weeks=1)
    assert replay.replay_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == ReplayStatus.DONE
    return run.result


def _row(result, rep) -> dict:
    (row,) = [r for r in result["reps"] if r["rep_id"] == rep.pk]
    return row


def _figures(received, peak, breaches, passed_on=0, wait_mean=0.0, wait_max=0.0) -> dict:
    return {
        "received": received,
        "passed_on": passed_on,
        "peak_open": peak,
        "wait_mean_min": wait_mean,
        "wait_max_min": wait_max,
        "breaches": breaches,
    }


ACTUAL_A = _figures(received=3, peak=2, breaches=1)
ACTUAL_B = _figures(received=1, peak=1, breaches=0)


def test_the_draft_starts_as_a_copy_of_the_live_configuration(history):
    kanto, rep_a, rep_b = history
    RoutingRule.objects.create(name="Kanto", order=5, regions=["kanto"], team=kanto)
    RepProfile.objects.update_or_create(user=rep_a, defaults={"max_open_handoffs": 7})
    RepWorkingHours.objects.create(user=rep_b, weekdays=[0, 1], starts_at=dt.time(13))

    plan = _draft()

    assert plan.status == PlanStatus.DRAFT
    assert list(
        PlanTeam.objects.filter(plan=plan).values_list(
            "team_id", "is_default", "claim_required", "claim_window_minutes"
        )
    ) == [(kanto.pk, True, False, 15)]
    assert list(PlanRule.objects.filter(plan=plan).values_list("name", "regions", "team_id")) == [
        ("Kanto", ["kanto"], kanto.pk)
    ]
    assert sorted(PlanMember.objects.filter(plan=plan).values_list("rep_id", "is_active")) == [
        (rep_a.pk, True),
        (rep_b.pk, True),
    ]
    assert sorted(
        PlanRep.objects.filter(plan=plan).values_list(
            "rep_id", "max_open_handoffs", "weekdays", "starts_at", "ends_at"
        )
    ) == [(rep_a.pk, 7, [], None, None), (rep_b.pk, 20, [0, 1], dt.time(13), None)]


def test_a_replay_of_the_unchanged_plan_gives_the_live_round_robin_its_own_way(history):
    # A 60 min / B 10 min responses. The replay starts the round robin afresh, so only the
    # totals are fixed here: 4 MQLs received, and the breaches come from the responses.
    _kanto, rep_a, rep_b = history
    result = _replayed(_draft())
    assert result["mqls"] == 4
    assert _row(result, rep_a)["actual"] == ACTUAL_A
    assert _row(result, rep_b)["actual"] == ACTUAL_B
    assert _row(result, rep_a)["response_min"] == 60.0
    assert _row(result, rep_a)["holding_h"] == 2.0
    assert _row(result, rep_b)["response_min"] == 10.0
    assert _row(result, rep_b)["holding_h"] == 1.0
    assert result["replay"]["received"] == 4
    assert result["actual"] == {
        "received": 4,
        "passed_on": 0,
        "breaches": 1,
        "left_in_queue": 0,
        "breaches_in_queue": 0,
    }


def test_capacity_and_working_hours_replayed_rep_by_rep(history):
    # The plan: A takes one open handoff at a time; B works 13:00–18:00.
    #   H1 10:00 → A (B is off). Contact 11:00 (due 11:00: on time); verdict 13:00.
    #   H2 10:10: A is full, B starts first (13:00) → B at once. Contact 13:10 > due
    #      11:10: a breach for B. Verdict 14:10.
    #   H3 14:00: A free again (seq 1) and B (seq 2, H2 open) → A. Contact 15:00, on time.
    #   H4 14:05: A full → B. Contact 14:15 (due 15:05). B holds H2 and H4: 2 at once.
    _kanto, rep_a, rep_b = history
    plan = _draft()
    _plan_rep(plan, rep_a, max_open_handoffs=1)
    _plan_rep(plan, rep_b, starts_at=dt.time(13))

    result = _replayed(plan)

    assert _row(result, rep_a)["replay"] == _figures(received=2, peak=1, breaches=0)
    assert _row(result, rep_b)["replay"] == _figures(received=2, peak=2, breaches=1)
    assert _row(result, rep_a)["actual"] == ACTUAL_A
    assert _row(result, rep_b)["actual"] == ACTUAL_B
    assert result["replay"] == {
        "received": 4,
        "passed_on": 0,
        "breaches": 1,
        "left_in_queue": 0,
        "breaches_in_queue": 0,
    }


def test_an_mql_kept_for_the_opening_waits_in_the_queue(history):
    # The same plan, but Kanto keeps after-hours MQLs until someone starts:
    #   H2 10:10: A full, B off → the queue. At 13:00 H1's verdict frees A and B starts;
    #      the round robin (A seq 1, B never) gives H2 to B: 170 minutes in the queue.
    #      Contact 13:10 > due 11:10: B's breach. Verdict 14:10.
    #   H3 14:00 → A (seq 1 < B's 2); H4 14:05 → B (A full). B: 2 open at 14:05.
    _kanto, rep_a, rep_b = history
    plan = _draft(after_hours=AfterHours.WAIT_FOR_OPENING)
    _plan_rep(plan, rep_a, max_open_handoffs=1)
    _plan_rep(plan, rep_b, starts_at=dt.time(13))

    result = _replayed(plan)

    assert _row(result, rep_a)["replay"] == _figures(received=2, peak=1, breaches=0)
    assert _row(result, rep_b)["replay"] == _figures(
        received=2, peak=2, breaches=1, wait_mean=85.0, wait_max=170.0
    )
    assert _row(result, rep_b)["actual"] == ACTUAL_B


def test_claim_windows_pass_the_slow_rep_s_mqls_on(history):
    # Kanto requires a claim within 15 minutes, one pass; B works 13:00–18:00.
    # A (60 min) never claims in time; B (10 min) always does.
    #   H1 10:00 → A; 10:15 passes to B (first to start). B claims 13:10; breach (11:00).
    #   H2 10:10 → A (cap 20); 10:25 passes to B. Contact 13:10; breach (11:10).
    #   H1 and H2 leave B at 14:10 (contact + 1 h).
    #   H3 14:00: A (seq 3) before B (seq 4) → A; 14:15 passes to B; contact 14:25.
    #   H4 14:05: B (seq 4) before A (seq 5) → B; contact 14:15, on time.
    # A: 3 received, 3 let pass, 2 open at once (10:10–10:15). B: 4 received, open at
    # once at most 3 (H1, H2, H4 at 14:05), 2 breaches.
    _kanto, rep_a, rep_b = history
    plan = _draft(claim_required=True, claim_window_minutes=15, claim_max_passes=1)
    _plan_rep(plan, rep_b, starts_at=dt.time(13))

    result = _replayed(plan)

    assert _row(result, rep_a)["replay"] == _figures(received=3, peak=2, breaches=0, passed_on=3)
    assert _row(result, rep_b)["replay"] == _figures(received=4, peak=3, breaches=2)
    assert result["replay"]["received"] == 7
    assert result["replay"]["passed_on"] == 3
    assert result["replay"]["breaches"] == 2


def test_out_of_passes_the_mql_is_held_in_the_queue(history):
    # Both reps slower than a 5-minute window, no passes: every MQL goes to the queue at
    # its window's end and is held for a manager. Each one's SLA due time (11:00, 11:10,
    # 15:00, 15:05) is before the replay's end: 4 breaches in the queue.
    _kanto, rep_a, rep_b = history
    plan = _draft(claim_required=True, claim_window_minutes=5, claim_max_passes=0)

    result = _replayed(plan)

    assert result["replay"]["left_in_queue"] == 4
    assert result["replay"]["breaches_in_queue"] == 4
    assert result["replay"]["breaches"] == 4
    assert result["replay"]["passed_on"] == 4
    assert _row(result, rep_a)["replay"]["breaches"] == 0
    assert _row(result, rep_b)["replay"]["breaches"] == 0


LIVE_TABLES = (
    Handoff,
    Assignment,
    HandoffClaim,
    SlaTimer,
    Team,
    TeamMembership,
    RoutingRule,
    RepProfile,
    RepWorkingHours,
    Lead,
    StageTransition,
)


def _counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in LIVE_TABLES}


def _live_state() -> list:
    return [
        list(Handoff.objects.order_by("pk").values_list("pk", "assigned_to_id", "status")),
        list(
            TeamMembership.objects.order_by("pk").values_list(
                "pk", "last_assignment_seq", "is_active"
            )
        ),
        list(Team.objects.order_by("pk").values_list("pk", "assignment_counter", "is_default")),
    ]


def test_a_replay_writes_nothing_live(history):
    _kanto, _rep_a, rep_b = history
    plan = _draft(claim_required=True, claim_window_minutes=5, claim_max_passes=1)
    _plan_rep(plan, rep_b, starts_at=dt.time(13), max_open_handoffs=1)
    before, state = _counts(), _live_state()

    _replayed(plan)

    assert _counts() == before
    assert _live_state() == state
    assert before["Handoff"] == 4 and before["Assignment"] == 4


def test_a_changed_draft_invalidates_its_replay(history):
    _kanto, _rep_a, rep_b = history
    plan = _draft()
    run = replay.replay_run_start(plan=plan, weeks=1)
    assert replay.replay_run_start(plan=plan, weeks=1) == run  # the same content: one job
    replay.replay_run_execute(run_id=run.pk)
    assert replay.replay_run_current(plan=plan) == ReplayRun.objects.get(pk=run.pk)

    _plan_rep(plan, rep_b, max_open_handoffs=3)

    assert replay.replay_run_current(plan=plan) is None
    again = replay.replay_run_start(plan=plan, weeks=1)
    assert again.pk != run.pk and again.status == ReplayStatus.QUEUED


def test_a_run_whose_draft_changed_before_it_ran_is_dropped(history):
    _kanto, _rep_a, rep_b = history
    plan = _draft()
    run = replay.replay_run_start(plan=plan, weeks=1)
    _plan_rep(plan, rep_b, max_open_handoffs=3)

    assert replay.replay_run_execute(run_id=run.pk) is False
    assert not ReplayRun.objects.filter(pk=run.pk).exists()


def test_a_run_is_done_once_however_often_the_task_comes(history):
    plan = _draft()
    run = replay.replay_run_start(plan=plan, weeks=1)
    assert replay.replay_run_execute(run_id=run.pk) is True
    assert replay.replay_run_execute(run_id=run.pk) is False
    run.refresh_from_db()
    assert (run.status, run.total, run.done, run.percent) == (ReplayStatus.DONE, 4, 4, 100)


def test_a_replay_is_refused_for_a_published_plan_and_odd_weeks(history):
    plan = _draft()
    with pytest.raises(DomainError) as error:
        replay.replay_run_start(plan=plan, weeks=0)
    assert error.value.code == "invalid_weeks"
    plans.routing_plan_publish(plan=plan, actor=None)
    with pytest.raises(DomainError) as error:
        replay.replay_run_start(plan=plan, weeks=1)
    assert error.value.code == "not_a_draft"
    assert not ReplayRun.objects.exists()


# --- publish -------------------------------------------------------------------------------


def test_publish_applies_exactly_the_draft_and_records_who(history):
    kanto, rep_a, rep_b = history
    east = Team.objects.create(name="East")
    rep_c = UserFactory(username="rep-c")
    manager = UserFactory(username="boss")
    RoutingRule.objects.create(name="old", order=1, regions=["kinki"], team=kanto)
    TeamMembership.objects.filter(team=kanto, rep=rep_a).update(last_assignment_seq=9)
    plan = _draft()
    PlanTeam.objects.filter(plan=plan, team=kanto).update(
        is_default=False, claim_required=True, claim_window_minutes=10, claim_max_passes=3
    )
    PlanTeam.objects.filter(plan=plan, team=east).update(
        is_default=True, after_hours=AfterHours.WAIT_FOR_OPENING
    )
    PlanRule.objects.filter(plan=plan).delete()
    PlanRule.objects.create(plan=plan, name="Tokyo", order=3, prefectures=["東京都"], team=kanto)
    PlanMember.objects.filter(plan=plan, rep=rep_b).delete()
    PlanMember.objects.create(plan=plan, team=east, rep=rep_b)
    PlanMember.objects.create(plan=plan, team=east, rep=rep_c, is_active=False)
    _plan_rep(plan, rep_a, max_open_handoffs=4, weekdays=[0, 1, 2], starts_at=dt.time(10))
    PlanRep.objects.create(plan=plan, rep=rep_c, max_open_handoffs=2)
    RepWorkingHours.objects.create(user=rep_b, weekdays=[4])  # after the draft: the plan wins

    published = plans.routing_plan_publish(plan=plan, actor=manager)

    assert (published.status, published.published_by) == (PlanStatus.PUBLISHED, manager)
    assert published.published_at == at(9, day=10)
    assert list(
        Team.objects.order_by("name").values_list(
            "name",
            "is_default",
            "claim_required",
            "claim_window_minutes",
            "claim_max_passes",
            "after_hours",
        )
    ) == [
        ("East", True, False, 15, 2, AfterHours.WAIT_FOR_OPENING),
        ("Kanto", False, True, 10, 3, AfterHours.FIRST_TO_START),
    ]
    assert list(RoutingRule.objects.values_list("name", "order", "prefectures", "team_id")) == [
        ("Tokyo", 3, ["東京都"], kanto.pk)
    ]
    assert sorted(
        TeamMembership.objects.values_list(
            "team__name", "rep__username", "is_active", "last_assignment_seq"
        )
    ) == [
        ("East", "kanto-rep2", True, 0),
        ("East", "rep-c", False, 0),
        ("Kanto", "kanto-rep1", True, 9),  # kept: its place in the round robin too
    ]
    assert sorted(RepProfile.objects.values_list("user__username", "max_open_handoffs")) == [
        ("kanto-rep1", 4),
        ("kanto-rep2", 20),
        ("rep-c", 2),
    ]
    assert list(
        RepWorkingHours.objects.values_list("user__username", "weekdays", "starts_at", "ends_at")
    ) == [("kanto-rep1", [0, 1, 2], dt.time(10), None)]


def test_publishing_archives_the_plan_before_and_freezes_the_published_one(history):
    first = plans.routing_plan_publish(plan=_draft(), actor=None)
    second = plans.routing_plan_publish(plan=_draft(), actor=None)
    first.refresh_from_db()
    assert (first.status, second.status) == (PlanStatus.ARCHIVED, PlanStatus.PUBLISHED)
    with pytest.raises(DomainError) as error:
        plans.routing_plan_publish(plan=second, actor=None)
    assert error.value.code == "not_a_draft"
    with pytest.raises(DomainError) as error:
        PlanRep.objects.filter(plan=second).first().save()
    assert error.value.code == "plan_read_only"


def test_a_plan_with_a_rule_to_a_team_outside_it_is_not_published(history):
    kanto, _rep_a, _rep_b = history
    plan = _draft()
    PlanRule.objects.create(plan=plan, name="Kanto", team=kanto)
    PlanTeam.objects.filter(plan=plan).delete()
    before = _counts(), _live_state()

    with pytest.raises(DomainError) as error:
        plans.routing_plan_publish(plan=plan, actor=None)

    assert error.value.code == "invalid_plan"
    assert "Kanto" in error.value.message
    assert (_counts(), _live_state()) == before
    plan.refresh_from_db()
    assert plan.status == PlanStatus.DRAFT


def test_a_replay_whose_job_was_lost_can_be_started_again(history, time_machine, settings):
    plan = _draft()
    lost = replay.replay_run_start(plan=plan, weeks=1)
    assert replay.replay_run_start(plan=plan, weeks=1, fresh=True) == lost  # still going
    time_machine.move_to(at(9, day=10) + dt.timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 1))

    again = replay.replay_run_start(plan=plan, weeks=1, fresh=True)

    assert again.pk != lost.pk
    assert replay.replay_run_execute(run_id=again.pk) is True
    # The newer run's result removes the lost one.
    assert not ReplayRun.objects.filter(pk=lost.pk).exists()
