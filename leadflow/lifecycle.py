"""The lead lifecycle: which stage moves are allowed, and the one function that moves.

`lead_transition` is the only code that writes `Lead.stage`. It locks the lead row,
re-reads the stage under the lock, checks the move against `ALLOWED`, and writes the
`StageTransition` audit row in the same transaction, so two workers that both decide
"known → MQL" for one lead cannot both succeed: the second sees MQL and is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypedDict, Unpack

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from leadflow import locks, reactions
from leadflow.errors import DomainError, InvalidTransition, NotFound
from leadflow.models import Lead, MqlWave, Stage, StageTransition, User

S = Stage

# From each stage, where a lead may go. Recycled means "back to marketing for nurture";
# disqualified is the way out for bad data and non-targets. Moves that skip the sales
# verdict (known → customer) are not here on purpose: they would hide the handoff.
ALLOWED: dict[str, frozenset[str]] = {
    S.ANONYMOUS: frozenset({S.KNOWN, S.DISQUALIFIED}),
    S.KNOWN: frozenset({S.MQL, S.DISQUALIFIED}),
    S.MQL: frozenset({S.SQL, S.RECYCLED, S.DISQUALIFIED}),
    S.SQL: frozenset({S.OPPORTUNITY, S.CUSTOMER, S.RECYCLED, S.DISQUALIFIED}),
    S.OPPORTUNITY: frozenset({S.CUSTOMER, S.RECYCLED, S.DISQUALIFIED}),
    S.CUSTOMER: frozenset({S.ADVOCATE}),
    S.ADVOCATE: frozenset({S.CUSTOMER}),
    S.RECYCLED: frozenset({S.MQL, S.DISQUALIFIED}),
    S.DISQUALIFIED: frozenset({S.KNOWN}),
}


@dataclass(frozen=True)
class Actor:
    """Who causes a change: a signed-in person or a named part of the system."""

    user: User | None = None
    system: str = ""

    def __post_init__(self) -> None:
        if (self.user is None) == (not self.system):
            raise ValueError("An actor is either a user or a system name, not both or neither.")

    @classmethod
    def of(cls, who: User | str) -> Actor:
        return cls(system=who) if isinstance(who, str) else cls(user=who)

    def __str__(self) -> str:
        return str(self.user) if self.user is not None else self.system


def can_move(from_stage: str, to_stage: str) -> bool:
    return to_stage in ALLOWED.get(from_stage, frozenset())


def lead_transition(
    *,
    lead: Lead | int,
    to_stage: str,
    actor: Actor | User | str,
    reason: str = "",
    context: dict[str, Any] | None = None,
    expected_from: str | None = None,
    at: datetime | None = None,
) -> StageTransition:
    """Move a lead to `to_stage` and record who did it and why.

    `expected_from` lets a caller that decided on a stage it read earlier insist that the
    lead is still there (otherwise InvalidTransition). Runs in its own savepoint; inside a
    caller's transaction (e.g. scoring creating a handoff) it commits with the caller.
    """
    if to_stage not in S.values:
        raise InvalidTransition(_("“%(stage)s” is not a lead stage.") % {"stage": to_stage})
    who = actor if isinstance(actor, Actor) else Actor.of(actor)
    lead_id = lead if isinstance(lead, int) else lead.pk
    when = at or timezone.now()

    with transaction.atomic():
        # Ordered, single-row lock; re-reading under it is what makes the check race-free.
        # With its company: the reactions (routing, the outbox payload) read it. Only the
        # lead's row is locked, and NO KEY: a stage move never changes the id, so rows that
        # refer to the lead (duplicate candidates, events) are not held up by it.
        locked = locks.lead_for_change(lead_id)
        if locked is None:
            raise NotFound(_("Lead %(id)s does not exist.") % {"id": lead_id})
        from_stage = locked.stage
        if expected_from is not None and from_stage != expected_from:
            raise InvalidTransition(
                _("The lead is now %(current)s, not %(expected)s; someone moved it first.")
                % {
                    "current": S(from_stage).label,
                    "expected": S(expected_from).label,
                }
            )
        if not can_move(from_stage, to_stage):
            raise InvalidTransition(
                _("A lead cannot move from %(from)s to %(to)s.")
                % {"from": S(from_stage).label, "to": S(to_stage).label}
            )
        locked.stage = to_stage
        locked.stage_changed_at = when
        locked.save(update_fields=["stage", "stage_changed_at", "updated_at"])
        record = StageTransition.objects.create(
            lead=locked,
            from_stage=from_stage,
            to_stage=to_stage,
            occurred_at=when,
            actor_user=who.user,
            actor_system=who.system,
            reason=reason,
            context=context or {},
        )
        # Inside this transaction (e.g. handoff creates the Handoff for a new MQL), so the
        # stage change and its consequences commit or fail together.
        reactions.run(reactions.STAGE_CHANGED[to_stage], transition=record, lead=locked)

    if not isinstance(lead, int):
        lead.stage = locked.stage
        lead.stage_changed_at = locked.stage_changed_at
    return record


# --- many leads at once ------------------------------------------------------------------


@dataclass(frozen=True)
class BulkMove:
    """One lead of a bulk move: the stage the caller read it in (the move is skipped when
    the lead is elsewhere by now), and the reason and context of its StageTransition."""

    lead_id: int
    expected_from: str
    reason: str = ""
    context: dict[str, Any] = field(default_factory=dict)


def leads_transition_bulk(
    *,
    moves: Sequence[BulkMove],
    to_stage: str,
    actor: Actor | User | str,
    at: datetime | None = None,
    wave: Any = None,
) -> list[StageTransition]:
    """The set-based twin of `lead_transition`, for one batch of leads: one transaction,
    one lock statement, one UPDATE of the stages, one INSERT of the StageTransition rows
    (the same columns a single move writes), then the stage's bulk reactions
    (`reactions.STAGE_CHANGED_BULK`), each the set-based twin of a single one.

    A lead that another transaction holds is skipped, not waited for (SKIP LOCKED), as is
    one no longer in its `expected_from` stage (a rep moved it meanwhile): their decision
    stands. Returns the transitions written, in lead id order. `wave`: the MqlWave the
    moves belong to, handed to the reactions (handoff holds a wave's MQLs in the queue).
    Only stages listed in STAGE_CHANGED_BULK can be moved in bulk.
    """
    if to_stage not in reactions.STAGE_CHANGED_BULK:
        raise InvalidTransition(
            _("Leads cannot be moved to %(stage)s in bulk.") % {"stage": to_stage}
        )
    who = actor if isinstance(actor, Actor) else Actor.of(actor)
    when = at or timezone.now()
    by_lead = {move.lead_id: move for move in moves}
    sources = {move.expected_from for move in moves if can_move(move.expected_from, to_stage)}
    with transaction.atomic():
        locked = locks.leads_for_bulk_change(by_lead, stages=sources)
        # Under the lock: the stage each lead is in now, as lead_transition re-reads it.
        kept = [
            lead for lead_id, lead in locked.items() if lead.stage == by_lead[lead_id].expected_from
        ]
        if not kept:
            return []
        Lead.objects.filter(pk__in=[lead.pk for lead in kept]).update(
            stage=to_stage, stage_changed_at=when, updated_at=timezone.now()
        )
        records = [
            StageTransition(
                lead=lead,
                from_stage=lead.stage,
                to_stage=to_stage,
                occurred_at=when,
                actor_user=who.user,
                actor_system=who.system,
                reason=by_lead[lead.pk].reason,
                context=by_lead[lead.pk].context or {},
            )
            for lead in kept
        ]
        StageTransition.objects.bulk_create(records)
        for lead in kept:
            lead.stage, lead.stage_changed_at = to_stage, when
        reactions.run(reactions.STAGE_CHANGED_BULK[to_stage], transitions=records, wave=wave)
    return records


def mql_wave_start(*, kind: str, key: str, label: str, started_by: User | None = None) -> MqlWave:
    """The wave of MQLs a cause (a publish's rescore, an import) is about to make, named
    by `key` so each of its batches finds it; the one already there for that key."""
    wave, _created = MqlWave.objects.get_or_create(
        key=key, defaults={"kind": kind, "label": label, "started_by": started_by}
    )
    return wave


def mql_wave_finish(*, key: str, at: datetime) -> None:
    """The cause has made its last MQL (the rescore's end)."""
    MqlWave.objects.filter(key=key, finished_at__isnull=True).update(finished_at=at)


# --- after SQL: the pipeline (by the rep, or SFA feedback as actor "sfa:x") ---------------


class Move(TypedDict, total=False):
    """What a pipeline move may carry: the reason and context for its StageTransition,
    and when it happened (SFA feedback reports its own time; default now)."""

    reason: str
    context: dict[str, Any] | None
    at: datetime | None


# Each pipeline move by the stage it goes to: the stages it may leave, and the refusal
# when the lead is elsewhere (%(stage)s: where it is).
AFTER_SQL: dict[str, tuple[tuple[str, ...], Any]] = {
    S.OPPORTUNITY: (
        (S.SQL,),
        gettext_lazy("Only an SQL can become an opportunity; this lead is %(stage)s."),
    ),
    S.CUSTOMER: (
        (S.SQL, S.OPPORTUNITY),
        gettext_lazy("Only an SQL or an opportunity can be won; this lead is %(stage)s."),
    ),
    S.RECYCLED: (
        (S.SQL, S.OPPORTUNITY),
        gettext_lazy("Only an SQL or an opportunity can be lost; this lead is %(stage)s."),
    ),
}


def _move_after_sql(
    *, lead: Lead, to_stage: str, actor: User | str, **move: Unpack[Move]
) -> StageTransition:
    allowed_from, refusal = AFTER_SQL[to_stage]
    current = Lead.objects.values_list("stage", flat=True).get(pk=lead.pk)
    if current not in allowed_from:
        raise InvalidTransition(refusal % {"stage": Stage(current).label})
    # The handoff that made the lead an SQL: its acceptance wrote its id into the SQL
    # transition (the core reads its own audit row; it knows nothing of handoffs).
    handoff_id = (
        StageTransition.objects.filter(lead_id=lead.pk, to_stage=Stage.SQL)
        .order_by("-occurred_at", "-id")
        .values_list("context__handoff_id", flat=True)
        .first()
    )
    full_context = {"handoff_id": handoff_id, **(move.get("context") or {})}
    # expected_from: if someone moved the lead since we read it, refuse instead of guessing.
    return lead_transition(
        lead=lead,
        to_stage=to_stage,
        actor=actor,
        reason=move.get("reason", ""),
        context=full_context,
        expected_from=current,
        at=move.get("at"),
    )


def lead_mark_opportunity(
    *, lead: Lead, actor: User | str, **move: Unpack[Move]
) -> StageTransition:
    """An SQL became a deal in the pipeline (by the rep, or SFA feedback as actor "sfa:x")."""
    return _move_after_sql(lead=lead, to_stage=S.OPPORTUNITY, actor=actor, **move)


def lead_mark_won(*, lead: Lead, actor: User | str, **move: Unpack[Move]) -> StageTransition:
    """An SQL or an opportunity was won: the lead is a customer."""
    return _move_after_sql(lead=lead, to_stage=S.CUSTOMER, actor=actor, **move)


def lead_mark_lost(
    *,
    lead: Lead,
    actor: User | str,
    reason: str,
    context: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> StageTransition:
    """A lost SQL or opportunity goes back to marketing for nurture, with the lost reason."""
    reason = (reason or "").strip()
    if not reason:
        message = _("Say why the deal was lost; marketing uses it for nurture.")
        raise DomainError(message, code="reason_required", fields={"reason": [message]})
    context = {"lost_reason": reason, **(context or {})}
    return _move_after_sql(
        lead=lead, to_stage=S.RECYCLED, actor=actor, reason=reason, context=context, at=at
    )
