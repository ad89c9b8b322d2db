"""Raw payload retention and the requeue sweep of events no task was queued for."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import time_machine
from django.db import connections, transaction

from integrations import services, tasks
from integrations.models import InboundEvent, InboundStatus
from integrations.retention import EXPIRED_BODY, inbound_payloads_prune
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


def _received(source, key, *, age, queued_ago=None):
    event = InboundEvent.objects.create(source=source, body="{}", dedup_key=key)
    InboundEvent.objects.filter(pk=event.pk).update(
        received_at=NOW - age,
        enqueued_at=None if queued_ago is None else NOW - queued_ago,
    )
    return event.pk


def _empty_queue(name: str) -> int:
    assert name == "intake"
    return 0


def test_the_sweep_takes_events_whose_enqueue_is_older_than_the_lease(monkeypatch, settings):
    # Default: a 60 s lease, so a message lost at any moment is queued again within
    # lease + sweep interval (60 + 30 s), not after half an hour.
    assert (settings.INBOUND_REQUEUE_LEASE_SECONDS, settings.INBOUND_REQUEUE_SWEEP_SECONDS) == (
        60,
        30,
    )
    enqueued: list[int] = []
    monkeypatch.setattr(services, "_enqueue", enqueued.append)
    source = make_source("generic")
    seconds = dt.timedelta(seconds=1)

    never_queued = _received(source, "never", age=61 * seconds)
    just_arrived = _received(source, "fresh", age=59 * seconds)
    lost_later = _received(source, "lost-2", age=80 * seconds, queued_ago=61 * seconds)
    lost_first = _received(source, "lost-1", age=40 * 60 * seconds, queued_ago=90 * seconds)
    just_queued = _received(source, "queued", age=30 * 60 * seconds, queued_ago=59 * seconds)
    done = _received(source, "done", age=60 * 60 * seconds, queued_ago=60 * 60 * seconds)
    InboundEvent.objects.filter(pk=done).update(status=InboundStatus.PROCESSED)

    with time_machine.travel(NOW, tick=False):
        assert inbound_events_requeue_stale(queue_length=_empty_queue) == 3

    # Never queued first, then the lost ones, oldest enqueue first.
    assert enqueued == [never_queued, lost_first, lost_later]
    assert just_arrived not in enqueued and just_queued not in enqueued


def test_a_backlog_that_may_hold_every_overdue_event_is_not_fed_copies(monkeypatch):
    enqueued: list[int] = []
    monkeypatch.setattr(services, "_enqueue", enqueued.append)
    source = make_source("generic")
    minutes = dt.timedelta(minutes=1)
    never_queued = _received(source, "never", age=5 * minutes)
    overdue = [
        _received(source, f"slow-{n}", age=5 * minutes, queued_ago=(5 - n) * minutes)
        for n in range(3)
    ]
    lengths: list[str] = []

    def queue_of(length):
        def queue_length(name: str) -> int:
            lengths.append(name)
            return length

        return queue_length

    with time_machine.travel(NOW, tick=False):
        # Three overdue, three messages waiting: each may be one of them. Only the event
        # that never reached the broker is queued.
        assert inbound_events_requeue_stale(queue_length=queue_of(3)) == 1
        assert enqueued == [never_queued]
        # Fewer messages than overdue events: some are missing; all three go again.
        assert inbound_events_requeue_stale(queue_length=queue_of(2)) == 4
    assert enqueued == [never_queued, never_queued, *overdue]
    assert lengths == ["intake", "intake"]


def test_a_broker_that_cannot_say_its_queue_length_does_not_stop_the_sweep(monkeypatch):
    enqueued: list[int] = []
    monkeypatch.setattr(services, "_enqueue", enqueued.append)
    source = make_source("generic")
    lost = _received(source, "lost", age=dt.timedelta(hours=1), queued_ago=dt.timedelta(hours=1))

    with time_machine.travel(NOW, tick=False):
        assert inbound_events_requeue_stale(queue_length=lambda name: None) == 1

    assert enqueued == [lost]


def test_a_requeued_event_is_taken_again_only_after_another_lease(monkeypatch):
    sent: list[int] = []
    monkeypatch.setattr(tasks.process_inbound_event, "delay", sent.append)
    source = make_source("generic")
    lost = _received(source, "lost", age=dt.timedelta(hours=1), queued_ago=dt.timedelta(hours=1))

    with time_machine.travel(NOW, tick=False):
        assert inbound_events_requeue_stale(queue_length=_empty_queue) == 1
    assert InboundEvent.objects.get(pk=lost).enqueued_at == NOW
    # The next sweeps within the lease leave it alone: no copy per sweep.
    with time_machine.travel(NOW + dt.timedelta(seconds=60), tick=False):
        assert inbound_events_requeue_stale(queue_length=_empty_queue) == 0
    with time_machine.travel(NOW + dt.timedelta(seconds=61), tick=False):
        assert inbound_events_requeue_stale(queue_length=_empty_queue) == 1
    assert sent == [lost, lost]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_event_a_worker_is_processing_right_now_is_not_queued_again(monkeypatch):
    enqueued: list[int] = []
    monkeypatch.setattr(services, "_enqueue", enqueued.append)
    source = make_source("generic")
    hour = dt.timedelta(hours=1)
    busy = _received(source, "busy", age=hour, queued_ago=hour)
    lost = _received(source, "lost", age=hour, queued_ago=hour)
    locked, release = threading.Event(), threading.Event()

    def worker() -> None:  # holds the row lock the way processing does, until released
        try:
            with transaction.atomic():
                InboundEvent.objects.select_for_update(no_key=True).get(pk=busy)
                locked.set()
                release.wait(30)
        finally:
            connections.close_all()

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert locked.wait(30)
        with time_machine.travel(NOW + hour, tick=False):
            assert inbound_events_requeue_stale(queue_length=_empty_queue) == 1
    finally:
        release.set()
        thread.join()

    assert enqueued == [lost]


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
