"""Workers claim stored inbound events (the drain) after a webhook wakes them.

A webhook sends no task of its own: it makes sure a drain will look after its commit (a
web process sends one at most every WAKE_SECONDS; a drain looks for DRAIN_LINGER_SECONDS
after its last find), and drains claim the oldest received events no other worker
holds, so every 202 is processed once however many drains run.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from contextlib import contextmanager
from datetime import timedelta

import pytest
import time_machine
from django.db import connections
from django.utils import timezone

from integrations import services
from integrations.models import InboundEvent, InboundStatus
from integrations.tasks import drain_inbound_events
from leadflow.models import EngagementEvent, Heartbeat
from leadflow.services import heartbeat_record
from tests.integrations.conftest import make_source, post
from tests.integrations.test_inbound_locks import page_view
from tests.integrations.test_retention import _received

WAKE = {"expires": 30.0}


@pytest.fixture
def wakes(monkeypatch):
    """The drain tasks handed to the broker (their options), instead of sending them.
    Drains here stop as soon as they find nothing (no linger), unless a test says so."""
    sent: list[dict] = []
    monkeypatch.setattr(
        "integrations.tasks.drain_inbound_events.apply_async",
        lambda args=(), **options: sent.append(options),
    )
    monkeypatch.setattr(services, "DRAIN_LINGER_SECONDS", 0.0)
    return sent


@pytest.mark.django_db
def test_a_drain_processes_every_received_event_once_oldest_first(client, wakes, monkeypatch):
    source = make_source("generic")
    ids = [post(client, source, page_view(n)).json()["id"] for n in range(3)]
    duplicate = post(client, source, page_view(0))
    order: list[int] = []
    original = services._process_locked

    def record(inbound: InboundEvent) -> None:
        order.append(inbound.pk)
        original(inbound)

    monkeypatch.setattr(services, "_process_locked", record)
    wakes.clear()

    claimed = drain_inbound_events()

    assert duplicate.status_code == 200
    assert claimed == 3
    assert order == ids
    assert set(
        InboundEvent.objects.filter(pk__in=ids).values_list("status", "attempts", "claimed_by")
    ) == {(InboundStatus.PROCESSED, 1, "")}
    assert EngagementEvent.objects.filter(source=source.slug).count() == 3
    # It found work, so it woke one more drain (to spread a backlog over the workers).
    assert wakes == [WAKE]
    assert drain_inbound_events() == 0  # nothing left; and the second drain wakes nobody
    assert wakes == [WAKE]


@pytest.mark.django_db
def test_a_drain_passes_over_an_event_another_worker_holds_a_lease_on(client, wakes):
    source = make_source("generic")
    held = post(client, source, page_view(1)).json()["id"]
    free = post(client, source, page_view(2)).json()["id"]
    InboundEvent.objects.filter(pk=held).update(
        claimed_by="other-worker", lease_until=timezone.now() + timedelta(seconds=30)
    )

    assert services.inbound_events_drain() == 1

    assert InboundEvent.objects.get(pk=free).status == InboundStatus.PROCESSED
    assert InboundEvent.objects.get(pk=held).status == InboundStatus.RECEIVED


@pytest.mark.django_db
def test_an_event_whose_processing_fails_is_marked_failed_and_the_drain_goes_on(
    client, wakes, monkeypatch
):
    source = make_source("generic")
    broken, fine = (post(client, source, page_view(n)).json()["id"] for n in range(2))
    original = services._process_locked

    def fail_first(inbound: InboundEvent) -> None:
        if inbound.pk == broken:
            raise RuntimeError("adapter bug")
        original(inbound)

    monkeypatch.setattr(services, "_process_locked", fail_first)

    assert services.inbound_events_drain() == 2

    failed = InboundEvent.objects.get(pk=broken)
    assert (failed.status, failed.reason) == (
        InboundStatus.FAILED,
        "Internal error: RuntimeError('adapter bug')",
    )
    assert InboundEvent.objects.get(pk=fine).status == InboundStatus.PROCESSED


@pytest.mark.django_db
def test_a_drain_out_of_time_leaves_the_rest_to_the_drain_it_wakes(client, wakes):
    source = make_source("generic")
    pk = post(client, source, page_view(1)).json()["id"]
    wakes.clear()

    assert services.inbound_events_drain(time_budget=0) == 0

    assert InboundEvent.objects.get(pk=pk).status == InboundStatus.RECEIVED
    assert wakes == [WAKE]


@pytest.mark.django_db
def test_each_event_of_a_drain_is_processed_inside_its_own_block(client, wakes):
    # The task's block is the inline outbox delivery: it sends an event's SFA messages
    # when it ends, so it must end with each event, not with the whole drain.
    source = make_source("generic")
    for n in range(2):
        post(client, source, page_view(n))
    blocks: list[str] = []

    @contextmanager
    def block():
        blocks.append("enter")
        yield
        blocks.append("exit")

    assert services.inbound_events_drain(each=block) == 2

    # Two events, and the third block found nothing to claim.
    assert blocks == ["enter", "exit"] * 3


@pytest.mark.django_db(transaction=True)
def test_a_web_process_wakes_the_workers_at_most_once_per_window(client, wakes, monkeypatch):
    source = make_source("generic")
    now = [1000.0]
    monkeypatch.setattr(services, "monotonic", lambda: now[0])

    for n in range(3):
        post(client, source, page_view(n))
        now[0] += 0.1
    assert wakes == [WAKE]  # the first sent a drain; it looks until after the others
    now[0] = 1000.0 + services.WAKE_SECONDS
    post(client, source, page_view(4))

    assert wakes == [WAKE, WAKE]


def test_a_drain_looks_for_longer_than_a_web_process_goes_without_waking():
    # What makes a webhook that sent no drain safe: the last drain its process sent
    # started after that send and looks until after this webhook's commit.
    assert services.DRAIN_LINGER_SECONDS > services.WAKE_SECONDS + services.DRAIN_POLL_SECONDS


@pytest.mark.django_db
def test_a_failed_wake_is_tried_again_by_the_next_webhook(
    client, monkeypatch, django_capture_on_commit_callbacks
):
    source = make_source("generic")
    attempts: list[dict] = []

    def refuse(args=(), **options):
        attempts.append(options)
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr("integrations.tasks.drain_inbound_events.apply_async", refuse)

    with django_capture_on_commit_callbacks(execute=True):
        answers = [post(client, source, page_view(n)) for n in range(2)]

    assert [a.status_code for a in answers] == [202, 202]
    assert attempts == [WAKE, WAKE]
    # Neither is marked as queued: the sweep's "never queued", taken after the lease.
    assert list(InboundEvent.objects.values_list("enqueued_at", flat=True)) == [None, None]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_drain_lingers_and_claims_an_event_that_comes_while_it_looks(client, wakes, monkeypatch):
    # A webhook that sent no drain (its process woke one just before) relies on this.
    monkeypatch.setattr(services, "DRAIN_LINGER_SECONDS", 5.0)
    monkeypatch.setattr(services, "_last_wake", time.monotonic())
    source = make_source("generic")
    claimed: list[int] = []

    def drain() -> None:
        try:
            claimed.append(services.inbound_events_drain())
        finally:
            connections.close_all()

    thread = threading.Thread(target=drain)
    thread.start()
    time.sleep(0.3)  # the drain has found nothing yet, and looks again
    late = post(client, source, page_view(1)).json()["id"]
    thread.join(timeout=30)

    assert wakes == [WAKE]  # none from the webhook; the drain's recruit once it found work
    assert claimed == [1]
    assert InboundEvent.objects.get(pk=late).status == InboundStatus.PROCESSED


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_drains_at_once_process_each_event_once(client, wakes, monkeypatch):
    source = make_source("generic")
    ids = [post(client, source, page_view(n)).json()["id"] for n in range(12)]
    original = services._process_locked
    by_thread: dict[str, list[int]] = {}
    both_working = threading.Barrier(2, timeout=30)

    def slow(inbound: InboundEvent) -> None:
        name = threading.current_thread().name
        by_thread.setdefault(name, []).append(inbound.pk)
        if len(by_thread[name]) == 1:
            both_working.wait()  # each holds its first event's row lock: they overlap
        original(inbound)

    monkeypatch.setattr(services, "_process_locked", slow)
    claimed: dict[str, int] = {}

    def drain(name: str) -> None:
        try:
            claimed[name] = services.inbound_events_drain()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=drain, args=(name,), name=name) for name in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert claimed["a"] + claimed["b"] == 12
    assert claimed["a"] >= 1 and claimed["b"] >= 1
    assert sorted(by_thread["a"] + by_thread["b"]) == ids  # no event went to both
    assert set(InboundEvent.objects.filter(pk__in=ids).values_list("status", "attempts")) == {
        (InboundStatus.PROCESSED, 1)
    }
    assert EngagementEvent.objects.filter(source=source.slug).count() == 12


# --- the drains' heartbeat and the requeue sweep ---------------------------------------

NOW = dt.datetime(2026, 11, 2, 10, 0, tzinfo=dt.UTC)


def _overdue(source, count: int) -> list[int]:
    """Events received and queued five minutes ago, still `received`: a backlog past the
    lease (or lost), as far as their rows tell."""
    five = dt.timedelta(minutes=5)
    return [_received(source, f"backlog-{n}", age=five, queued_ago=five) for n in range(count)]


@pytest.fixture
def per_event(monkeypatch) -> list[int]:
    sent: list[int] = []
    monkeypatch.setattr(services, "_enqueue", sent.append)
    return sent


@pytest.mark.django_db
def test_a_drain_beats_the_heartbeat_once_per_interval_however_much_it_claims(
    client, wakes, monkeypatch
):
    source = make_source("generic")
    for n in range(3):
        post(client, source, page_view(n))
    beats: list[str] = []
    original = services.heartbeat_record

    def counting(*, name: str) -> None:
        beats.append(name)
        original(name=name)

    monkeypatch.setattr(services, "heartbeat_record", counting)

    with time_machine.travel(NOW, tick=False):
        assert services.inbound_events_drain() == 3

    assert beats == [services.DRAIN_HEARTBEAT]  # three events, one write
    assert list(Heartbeat.objects.values_list("name", "beat_at")) == [
        (services.DRAIN_HEARTBEAT, NOW)
    ]


@pytest.mark.django_db
def test_each_committed_chunk_of_a_long_body_reports_progress(client, wakes, monkeypatch):
    # A 5,000-event body keeps one drain busy for up to a minute: the heartbeat must not
    # go quiet meanwhile, or the sweep would take the drain for dead.
    monkeypatch.setattr(services, "CHUNK_SIZE", 2)
    source = make_source("generic")
    post(client, source, {"events": [page_view(n) for n in range(5)]})
    progress: list[int] = []

    event = services.inbound_event_process(
        inbound_event_id=None, progress=lambda: progress.append(1)
    )

    assert event is not None and event.status == InboundStatus.PROCESSED
    assert len(progress) == 3  # chunks of 2, 2 and 1


@pytest.mark.django_db
def test_a_backlog_the_drains_are_working_through_gets_nothing_extra(wakes, per_event):
    source = make_source("generic")
    _overdue(source, 3)
    # A drain committed work 10 s ago: the overdue events are the backlog it works through.
    heartbeat_record(name=services.DRAIN_HEARTBEAT, at=NOW - dt.timedelta(seconds=10))

    with time_machine.travel(NOW, tick=False):
        # An empty intake queue (one drain message covers them all) changes nothing.
        assert services.inbound_events_requeue_stale(queue_length=lambda name: 0) == 0

    assert per_event == []
    assert wakes == []


@pytest.mark.django_db
def test_drains_silent_for_longer_than_the_lease_get_a_drain_and_a_task_per_overdue_event(
    wakes, per_event
):
    source = make_source("generic")
    ids = _overdue(source, 3)
    heartbeat_record(name=services.DRAIN_HEARTBEAT, at=NOW - dt.timedelta(seconds=61))

    with time_machine.travel(NOW, tick=False):
        assert services.inbound_events_requeue_stale(queue_length=lambda name: 0) == 3

    assert per_event == ids
    assert wakes == [WAKE]


@pytest.mark.django_db
def test_events_never_queued_are_sent_when_no_drain_ever_ran(wakes, per_event):
    source = make_source("generic")
    never = _received(source, "never", age=dt.timedelta(minutes=2))

    with time_machine.travel(NOW, tick=False):
        assert services.inbound_events_requeue_stale(queue_length=lambda name: 0) == 1

    assert per_event == [never]
    assert wakes == [WAKE]


@pytest.mark.django_db
def test_the_sweep_wakes_nothing_when_nothing_is_overdue(wakes, per_event):
    source = make_source("generic")
    _received(source, "fresh", age=dt.timedelta(seconds=30), queued_ago=dt.timedelta(seconds=30))

    with time_machine.travel(NOW, tick=False):
        assert services.inbound_events_requeue_stale(queue_length=lambda name: 0) == 0

    assert (per_event, wakes) == ([], [])


@pytest.mark.django_db
def test_dead_drains_with_the_intake_queue_holding_the_last_sweeps_tasks_get_only_a_drain(
    wakes, per_event
):
    # No worker takes the intake queue (the previous sweep's three tasks still wait there):
    # the same three are not queued again, one drain is.
    source = make_source("generic")
    _overdue(source, 3)

    with time_machine.travel(NOW, tick=False):
        assert services.inbound_events_requeue_stale(queue_length=lambda name: 4) == 0

    assert per_event == []
    assert wakes == [WAKE]
