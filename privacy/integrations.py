"""Integrations' rows in an erasure or export: what senders sent us and what we send on.

Raw inbound payloads are the least structured copy of a person's data: a request body
may hold several people, typed form values, tracking URLs. An erasure replaces the
body of every inbound event that mentions the person (their e-mail anywhere, one of
their external ids as a record id, or the event's processing result naming their lead)
with a marker and empties its headers; matching errs towards removing too much, since
the lead and events made from the body already hold what the other people in it need.
Retention, which does the same to every payload older than INBOUND_RETENTION_DAYS, is
integrations' own housekeeping (integrations/retention.py).

The rows themselves stay: their status, source and times are the intake counts, and
their deduplication key keeps recognising a sender's late redelivery.
"""

from __future__ import annotations

import json
from typing import Any

from django.db.models import Q
from django.utils import timezone

from integrations.models import InboundEvent, InboundItemResult, InboundStatus, Source
from integrations.outbound.models import FeedbackEvent, MessageStatus, OutboxMessage
from integrations.retention import result_without_quotes
from integrations.secrets import headers_redacted
from leadflow.erased import ERASED
from privacy.person import Person

ERASED_BODY = json.dumps({"redacted": "erasure request"})
ERASED_PAYLOAD = {"redacted": "erasure request"}


def _mentioning(person: Person) -> list[InboundEvent]:
    """Inbound events with an unredacted body that mention the person (see the module)."""
    candidates = Q()
    for email in person.emails:
        candidates |= Q(body__icontains=email)
    systems = {system for system, _value in person.external_ids}
    if systems:
        # Ids are only looked for in bodies of sources that number people in that system.
        sources = [s.pk for s in Source.objects.all() if s.external_id_system in systems]
        for value in person.external_id_values:
            candidates |= Q(source_id__in=sources, body__contains=value)
    for lead_id in person.lead_ids:
        # A text match on the JSON list narrows the scan; the exact check is below.
        candidates |= Q(result__leads__icontains=str(lead_id))
    if not candidates:
        return []
    matched = []
    for event in InboundEvent.objects.filter(candidates, redacted_at__isnull=True).iterator():
        leads = (event.result or {}).get("leads") or []
        if any(lead_id in leads for lead_id in person.lead_ids):
            matched.append(event)
            continue
        try:
            document: Any = json.loads(event.body)
        except ValueError:
            document = event.body
        if person.mentioned_in_json(document) or person.mentioned_in_json(event.headers):
            matched.append(event)
    return matched


def inbound_personal_data_erase(*, person: Person) -> dict[str, int]:
    now = timezone.now()
    events = _mentioning(person)
    never_processed = 0
    for event in events:
        event.body = ERASED_BODY
        event.headers = {}
        event.result = result_without_quotes(event.result)
        event.redacted_at = now
        if event.reason:
            event.reason = ERASED
        if event.status == InboundStatus.RECEIVED:
            # Nothing left to process: say so instead of failing on the marker later.
            event.status = InboundStatus.FAILED
            event.reason = "Payload erased (erasure request) before it was processed."
            event.processed_at = now
            never_processed += 1
    InboundEvent.objects.bulk_update(
        events,
        ["body", "headers", "result", "redacted_at", "reason", "status", "processed_at"],
        batch_size=200,
    )
    # The item errors quote the items' values, as the result's errors do.
    InboundItemResult.objects.filter(inbound_event__in=events).exclude(reason="").update(
        reason=ERASED
    )
    return {
        "integrations.InboundEvent.body": len(events),
        "integrations.InboundEvent.unprocessed": never_processed,
    }


def outbound_personal_data_erase(*, person: Person) -> dict[str, int]:
    """Payloads of the lead's outbox messages (any status) and SFA feedback are removed;
    messages not yet sent are cancelled (dead, with the reason), so no tombstone of the
    person is pushed to an SFA afterwards."""
    messages = OutboxMessage.objects.filter(lead_id__in=person.lead_ids)
    cancelled = messages.filter(status__in=[MessageStatus.PENDING, MessageStatus.IN_FLIGHT]).update(
        status=MessageStatus.DEAD,
        last_error="Cancelled: the person's data was erased.",
        lease_expires_at=None,
        claim_token=None,
        updated_at=timezone.now(),
    )
    redacted = messages.exclude(payload=ERASED_PAYLOAD).update(
        payload=ERASED_PAYLOAD, response_body=""
    )
    feedback = (
        FeedbackEvent.objects.filter(lead_id__in=person.lead_ids)
        .exclude(payload=ERASED_PAYLOAD)
        .update(payload=ERASED_PAYLOAD, reason="")
    )
    return {
        "integrations.OutboxMessage.payload": redacted,
        "integrations.OutboxMessage.cancelled": cancelled,
        "integrations.FeedbackEvent.payload": feedback,
    }


def integrations_data_export(*, person: Person) -> dict[str, list[dict[str, Any]]]:
    inbound = []
    for event in sorted(_mentioning(person), key=lambda e: (e.received_at, e.pk)):
        try:
            body: Any = json.loads(event.body)
        except ValueError:
            body = event.body
        inbound.append(
            {
                "id": event.pk,
                "source": event.source.slug,
                "received_at": event.received_at,
                "status": event.status,
                # The person's file, not the sender's credentials (a Marketo token header).
                "headers": headers_redacted(event.headers),
                "body": body,
            }
        )
    outbox = [
        {
            "id": message.pk,
            "destination": message.destination.name,
            "event": message.event,
            "status": message.status,
            "payload": message.payload,
            "created_at": message.created_at,
            "delivered_at": message.delivered_at,
        }
        for message in OutboxMessage.objects.filter(lead_id__in=person.lead_ids)
        .select_related("destination")
        .order_by("id")
    ]
    feedback = [
        {
            "destination": row.destination.name,
            "event_id": row.event_id,
            "outcome": row.outcome,
            "reason": row.reason,
            "occurred_at": row.occurred_at,
            "payload": row.payload,
        }
        for row in FeedbackEvent.objects.filter(lead_id__in=person.lead_ids)
        .select_related("destination")
        .order_by("occurred_at", "id")
    ]
    return {"inbound_events": inbound, "outbox_messages": outbox, "feedback_events": feedback}


def integrations_personal_data_erase(*, person: Person) -> dict[str, int]:
    return {
        **inbound_personal_data_erase(person=person),
        **outbound_personal_data_erase(person=person),
    }
