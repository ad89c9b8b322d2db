"""The outbox: rows written with the stage change, and the operator actions on them.

A stage change writes one row per destination and event inside its own transaction (so
the rows commit or roll back with it) and, once committed, kicks a delivery worker.
Delivery itself is integrations/outbound/delivery.py; sending right after the commit,
from the worker that made the change, is integrations/outbound/inline.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial

from django.db import transaction
from django.utils import timezone

from integrations.outbound import selectors
from integrations.outbound.delivery import kick_delivery_on_commit
from integrations.outbound.inline import claim_for_inline, inline_batch
from integrations.outbound.models import (
    MessageStatus,
    OutboundEvent,
    OutboxMessage,
)
from integrations.outbound.payload import build_payload, scores_of, transition_facts
from leadflow.models import Stage, StageTransition

# --- Enqueue --------------------------------------------------------------------------


def events_for_transition(*, from_stage: str, to_stage: str) -> list[str]:
    """The outbound events a stage move produces (empty for moves nobody outside cares about).

    Recycled means "back to marketing": it also produces a `recycled` event, which only
    marketing-side destinations receive, so the MA tool can re-nurture the lead.
    """
    if to_stage == Stage.MQL:
        return [OutboundEvent.MQL_CREATED]
    if from_stage == Stage.MQL and to_stage == Stage.SQL:
        return [OutboundEvent.ACCEPTED]
    if to_stage == Stage.RECYCLED:
        if from_stage == Stage.MQL:
            return [OutboundEvent.REJECTED, OutboundEvent.RECYCLED]
        if from_stage in (Stage.SQL, Stage.OPPORTUNITY):
            return [OutboundEvent.LOST, OutboundEvent.RECYCLED]
        return [OutboundEvent.RECYCLED]
    if to_stage == Stage.CUSTOMER and from_stage in (Stage.SQL, Stage.OPPORTUNITY):
        return [OutboundEvent.WON]
    return []


def outbox_enqueue_for_transition(*, transition: StageTransition) -> list[OutboxMessage]:
    """Write the outbox rows for a stage change, inside the caller's transaction.

    Called from STAGE_CHANGED (leadflow.reactions) while `lead_transition` still holds the
    lead's row lock: the rows commit or roll back with the change, and a lead's messages
    get ids in the order of its changes (which delivery relies on for ordering).
    """
    return outbox_enqueue_for_transitions(transitions=[transition])


def outbox_enqueue_for_transitions(
    *, transitions: Iterable[StageTransition]
) -> list[OutboxMessage]:
    """The outbox rows of several stage changes (a bulk move, STAGE_CHANGED_BULK, under
    the batch's lead locks), in one INSERT: per transition, the rows a single change writes."""
    transitions = list(transitions)
    moving = [
        (transition, events)
        for transition in transitions
        if (
            events := events_for_transition(
                from_stage=transition.from_stage, to_stage=transition.to_stage
            )
        )
    ]
    if not moving:
        return []
    destinations = selectors.destinations_enabled()
    if not destinations:
        return []
    rows = []
    for transition, events in moving:
        rows.extend(_rows_for(transition, events, destinations))
    if not rows:
        return []
    # Sending right after the commit is for one lead's change (claim_for_inline reads that
    # lead's open messages); a bulk move's rows go to the delivery worker.
    inline = inline_batch.get() if len(moving) == 1 else None
    claimed_token = claim_for_inline(rows, inline) if inline is not None else None
    # ignore_conflicts: a repeated signal for the same transition must not fail the
    # stage change; the unique key already makes the second copy a no-op.
    created = OutboxMessage.objects.bulk_create(rows, ignore_conflicts=True)
    if inline is not None and claimed_token is not None:
        claimed = [row for row in rows if row.claim_token == claimed_token]
        transaction.on_commit(partial(inline.committed, claimed_token, claimed), robust=True)
    if any(row.status == MessageStatus.PENDING for row in rows):
        # Low latency: a worker starts as soon as the change is committed.
        kick_delivery_on_commit()
    return created


def _rows_for(
    transition: StageTransition, events: list[str], destinations: list
) -> list[OutboxMessage]:
    lead = transition.lead
    facts = transition_facts(transition)
    scores = scores_of(transition)
    # Feedback from an SFA must not be echoed back to the SFA that reported it.
    origin = (transition.context or {}).get("feedback_destination_id")
    rows = []
    for destination in destinations:
        for event in events:
            if not destination.receives(event):
                continue
            if destination.pk == origin and event != OutboundEvent.RECYCLED:
                continue
            key = f"{event}:{transition.pk}"
            rows.append(
                OutboxMessage(
                    destination=destination,
                    lead=lead,
                    transition=transition,
                    event=event,
                    idempotency_key=key,
                    payload=build_payload(
                        mapping=destination.field_mapping,
                        lead=lead,
                        event=event,
                        idempotency_key=key,
                        transition=facts,
                        scores=scores,
                    ),
                    next_attempt_at=transition.occurred_at,
                    created_at=timezone.now(),
                )
            )
    return rows


# --- Operator actions -----------------------------------------------------------------


def outbox_replay(*, message_ids: Iterable[int], actor: str) -> int:
    """Send dead messages again, with the payload rebuilt from the current mapping.

    The event and the facts of the stage change stay as they were; the lead's data and
    the mapping are read now, so a fixed mapping (or a fixed lead) is what goes out.
    """
    now = timezone.now()
    count = 0
    with transaction.atomic():
        messages = (
            OutboxMessage.objects.select_for_update(of=("self",))
            .filter(pk__in=list(message_ids), status=MessageStatus.DEAD)
            .select_related("destination", "lead", "lead__company", "lead__owner")
            .order_by("pk")
        )
        for message in messages:
            old = message.payload or {}
            history = list(message.info.get("replays", []))
            history.append(
                {
                    "at": now.isoformat(),
                    "by": actor,
                    "attempts": message.attempts,
                    "error": message.last_error[:500],
                }
            )
            message.payload = build_payload(
                mapping=message.destination.field_mapping,
                lead=message.lead,
                event=message.event,
                idempotency_key=message.idempotency_key,
                transition=old.get("transition") or {},
                scores=old.get("scores") or {},
            )
            message.status = MessageStatus.PENDING
            message.attempts = 0
            message.next_attempt_at = now
            message.last_error = ""
            message.info = {"replays": history}
            message.save(
                update_fields=[
                    "payload",
                    "status",
                    "attempts",
                    "next_attempt_at",
                    "last_error",
                    "info",
                    "updated_at",
                ]
            )
            count += 1
        if count:
            kick_delivery_on_commit()
    return count


def outbox_retry_now(*, message_ids: Iterable[int]) -> int:
    """Bring waiting messages forward (e.g. once an outage is over)."""
    with transaction.atomic():
        count = OutboxMessage.objects.filter(
            pk__in=list(message_ids), status=MessageStatus.PENDING
        ).update(next_attempt_at=timezone.now())
        if count:
            kick_delivery_on_commit()
    return count
