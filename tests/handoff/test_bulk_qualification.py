"""Bulk qualification (#17, 3): a batch of new MQLs moved set-based
(`leadflow.lifecycle.leads_transition_bulk` → handoff.bulk and the bulk twins) writes the
rows N single moves write, column for column."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
import time_machine
from django.db import transaction

from handoff.models import (
    Assignment,
    Handoff,
    HandoffClaim,
    HandoffTimeline,
    QueueNotice,
    RoutingRule,
    Team,
    TeamMembership,
)
from integrations.outbound.models import Destination, DestinationKind, OutboxMessage
from leadflow.lifecycle import BulkMove, lead_transition, leads_transition_bulk
from leadflow.models import Lead, Stage, StageTransition
from scoring.models import FitSnapshot
from sla.models import KpiStaleDay, SlaTimer
from tests.factories import CompanyFactory, EngagementEventFactory, LeadFactory, UserFactory
from tests.handoff.helpers import make_team, set_profile

TOKYO = dt.timezone(dt.timedelta(hours=9))
NOW = dt.datetime(2026, 11, 2, 10, 0, tzinfo=TOKYO)  # a Monday, in business hours

pytestmark = pytest.mark.django_db


def _world() -> list[Lead]:
    """Two teams (one routed by a rule, requiring claims, one default), reps with little
    room (so some MQLs wait in the queue), an account owner set on a company, a company
    whose second lead follows its first to the same rep, a lead with a fresh event, a
    recycled lead, an SFA webhook that hears of MQLs. The leads, in id order."""
    kansai, kansai_reps, _boss = make_team("Kansai", reps=2)
    kanto, kanto_reps, _boss = make_team("Kanto", reps=2, default=True)
    Team.objects.filter(pk=kansai.pk).update(claim_required=True, claim_window_minutes=30)
    RoutingRule.objects.create(name="west", prefectures=["大阪府"], team=kansai)
    set_profile(kanto_reps[0], max_open_handoffs=2)
    set_profile(kanto_reps[1], max_open_handoffs=1)
    set_profile(kansai_reps[1], away=True)
    owner = UserFactory(username="owner-rep")
    TeamMembership.objects.create(team=kanto, rep=owner)
    set_profile(owner, max_open_handoffs=2)
    # A round robin already under way, so who comes next does not hang on the reps' ids
    # (never-assigned reps are ordered by a hash of them).
    for seq, rep in enumerate([*kanto_reps, owner], start=1):
        TeamMembership.objects.filter(team=kanto, rep=rep).update(last_assignment_seq=seq)
    Team.objects.filter(pk=kanto.pk).update(assignment_counter=3)
    for seq, rep in enumerate(kansai_reps, start=1):
        TeamMembership.objects.filter(team=kansai, rep=rep).update(last_assignment_seq=seq)
    Team.objects.filter(pk=kansai.pk).update(assignment_counter=2)
    Destination.objects.create(
        kind=DestinationKind.WEBHOOK, slug="sfa", name="SFA", base_url="http://127.0.0.1:9/x"
    )
    owned = CompanyFactory(owner=owner)
    shared = CompanyFactory()
    osaka = CompanyFactory(prefecture="大阪府")
    leads = [
        LeadFactory(company=shared),
        LeadFactory(company=owned),
        LeadFactory(company=osaka, role="executive"),
        LeadFactory(company=shared),
        LeadFactory(company=osaka),
        LeadFactory(stage=Stage.RECYCLED),
        LeadFactory(company=None),
        LeadFactory(),
        LeadFactory(),
    ]
    EngagementEventFactory(lead=leads[2], kind="email_click", occurred_at=NOW)
    return sorted(leads, key=lambda lead: lead.pk)


def _moves(leads: list[Lead]) -> list[BulkMove]:
    return [
        BulkMove(
            lead_id=lead.pk,
            expected_from=lead.stage,
            reason=f"Scoring v2: lead {index}",
            context={"scoring_model": 2, "fit": 40 + index, "engagement": 60},
        )
        for index, lead in enumerate(leads)
    ]


def _rows(lead_ids: list[int]) -> dict:
    """Every row a move into MQL writes, ids replaced by the lead they belong to."""
    handoffs = dict(Handoff.objects.filter(lead_id__in=lead_ids).values_list("pk", "lead_id"))
    transitions = dict(
        StageTransition.objects.filter(lead_id__in=lead_ids).values_list("pk", "lead_id")
    )
    assignments = dict(
        Assignment.objects.filter(handoff_id__in=handoffs).values_list("pk", "handoff__lead_id")
    )
    swap = {
        "handoff_id": handoffs,
        "mql_transition_id": transitions,
        "transition_id": transitions,
        "assignment_id": assignments,
    }

    def rows(queryset, drop=("id",)) -> list:
        out = []
        for row in queryset.values():
            for name in drop:
                row.pop(name, None)
            for name, ids in swap.items():
                if name in row:
                    row[name] = ("lead", ids[row[name]])
            out.append(row)
        return sorted(out, key=repr)

    def outbox() -> list:
        found = rows(OutboxMessage.objects.filter(lead_id__in=lead_ids))
        for row in found:
            # The transition's id is in the key and the payload: the lead stands for it.
            lead_id = row["transition_id"][1]
            row["idempotency_key"] = row["idempotency_key"].rsplit(":", 1)[0]
            row["payload"]["idempotency_key"] = row["idempotency_key"]
            row["payload"]["transition"]["id"] = lead_id
        return found

    return {
        "leads": rows(Lead.objects.filter(pk__in=lead_ids), drop=()),
        "transitions": rows(StageTransition.objects.filter(lead_id__in=lead_ids)),
        "handoffs": rows(Handoff.objects.filter(lead_id__in=lead_ids)),
        "assignments": rows(Assignment.objects.filter(handoff_id__in=handoffs)),
        "timers": rows(SlaTimer.objects.filter(handoff_id__in=handoffs)),
        "claims": rows(HandoffClaim.objects.filter(handoff_id__in=handoffs)),
        "queue_notices": rows(QueueNotice.objects.filter(handoff_id__in=handoffs)),
        "timelines": rows(HandoffTimeline.objects.filter(handoff_id__in=handoffs), drop=()),
        "outbox": outbox(),
        "fit_snapshots": rows(FitSnapshot.objects.filter(lead_id__in=lead_ids)),
        # A mark means "recompute this day": the days marked, not how often.
        "kpi_days": sorted(set(KpiStaleDay.objects.values_list("day", flat=True))),
        "teams": rows(Team.objects.all(), drop=()),
        "memberships": rows(TeamMembership.objects.all(), drop=()),
    }


def _rolled_back(move) -> dict:
    """The rows `move` writes, then undone, so the other path starts from the same world."""
    with transaction.atomic():
        move()
        written = _rows(LEAD_IDS)
        transaction.set_rollback(True)
    return written


LEAD_IDS: list[int] = []


def test_a_bulk_move_writes_what_n_single_moves_write_row_for_row():
    with time_machine.travel(NOW, tick=False):
        leads = _world()
        LEAD_IDS[:] = [lead.pk for lead in leads]
        moves = _moves(leads)

        def one_by_one() -> None:
            for move in moves:
                lead_transition(
                    lead=move.lead_id,
                    to_stage=Stage.MQL,
                    actor="scoring",
                    reason=move.reason,
                    context=move.context,
                    expected_from=move.expected_from,
                )

        single = _rolled_back(one_by_one)
        bulk = _rolled_back(
            lambda: leads_transition_bulk(moves=moves, to_stage=Stage.MQL, actor="scoring")
        )

    # The world does what the test means it to: assigned, queued, claims, owners, outbox.
    vias = Counter(row["via"] for row in single["assignments"])
    # Kanto has room for 5 (2 + 1 + the owner's 2) of its 7; Kansai's one rep here takes 2.
    assert vias == {"routing": 4, "account_owner": 3}
    assert sorted(row["reason"] for row in single["assignments"] if row["reason"]) == [
        "Account owner: holds an open handoff of the company",  # the shared company's 2nd
        "Account owner: holds an open handoff of the company",  # Osaka's 2nd
        "Account owner: set on the company",
    ]
    assert sum(row["assigned_to_id"] is None for row in single["handoffs"]) == 2
    assert len(single["queue_notices"]) == 2
    assert len(single["claims"]) == 2
    assert len(single["outbox"]) == 9
    assert len(single["timers"]) == 18
    assert sum(row["event_occurred_at"] is not None for row in single["timelines"]) == 1
    for table, rows in single.items():
        assert bulk[table] == rows, table


def test_a_lead_moved_by_a_rep_meanwhile_is_skipped_by_the_bulk_move():
    with time_machine.travel(NOW, tick=False):
        first, second = LeadFactory(), LeadFactory()
        make_team("Kanto", reps=1, default=True)
        moves = _moves([first, second])
        # A rep disqualifies the second lead after the rescore read it as known.
        lead_transition(lead=second, to_stage=Stage.DISQUALIFIED, actor=UserFactory())

        written = leads_transition_bulk(moves=moves, to_stage=Stage.MQL, actor="scoring")

    assert [t.lead_id for t in written] == [first.pk]
    assert Lead.objects.get(pk=second.pk).stage == Stage.DISQUALIFIED
    assert not StageTransition.objects.filter(lead=second, to_stage=Stage.MQL).exists()
    assert not Handoff.objects.filter(lead=second).exists()
    assert Handoff.objects.filter(lead=first).count() == 1


def test_a_bulk_move_to_a_stage_without_bulk_reactions_is_refused():
    from leadflow.errors import InvalidTransition

    lead = LeadFactory()
    with pytest.raises(InvalidTransition, match="cannot be moved to"):
        leads_transition_bulk(
            moves=[BulkMove(lead_id=lead.pk, expected_from=Stage.KNOWN)],
            to_stage=Stage.DISQUALIFIED,
            actor="scoring",
        )
    assert Lead.objects.get(pk=lead.pk).stage == Stage.KNOWN
    assert not StageTransition.objects.filter(lead=lead).exists()


def test_a_bulk_move_tells_the_reps_in_chunks_after_the_commit(
    monkeypatch, django_capture_on_commit_callbacks
):
    from handoff import bulk, tasks

    sent: list[list[int]] = []
    monkeypatch.setattr(bulk, "NOTIFY_CHUNK", 2)
    monkeypatch.setattr(
        tasks.notify_assignments_task, "apply_async", lambda args: sent.append(list(args[0]))
    )
    monkeypatch.setattr(tasks.notify_queued_task, "apply_async", lambda args: None)
    with time_machine.travel(NOW, tick=False):
        make_team("Kanto", reps=3, default=True)
        leads = sorted(LeadFactory.create_batch(3), key=lambda lead: lead.pk)
        with django_capture_on_commit_callbacks(execute=True):
            leads_transition_bulk(moves=_moves(leads), to_stage=Stage.MQL, actor="scoring")

    ids = list(
        Assignment.objects.filter(handoff__lead__in=leads)
        .order_by("handoff__lead_id")
        .values_list("pk", flat=True)
    )
    assert sent == [ids[:2], ids[2:]]
