import datetime as dt
import threading
from collections import Counter

import pytest
import time_machine
from django.db import connection, connections

from handoff import routing, verdicts
from handoff.models import Assignment, AssignmentVia, Handoff, HandoffStatus, RoutingRule, Team
from handoff.tasks import assign_all_queues_task, assign_from_queue_task
from leadflow.errors import DomainError
from leadflow.lifecycle import lead_transition
from leadflow.models import Lead, Stage, StageTransition
from tests.factories import CompanyFactory, LeadFactory, UserFactory
from tests.handoff.helpers import make_mql, make_team, set_profile

TOKYO = dt.timezone(dt.timedelta(hours=9))
NOW = dt.datetime(2026, 11, 2, 10, 0, tzinfo=TOKYO)


@pytest.fixture
def territories(db):
    kanto, _kanto_reps, _ = make_team("Kanto", reps=1)
    kinki, _kinki_reps, _ = make_team("Kinki", reps=1)
    enterprise, _ent_reps, _ = make_team("Enterprise", reps=1)
    fallback, _fallback_reps, _ = make_team("Inside sales", reps=1, default=True)
    RoutingRule.objects.create(name="Large accounts", order=10, min_employees=1000, team=enterprise)
    RoutingRule.objects.create(name="Osaka and around", order=20, regions=["kinki"], team=kinki)
    RoutingRule.objects.create(
        name="Tokyo makers",
        order=30,
        prefectures=["東京都", "神奈川県"],
        industries=["manufacturing", "it"],
        max_employees=999,
        team=kanto,
    )
    return {"kanto": kanto, "kinki": kinki, "enterprise": enterprise, "fallback": fallback}


@pytest.mark.parametrize(
    ("prefecture", "industry", "employees", "expected"),
    [
        ("東京都", "manufacturing", 250, "Kanto"),
        ("神奈川県", "it", 999, "Kanto"),
        ("大阪府", "manufacturing", 250, "Kinki"),
        ("京都府", "finance", None, "Kinki"),
        ("東京都", "manufacturing", 1000, "Enterprise"),  # order 10 wins over order 30
        ("大阪府", "retail", 5000, "Enterprise"),
        ("東京都", "finance", 250, "Inside sales"),  # industry not in the rule: default team
        ("北海道", "it", 50, "Inside sales"),
    ],
)
def test_territory_rules_pick_the_team_in_order(
    territories, prefecture, industry, employees, expected
):
    company = CompanyFactory(prefecture=prefecture, industry=industry, employee_count=employees)

    handoff = make_mql(company=company)

    assert handoff.team.name == expected
    assert handoff.assigned_to is not None
    assert handoff.assigned_to.sales_teams.get() == handoff.team


def test_inactive_rules_are_skipped(territories):
    RoutingRule.objects.filter(name="Osaka and around").update(is_active=False)

    handoff = make_mql(company=CompanyFactory(prefecture="大阪府", industry="retail"))

    assert handoff.team.name == "Inside sales"


@pytest.mark.django_db
def test_without_rules_or_default_team_the_handoff_waits_unrouted():
    handoff = make_mql()

    assert handoff.team is None
    assert handoff.assigned_to is None
    assert handoff.status == HandoffStatus.OPEN
    assert handoff.lead.stage == Stage.MQL


@pytest.mark.django_db
def test_handoff_is_created_in_the_mql_transition_and_points_to_it():
    make_team(default=True)
    lead = LeadFactory(stage=Stage.KNOWN)

    with time_machine.travel(NOW, tick=False):
        record = lead_transition(lead=lead, to_stage=Stage.MQL, actor="scoring")

    handoff = Handoff.objects.get(lead=lead)
    assert handoff.mql_transition == record
    assert handoff.created_at == NOW
    assert handoff.assigned_at == NOW
    assert Assignment.objects.filter(handoff=handoff, via=AssignmentVia.ROUTING).count() == 1


@pytest.mark.django_db
def test_creation_is_idempotent_per_transition():
    make_team(default=True)
    handoff = make_mql()

    again = routing.handoff_create_for_mql(lead=handoff.lead, transition=handoff.mql_transition)

    assert again.pk == handoff.pk
    assert Handoff.objects.count() == 1
    assert Assignment.objects.count() == 1


@pytest.mark.django_db
def test_other_stage_changes_create_no_handoff():
    make_team(default=True)
    lead = LeadFactory(stage=Stage.KNOWN)

    lead_transition(lead=lead, to_stage=Stage.DISQUALIFIED, actor="marketing")

    assert Handoff.objects.count() == 0


