"""Celery tasks of the intake side: thin, take ids, call one service, safe to run twice."""

from __future__ import annotations

from celery import shared_task

from integrations import services


@shared_task(name="integrations.process_inbound_event", acks_late=True)
def process_inbound_event(inbound_event_id: int) -> None:
    services.inbound_event_process(inbound_event_id=inbound_event_id)


@shared_task(name="integrations.requeue_stale_inbound_events")
def requeue_stale_inbound_events() -> int:
    return services.inbound_events_requeue_stale()


# Celery autodiscovery imports only this module; the outbound tasks live beside their code.
from integrations.outbound.tasks import deliver_outbox_task  # noqa: E402

__all__ = ["deliver_outbox_task", "process_inbound_event", "requeue_stale_inbound_events"]
