"""Faults, on PostgreSQL + Redis with real Celery workers (other processes).

(a) The broker is down while webhooks arrive: they are stored and answered 202 all the
    same; once it is back, the beat task re-enqueues what was never queued and a worker
    processes each exactly once.
(b) A worker's pool process is SIGKILLed in the middle of processing an inbound event,
    and in the middle of an outbox delivery: acks late + reject on worker lost put the
    message back, a fresh process redoes the work once; nothing lost, nothing doubled.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager, suppress
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.utils import timezone

from integrations.models import InboundEvent, InboundStatus
from integrations.outbound.models import MessageStatus, OutboxMessage
from integrations.tasks import requeue_stale_inbound_events
from leadflow.celery import app
from leadflow.lifecycle import lead_transition
from leadflow.models import EngagementEvent, Lead, Stage
from tests.factories import LeadFactory
from tests.integrations.conftest import REPO_ROOT, make_source, make_webhook, post
from tests.integrations.fakes import Reply, WebhookReceiver
from tests.integrations.test_worker_end_to_end import _test_database_url

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

CLOSED_PORT_BROKER = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def _page_view(n: int) -> dict:
    return {
        "id": f"fault-{n}",
        "type": "page_view",
        "occurred_at": "2026-01-15T10:00:00+09:00",
        "lead": {"email": f"fault{n}@example.jp", "last_name": "障害"},
        "properties": {"url": f"https://example.jp/p/{n}"},
    }


@contextmanager
def _broker(url: str):
    """Point this process's Celery app at another broker (and back)."""
    before = app.conf.broker_url
    env_before = os.environ.get("CELERY_BROKER_URL")

    def switch(to: str) -> None:
        # Celery reads CELERY_BROKER_URL from the environment before its own setting.
        if env_before is not None:
            os.environ["CELERY_BROKER_URL"] = to
        app.conf.broker_url = to
        app._pool = None  # connections are pooled: drop those to the old broker
        app.amqp._producer_pool = None

    switch(url)
    try:
        yield
    finally:
        switch(before)


@contextmanager
def _worker(settings, tmp_path: Path, *, hang: bool = False):
    env = {
        **os.environ,
        "DATABASE_URL": _test_database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
    }
    if hang:
        env["FAULT_HANG_DIR"] = str(tmp_path)
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [
            sys.executable, "-m", "tests.integrations.fault_worker",
            "--pool=prefork", "--concurrency=1", "--without-gossip", "--without-mingle",
            "--without-heartbeat", "--loglevel=WARNING",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its pool processes can be ended with it
    )  # fmt: skip
    try:
        yield worker
    finally:
        try:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
        log.close()


def _wait_for(predicate, worker, tmp_path: Path, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if worker.poll() is not None:
            break
        time.sleep(0.1)
    output = (tmp_path / "worker.log").read_text(errors="replace")
    pytest.fail(f"{what}: not within {timeout} s (worker exit {worker.poll()}):\n{output[-4000:]}")


def _pool_processes(worker) -> list[int]:
    children = Path(f"/proc/{worker.pid}/task/{worker.pid}/children")
    return [int(pid) for pid in children.read_text().split()] if children.exists() else []


@pytest.fixture
def empty_queues():
    # Messages other runs left in this Redis db would reach our worker first.
    app.control.purge()
    yield
    app.control.purge()


# (a) ------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_webhooks_are_kept_while_the_broker_is_down_and_processed_when_it_returns(
    client, settings, tmp_path, caplog, empty_queues
):
    source = make_source("generic", rate_limit_per_minute=0)

    with _broker(CLOSED_PORT_BROKER), caplog.at_level(logging.ERROR):
        answers = [post(client, source, _page_view(n)) for n in range(3)]

    assert [a.status_code for a in answers] == [202, 202, 202]
    ids = [a.json()["id"] for a in answers]
    stored = InboundEvent.objects.filter(pk__in=ids)
    assert set(stored.values_list("status", flat=True)) == {InboundStatus.RECEIVED}
    assert not stored.filter(enqueued_at__isnull=False).exists()  # never reached a queue
    assert sum("Could not wake the intake workers" in r.getMessage() for r in caplog.records) == 3

    # The broker is back. Beat's next run (a minute later) re-enqueues them; a worker runs.
    with time_machine.travel(timezone.now() + timedelta(minutes=2)):
        assert requeue_stale_inbound_events() == 3
    assert not stored.filter(enqueued_at__isnull=True).exists()
    with _worker(settings, tmp_path) as worker:
        _wait_for(
            lambda: not stored.filter(status=InboundStatus.RECEIVED).exists(),
            worker,
            tmp_path,
            "the re-enqueued events were processed",
        )
    assert set(stored.values_list("status", "attempts")) == {(InboundStatus.PROCESSED, 1)}
    assert Lead.objects.filter(email__startswith="fault").count() == 3
    assert EngagementEvent.objects.filter(source=source.slug).count() == 3
    with time_machine.travel(timezone.now() + timedelta(minutes=2)):
        assert requeue_stale_inbound_events() == 0  # nothing is left behind