@pytest.mark.django_db
def test_a_routing_failure_rolls_back_the_mql_too(monkeypatch):
    make_team(default=True)
    lead = LeadFactory(stage=Stage.KNOWN)

    def broken(**kwargs):
        raise RuntimeError("routing broke")

    monkeypatch.setattr(routing, "_pick_rep", broken)
    with pytest.raises(RuntimeError):
        lead_transition(lead=lead, to_stage=Stage.MQL, actor="scoring")

    assert Lead.objects.get(pk=lead.pk).stage == Stage.KNOWN
    assert StageTransition.objects.count() == 0
    assert Handoff.objects.count() == 0


@pytest.mark.django_db
def test_round_robin_is_exactly_fair_over_many_assignments():
    _team, reps, _ = make_team(reps=3, default=True)
    for rep in reps:
        set_profile(rep, max_open_handoffs=500)

    with time_machine.travel(NOW, tick=False):  # every assignment in the same instant
        for _ in range(300):
            make_mql()

    counts = Counter(Handoff.objects.values_list("assigned_to__username", flat=True))
    assert counts == {"kanto-rep1": 100, "kanto-rep2": 100, "kanto-rep3": 100}


@pytest.mark.django_db
def test_consecutive_assignments_cycle_through_every_rep():
    _team, reps, _ = make_team(reps=3, default=True)

    order = [make_mql().assigned_to for _ in range(6)]

    assert set(order[:3]) == set(reps)
    assert order[3:] == order[:3]


@pytest.mark.django_db
def test_never_assigned_order_does_not_favour_the_oldest_member():
    # Ties among never-assigned reps are broken by a hash of (team, rep), not by age:
    # over many teams, the first-created rep is not always the first to get a lead.
    first_picks = []
    for number in range(30):
        team, reps, _ = make_team(f"T{number}", reps=3, manager=False)
        RoutingRule.objects.create(name=f"r{number}", order=1, team=team)
        first_picks.append(make_mql().assigned_to == reps[0])
        RoutingRule.objects.filter(team=team).update(is_active=False)

    assert 0 < sum(first_picks) < 30


@pytest.mark.django_db
def test_a_new_member_gets_the_next_lead_then_joins_the_rotation():
    team, reps, _ = make_team(reps=2, default=True)
    for _ in range(4):
        make_mql()
    newcomer = UserFactory(username="newcomer")
    team.memberships.create(rep=newcomer)

    order = [make_mql().assigned_to for _ in range(3)]

    assert order[0] == newcomer
    assert set(order[1:]) == set(reps)


@pytest.mark.django_db
def test_away_reps_are_skipped_until_they_are_back():
    _team, reps, _ = make_team(reps=2, default=True)
    set_profile(reps[0], away=True)
    set_profile(reps[1], away=True, away_until=NOW - dt.timedelta(minutes=1))

    with time_machine.travel(NOW, tick=False):
        assigned = {make_mql().assigned_to for _ in range(3)}

    assert assigned == {reps[1]}


@pytest.mark.django_db
def test_reps_at_capacity_are_skipped_and_then_it_queues():
    _team, reps, _manager = make_team(reps=2, default=True)
    set_profile(reps[0], max_open_handoffs=1)
    set_profile(reps[1], max_open_handoffs=2)

    handoffs = [make_mql() for _ in range(4)]

    assert Counter(h.assigned_to for h in handoffs[:3]) == {reps[0]: 1, reps[1]: 2}
    assert handoffs[3].assigned_to is None
    assert handoffs[3].team.name == "Kanto"
    assert handoffs[3].is_queued


@pytest.mark.django_db
def test_inactive_members_and_users_get_nothing():
    team, reps, _ = make_team(reps=3, default=True)
    team.memberships.filter(rep=reps[0]).update(is_active=False)
    reps[1].is_active = False
    reps[1].save()

    assert {make_mql().assigned_to for _ in range(3)} == {reps[2]}


@pytest.mark.django_db
def test_assign_from_queue_gives_waiting_handoffs_oldest_first_to_freed_reps():
    team, reps, manager = make_team(reps=1, default=True)
    set_profile(reps[0], away=True)
    queued = [make_mql() for _ in range(3)]
    assert all(h.assigned_to is None for h in queued)

    assert routing.handoff_assign_from_queue(team=team, actor=manager) == []

    set_profile(reps[0], away=False, max_open_handoffs=2)
    assigned = routing.handoff_assign_from_queue(team=team, actor=manager)

    assert [h.pk for h in assigned] == [queued[0].pk, queued[1].pk]
    assert Handoff.objects.get(pk=queued[2].pk).assigned_to is None
    assignment = Assignment.objects.get(handoff=queued[0])
    assert (assignment.via, assignment.by, assignment.rep) == (
        AssignmentVia.QUEUE,
        manager,
        reps[0],
    )


@pytest.mark.django_db
def test_a_verdict_frees_capacity_and_the_queue_task_moves_the_queue():
    team, reps, _ = make_team(reps=1, default=True)
    set_profile(reps[0], max_open_handoffs=1)
    first, waiting = make_mql(), make_mql()
    assert waiting.assigned_to is None

    verdicts.handoff_accept(handoff=first, actor=reps[0], bant={"budget": True, "need": True})
    assert assign_from_queue_task(team.pk) == 1

    assert Handoff.objects.get(pk=waiting.pk).assigned_to == reps[0]
    assert assign_from_queue_task(team.pk) == 0


