"""Celery tasks of the outbound side: thin wrappers around the delivery service."""

from __future__ import annotations

from celery import shared_task

from integrations.outbound.delivery import outbox_deliver_due


@shared_task(name="integrations.outbound.deliver_due", ignore_result=True)
def deliver_outbox_task(max_batches: int = 20) -> int:
    """Deliver what is due, in bounded batches. Enqueued on commit of every stage change
    that wrote outbox rows, and every few seconds by beat as the safety net. Safe to run
    any number of times at once: claims never hand one row to two workers."""
    return outbox_deliver_due(max_batches=max_batches).claimed
