"""Raw payload retention and the requeue sweep of events no task was queued for."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from integrations import services, tasks
from integrations.models import InboundEvent, InboundStatus
from integrations.privacy import EXPIRED_BODY, inbound_payloads_prune
from integrations.services import inbound_event_reprocess, inbound_events_requeue_stale
from tests.integrations.conftest import make_source

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 2, 10, 0, tzinfo=dt.UTC)


def _event(source, *, days_old: float, status=InboundStatus.PROCESSED, key=None, **fields):
    event = InboundEvent.objects.create(
        source=source,
        body='{"email": "yamada@example.co.jp"}',
        headers={"X-Forwarded-For": "203.0.113.9"},
        dedup_key=key or f"k-{InboundEvent.objects.count()}",
        status=status,
        reason="item 1 (yamada@example.co.jp): no company" if status == "failed" else "",
        result={"items": 1, "applied": 1, "leads": [5], "errors": [{"item": "yamada"}]},
        **fields,
    )
    InboundEvent.objects.filter(pk=event.pk).update(received_at=NOW - dt.timedelta(days=days_old))
    return event


def test_payloads_past_the_retention_period_are_replaced_and_the_rows_kept(settings):
    settings.INBOUND_RETENTION_DAYS = 90
    source = make_source("generic")
    old = _event(source, days_old=91)
    old_failed = _event(source, days_old=120, status=InboundStatus.FAILED)
    old_duplicate = _event(source, days_old=95, status=InboundStatus.DUPLICATE)
    recent = _event(source, days_old=89)
    never_processed = _event(source, days_old=200, status=InboundStatus.RECEIVED)

    with time_machine.travel(NOW, tick=False):
        assert inbound_payloads_prune() == 3
        assert inbound_payloads_prune() == 0  # nothing twice

    for event in (old, old_failed, old_duplicate):
        event.refresh_from_db()
        assert (event.body, event.headers, event.reason) == (EXPIRED_BODY, {}, "")
        assert event.redacted_at == NOW
        assert event.result == {"items": 1, "applied": 1, "leads": [5]}
        assert event.dedup_key.startswith("k-")  # late redeliveries are still recognised
    assert old_failed.status == InboundStatus.FAILED  # counts by status stay
    for event in (recent, never_processed):
        event.refresh_from_db()
        assert "yamada" in event.body and event.redacted_at is None
    assert InboundEvent.objects.count() == 5


def test_the_retention_period_is_a_setting(settings):
    source = make_source("generic")
    _event(source, days_old=8)
    settings.INBOUND_RETENTION_DAYS = 7
    with time_machine.travel(NOW, tick=False):
        assert inbound_payloads_prune() == 1


def test_the_daily_task_works_through_a_backlog_in_batches(settings, monkeypatch):
    settings.INBOUND_RETENTION_DAYS = 90
    source = make_source("generic")
    for _ in range(5):
        _event(source, days_old=100)
    monkeypatch.setattr(tasks, "PRUNE_BATCH", 2)
    handed_over: list[int] = []
    monkeypatch.setattr(tasks.prune_inbound_payloads, "delay", handed_over.append)

    with time_machine.travel(NOW, tick=False):
        assert tasks.prune_inbound_payloads(max_batches=2) == 4
        assert handed_over == [2]  # full batches kept coming: a fresh task goes on
        assert tasks.prune_inbound_payloads(max_batches=2) == 1
    assert handed_over == [2]
    assert not InboundEvent.objects.filter(redacted_at__isnull=True).exists()


def test_a_redacted_failed_event_cannot_be_reprocessed():
    source = make_source("generic")
    event = _event(source, days_old=100, status=InboundStatus.FAILED)
    with time_machine.travel(NOW, tick=False):
        inbound_payloads_prune()

    assert inbound_event_reprocess(inbound_event_id=event.pk) is False
    assert InboundEvent.objects.get(pk=event.pk).status == InboundStatus.FAILED


def test_the_sweep_takes_never_queued_events_after_a_minute_and_lost_ones_after_30(
    monkeypatch,
):
    enqueued: list[int] = []
    monkeypatch.setattr(services, "_enqueue", enqueued.append)
    source = make_source("generic")
    minutes = dt.timedelta(minutes=1)

    def received(key, *, age, queued_ago=None):
        event = InboundEvent.objects.create(source=source, body="{}", dedup_key=key)
        InboundEvent.objects.filter(pk=event.pk).update(
            received_at=NOW - age,
            enqueued_at=None if queued_ago is None else NOW - queued_ago,
        )
        return event.pk

    never_queued = received("never", age=2 * minutes)
    just_arrived = received("fresh", age=minutes / 2)
    queued_backlog = received("backlog", age=20 * minutes, queued_ago=20 * minutes)
    queued_lost = received("lost", age=40 * minutes, queued_ago=31 * minutes)
    done = received("done", age=60 * minutes)
    InboundEvent.objects.filter(pk=done).update(status=InboundStatus.PROCESSED)

    with time_machine.travel(NOW, tick=False):
        assert inbound_events_requeue_stale() == 2

    assert sorted(enqueued) == sorted([never_queued, queued_lost])
    assert just_arrived not in enqueued and queued_backlog not in enqueued


def test_a_successful_enqueue_is_stamped_and_a_failed_one_is_not(monkeypatch, caplog):
    source = make_source("generic")
    event = InboundEvent.objects.create(source=source, body="{}", dedup_key="a")
    sent: list[int] = []
    monkeypatch.setattr(tasks.process_inbound_event, "delay", sent.append)
    with time_machine.travel(NOW, tick=False):
        services._enqueue(event.pk)
    assert sent == [event.pk]
    assert InboundEvent.objects.get(pk=event.pk).enqueued_at == NOW

    other = InboundEvent.objects.create(source=source, body="{}", dedup_key="b")

    def broker_down(*args):
        raise ConnectionRefusedError("[Errno 111] Connection refused")

    monkeypatch.setattr(tasks.process_inbound_event, "delay", broker_down)
    services._enqueue(other.pk)

    assert InboundEvent.objects.get(pk=other.pk).enqueued_at is None
    assert f"Could not enqueue inbound event {other.pk}" in caplog.text