@pytest.mark.django_db
def test_periodic_sweep_assigns_queues_of_every_team():
    _team, reps, _ = make_team(reps=1, default=True)
    set_profile(reps[0], away=True, away_until=NOW + dt.timedelta(hours=1))
    with time_machine.travel(NOW, tick=False):
        waiting = make_mql()
    assert waiting.assigned_to is None

    with time_machine.travel(NOW + dt.timedelta(hours=2), tick=False):
        assert assign_all_queues_task() == 1

    assert Handoff.objects.get(pk=waiting.pk).assigned_to == reps[0]


@pytest.mark.django_db
def test_manager_reassigns_by_hand_with_a_reason_recorded():
    _team, reps, manager = make_team(reps=2, default=True)
    handoff = make_mql()
    other = next(rep for rep in reps if rep != handoff.assigned_to)
    previous = handoff.assigned_to

    routing.handoff_reassign(
        handoff=handoff, to_rep=other, actor=manager, reason="Speaks Kansai-ben"
    )

    handoff.refresh_from_db()
    assert handoff.assigned_to == other
    last = Assignment.objects.filter(handoff=handoff).latest("id")
    assert (last.via, last.by, last.previous_rep, last.rep, last.reason) == (
        AssignmentVia.MANUAL,
        manager,
        previous,
        other,
        "Speaks Kansai-ben",
    )


@pytest.mark.django_db
def test_reassign_refuses_without_reason_to_same_rep_and_outside_the_team():
    _team, reps, manager = make_team(reps=2, default=True)
    _other_team, outsiders, _ = make_team("Kinki", reps=1)
    handoff = make_mql()
    current = handoff.assigned_to
    other = next(rep for rep in reps if rep != current)

    with pytest.raises(DomainError, match="Say why the handoff moves"):
        routing.handoff_reassign(handoff=handoff, to_rep=other, actor=manager, reason=" ")
    with pytest.raises(DomainError, match="already has this handoff"):
        routing.handoff_reassign(handoff=handoff, to_rep=current, actor=manager, reason="x")
    with pytest.raises(DomainError, match="is not a member of team Kanto"):
        routing.handoff_reassign(handoff=handoff, to_rep=outsiders[0], actor=manager, reason="x")

    assert Handoff.objects.get(pk=handoff.pk).assigned_to == current
    assert Assignment.objects.filter(handoff=handoff).count() == 1


@pytest.mark.django_db
def test_assigning_a_queued_handoff_by_hand_needs_no_reason():
    _team, reps, manager = make_team(reps=1, default=True)
    set_profile(reps[0], away=True)
    handoff = make_mql()

    routing.handoff_reassign(handoff=handoff, to_rep=reps[0], actor=manager)

    assert Handoff.objects.get(pk=handoff.pk).assigned_to == reps[0]


@pytest.mark.django_db
def test_an_unrouted_handoff_is_assigned_into_the_reps_team():
    team, reps, manager = make_team(reps=1)
    handoff = make_mql()
    assert handoff.team is None

    routing.handoff_reassign(handoff=handoff, to_rep=reps[0], actor=manager)

    handoff.refresh_from_db()
    assert (handoff.team, handoff.assigned_to) == (team, reps[0])


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_mqls_routed_at_once_go_to_two_different_reps():
    make_team(reps=2, default=True)
    leads = [LeadFactory(stage=Stage.KNOWN) for _ in range(2)]
    start = threading.Barrier(2)
    errors: list[Exception] = []

    def worker(lead_id: int) -> None:
        try:
            start.wait()
            lead_transition(lead=lead_id, to_stage=Stage.MQL, actor="scoring")
        except Exception as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(lead.pk,)) for lead in leads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert connection.vendor == "postgresql"
    assert errors == []
    reps = list(Handoff.objects.values_list("assigned_to_id", flat=True))
    assert len(reps) == 2
    assert len(set(reps)) == 2
    assert Team.objects.get().assignment_counter == 2


@pytest.mark.django_db
def test_the_assigned_rep_becomes_the_owner_of_the_lead():
    from handoff.models import Team, TeamMembership
    from leadflow.lifecycle import lead_transition
    from leadflow.models import Lead
    from tests.factories import LeadFactory, UserFactory

    team = Team.objects.create(name="Owners", is_default=True)
    rep = UserFactory(username="owner-rep", roles=["Sales rep"])
    TeamMembership.objects.create(team=team, rep=rep)
    lead = LeadFactory()

    lead_transition(lead=lead, to_stage="mql", actor="scoring")

    assert Lead.objects.get(pk=lead.pk).owner == rep