# (b) ------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_processing_redoes_the_event_once(
    client, settings, tmp_path, empty_queues
):
    source = make_source("generic", rate_limit_per_minute=0)
    started = tmp_path / "inbound-started"

    with _worker(settings, tmp_path, hang=True) as worker:
        response = post(client, source, _page_view(1))
        assert response.status_code == 202
        event_id = response.json()["id"]
        _wait_for(started.exists, worker, tmp_path, "the worker started processing")
        # Every row of the event is written inside the open transaction; kill it there.
        stalled = int(started.read_text())
        assert stalled in _pool_processes(worker)
        os.kill(stalled, signal.SIGKILL)

        _wait_for(
            lambda: InboundEvent.objects.get(pk=event_id).status != InboundStatus.RECEIVED,
            worker,
            tmp_path,
            "a fresh pool process redid the event",
        )
        assert stalled not in _pool_processes(worker)

    event = InboundEvent.objects.get(pk=event_id)
    # The killed attempt rolled back entirely, its count included: one attempt, one of each.
    assert (event.status, event.attempts) == (InboundStatus.PROCESSED, 1)
    assert Lead.objects.filter(email="fault1@example.jp").count() == 1
    assert EngagementEvent.objects.filter(source=source.slug).count() == 1
    assert EngagementEvent.objects.get().external_id == "fault-1"


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_delivery_delivers_the_message_once_more(
    settings, tmp_path, empty_queues
):
    with WebhookReceiver() as receiver, _worker(settings, tmp_path) as worker:
        # The first call hangs (the SFA is slow); the worker is killed while waiting.
        receiver.script = [Reply(200, {"id": "late"}, delay=30)]
        make_webhook(receiver.url, timeout_seconds=20.0)
        lead = LeadFactory(email="deliver@example.jp")
        lead_transition(lead=lead, to_stage=Stage.MQL, actor="scoring")  # kick on commit
        message = OutboxMessage.objects.get(lead=lead)

        _wait_for(lambda: len(receiver.requests) == 1, worker, tmp_path, "the call was made")
        assert OutboxMessage.objects.get(pk=message.pk).status == MessageStatus.IN_FLIGHT
        # Its lease would run out in ~3 minutes (8 × timeout + 30 s); let that time pass, so
        # the redelivered task may take the message over at once.
        OutboxMessage.objects.filter(pk=message.pk).update(
            lease_expires_at=timezone.now() - timedelta(seconds=1)
        )
        (pool_process,) = _pool_processes(worker)
        os.kill(pool_process, signal.SIGKILL)

        _wait_for(
            lambda: OutboxMessage.objects.get(pk=message.pk).status == MessageStatus.DELIVERED,
            worker,
            tmp_path,
            "the redelivered task delivered the message",
        )

    message.refresh_from_db()
    assert message.attempts == 2
    assert message.remote_id == "rcv-2"
    assert OutboxMessage.objects.filter(lead=lead).count() == 1
    # At least once, never lost: the receiver saw the same message twice, with one key to
    # recognise the repeat by (Idempotency-Key), and answered only the second.
    keys = [r.headers.get("Idempotency-Key") for r in receiver.requests]
    assert keys == [message.idempotency_key, message.idempotency_key]
