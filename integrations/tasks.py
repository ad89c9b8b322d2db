"""Celery tasks of the intake side: thin, take ids, call one service, safe to run twice."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from integrations import retention, services
from integrations.outbound.inline import outbox_delivery_inline

PRUNE_BATCH = 1000


@shared_task(name="integrations.process_inbound_event", acks_late=True)
def process_inbound_event(inbound_event_id: int) -> None:
    # An MQL this event makes is sent to the SFA by this worker right after the commit.
    with outbox_delivery_inline():
        services.inbound_event_process(inbound_event_id=inbound_event_id)


@shared_task(name="integrations.drain_inbound_events", acks_late=True)
def drain_inbound_events() -> int:
    # Woken after webhooks commit (services.inbound_workers_wake); claims stored events.
    # An MQL an event makes is sent to the SFA by this worker right after that event.
    return services.inbound_events_drain(each=outbox_delivery_inline)


@shared_task(name="integrations.requeue_stale_inbound_events")
def requeue_stale_inbound_events() -> int:
    return services.inbound_events_requeue_stale()


@shared_task(
    name="integrations.hand_off_lead_import",
    acks_late=True,
    autoretry_for=(OperationalError,),  # a deadlock or a lost connection: the run is idempotent
    retry_backoff=True,
    max_retries=5,
)
def hand_off_lead_import(lead_import_id: int) -> None:
    # A large CSV import's MQLs, after its rows; again later while it is still going or
    # some of its leads were busy (services.lead_import_hand_off says when).
    again = services.lead_import_hand_off(lead_import_id=lead_import_id)
    if again is not None:
        hand_off_lead_import.apply_async((lead_import_id,), countdown=again)


@shared_task(name="integrations.hand_off_stale_lead_imports")
def hand_off_stale_lead_imports() -> int:
    return services.lead_imports_hand_off_stale()


@shared_task(name="integrations.prune_inbound_payloads", acks_late=True)
def prune_inbound_payloads(max_batches: int = 20) -> int:
    """Daily: remove raw payloads past INBOUND_RETENTION_DAYS, in bounded batches; hands
    over to a fresh task while full batches keep coming (a first run on a big backlog)."""
    total = 0
    for _batch in range(max_batches):
        pruned = retention.inbound_payloads_prune(batch_size=PRUNE_BATCH)
        total += pruned
        if pruned < PRUNE_BATCH:
            return total
    prune_inbound_payloads.delay(max_batches)
    return total


# Celery autodiscovery imports only this module; the outbound tasks live beside their code.
from integrations.outbound.tasks import deliver_outbox_task  # noqa: E402

__all__ = [
    "deliver_outbox_task",
    "drain_inbound_events",
    "hand_off_lead_import",
    "hand_off_stale_lead_imports",
    "process_inbound_event",
    "prune_inbound_payloads",
    "requeue_stale_inbound_events",
]
