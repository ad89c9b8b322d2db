"""Recovery from lost queue messages and a dead beat, with real processes (issue 14).

On PostgreSQL, with a redis-server of the test's own (started here on a free port, with
nothing kept on disk, restarted and killed here: never the shared one), real Celery
workers and a real beat as other processes, with short intervals (FAST) so the run is
quick; the defaults give the same behaviour within 2 minutes (README "Operations").

(a) Webhooks answered 202 and queued while no worker runs; Redis restarts and forgets
    the queue; a worker and beat start: the requeue sweep finds every event past its
    lease, and each is processed exactly once.
(b) 200 webhooks with a worker running; the worker is killed with SIGKILL mid-flight (one
    event stalled inside its transaction, so at least one message is unacknowledged:
    Redis would give it back only after the hour of the visibility timeout); a new worker
    starts: every event is processed exactly once.
(c) beat is killed with SIGKILL: /readyz turns 503 naming beat once the last tick is
    older than BEAT_STALE_SECONDS; a restarted beat makes it 200 again.

Each prints the time it measured (under load, on a shared machine: indicative only).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path

import pytest
import redis

from integrations.models import InboundEvent, InboundStatus
from leadflow.models import EngagementEvent, Heartbeat, Lead
from tests.integrations.conftest import REPO_ROOT, make_source, post
from tests.integrations.test_faults import _broker, _page_view
from tests.integrations.test_worker_end_to_end import _test_database_url

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

# Short intervals for the test; the defaults are 30 s, 60 s, 30 s and 120 s.
FAST = {
    "INBOUND_REQUEUE_SWEEP_SECONDS": "2",
    "INBOUND_REQUEUE_LEASE_SECONDS": "5",
    "BEAT_HEARTBEAT_SECONDS": "1",
    "BEAT_STALE_SECONDS": "6",
}
PROMISE = 120.0  # seconds: every 202 processed within 2 minutes of the fault ending
QUEUES = "celery,intake,scoring,delivery,sla"


def _free_port() -> int:
    # LEADFLOW_FAULT_REDIS_PORTS="6390-6399" keeps to a range on a shared machine;
    # otherwise any free port the kernel gives.
    wanted = os.environ.get("LEADFLOW_FAULT_REDIS_PORTS", "")
    candidates = [0]
    if wanted:
        low, high = (int(part) for part in wanted.split("-"))
        candidates = list(range(low, high + 1))
    for port in candidates:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    pytest.fail(f"no free port in LEADFLOW_FAULT_REDIS_PORTS={wanted}")


class OwnRedis:
    """A redis-server of this test only, keeping nothing on disk (like one without
    persistence that restarts: its queues are gone)."""

    def __init__(self, workdir: Path) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        client = self.client()
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5)


@pytest.fixture
def own_redis(tmp_path, settings) -> Iterator[OwnRedis]:
    if shutil.which("redis-server") is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed (apt-get install redis-server)")
        pytest.skip("redis-server is not installed")
    server = OwnRedis(tmp_path)
    server.start()
    # This process (the web side: intake, /readyz) talks to the same Redis.
    settings.CELERY_BROKER_URL = server.url
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
    settings.BEAT_STALE_SECONDS = int(FAST["BEAT_STALE_SECONDS"])
    try:
        with _broker(server.url):
            yield server
    finally:
        server.kill()


class Processes:
    """Workers and beats started for one test; each in its own process group, so a kill
    reaches the pool processes too. Everything still running is stopped at the end."""

    def __init__(self, tmp_path: Path, broker_url: str) -> None:
        self.tmp_path = tmp_path
        self.env = {
            **os.environ,
            **FAST,
            "DATABASE_URL": _test_database_url(),
            "CELERY_BROKER_URL": broker_url,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "LEADFLOW_VAR_DIR": str(tmp_path / "var"),
        }
        self.started: list[tuple[str, subprocess.Popen]] = []

    def _start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = (self.tmp_path / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.integrations.fault_worker", *args],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()  # the child has its own copy
        self.started.append((name, process))
        return process

    def worker(self, *, hang: bool = False) -> subprocess.Popen:
        env = dict(self.env)
        if hang:
            env["FAULT_HANG_DIR"] = str(self.tmp_path)
        return self._start(
            "worker",
            [
                "--pool=prefork", "--concurrency=2", "--without-gossip", "--without-mingle",
                "--without-heartbeat", "--loglevel=WARNING", "-Q", QUEUES,
                f"--hostname=fault-{len(self.started)}@%h",
            ],
            env,
        )  # fmt: skip

    def beat(self) -> subprocess.Popen:
        (self.tmp_path / "var").mkdir(exist_ok=True)
        schedule = self.tmp_path / "var" / "celerybeat-schedule"
        return self._start(
            "beat", ["beat", "--loglevel=INFO", f"--schedule={schedule}"], dict(self.env)
        )

    @staticmethod
    def kill(process: subprocess.Popen) -> None:
        """kill -9 of the process and its pool: no clean shutdown, nothing handed back."""
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop_all(self) -> None:
        for _name, process in self.started:
            if process.poll() is None:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for _name, process in self.started:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)

    def logs(self) -> str:
        parts = []
        for path in sorted(self.tmp_path.glob("*.log")):
            parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)


@pytest.fixture
def processes(tmp_path, own_redis) -> Iterator[Processes]:
    running = Processes(tmp_path, own_redis.url)
    try:
        yield running
    finally:
        running.stop_all()


def _wait_for(
    predicate: Callable[[], bool], processes: Processes, what: str, timeout: float
) -> float:
    """Seconds until `predicate()` held; fails, with the processes' logs, after `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.2)
    pytest.fail(f"{what}: not within {timeout:.0f} s\n{processes.logs()}")


def _report(capsys, line: str) -> None:
    with capsys.disabled():
        print(f"\n[recovery] {line}")


def _processed(ids: list[int]) -> int:
    return InboundEvent.objects.filter(pk__in=ids).exclude(status=InboundStatus.RECEIVED).count()


def _assert_each_processed_exactly_once(source, ids: list[int]) -> None:
    events = InboundEvent.objects.filter(pk__in=ids)
    # One attempt each: a killed attempt rolls back with its count; a copy of a message
    # that comes later finds the event processed and does nothing.
    assert sorted(events.values_list("status", "attempts")) == [(InboundStatus.PROCESSED, 1)] * len(
        ids
    )
    recorded = list(EngagementEvent.objects.filter(source=source.slug).values_list("external_id"))
    assert sorted(recorded) == sorted((f"fault-{n}",) for n in range(len(ids)))
    assert Lead.objects.filter(email__startswith="fault").count() == len(ids)


# (a) ------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_webhooks_queued_when_redis_restarts_are_processed_once_within_two_minutes(
    client, own_redis, processes, capsys, monkeypatch
):
    # However slowly the 50 are posted, this web process wakes the workers once: one drain
    # message for all of them (a webhook sends no task of its own).
    monkeypatch.setattr("integrations.services.WAKE_SECONDS", 3600.0)
    source = make_source("generic", rate_limit_per_minute=0)
    answers = [post(client, source, _page_view(n)) for n in range(50)]
    assert [a.status_code for a in answers] == [202] * 50
    ids = [a.json()["id"] for a in answers]
    assert own_redis.client().llen("intake") == 1  # queued, and no worker to take it
    assert not InboundEvent.objects.filter(pk__in=ids, enqueued_at__isnull=True).exists()

    own_redis.restart()
    assert own_redis.client().llen("intake") == 0  # the queue is gone with it

    processes.worker()
    processes.beat()
    recovery = _wait_for(
        lambda: _processed(ids) == len(ids), processes, "all 50 processed", PROMISE
    )

    _report(capsys, f"Redis restart with 50 queued: all processed {recovery:.1f} s after start")
    _assert_each_processed_exactly_once(source, ids)


# (b) ------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_flight_loses_no_webhook_and_doubles_none(
    client, own_redis, processes, tmp_path, capsys
):
    source = make_source("generic", rate_limit_per_minute=0)
    processes.beat()
    # Its first event stalls inside the transaction: a message surely in flight at the kill.
    worker = processes.worker(hang=True)
    stalled = tmp_path / "inbound-started"
    ids: list[int] = []
    killed_after = None
    for n in range(200):
        answer = post(client, source, _page_view(n))
        assert answer.status_code == 202
        ids.append(answer.json()["id"])
        if killed_after is None and stalled.exists() and _processed(ids) >= 40:
            processes.kill(worker)
            killed_after = n + 1
    if killed_after is None:  # faster posting than processing: kill once 40 are done
        _wait_for(lambda: stalled.exists() and _processed(ids) >= 40, processes, "40 processed", 60)
        processes.kill(worker)
        killed_after = len(ids)
    # Under pytest-xdist kombu prefixes its keys with the process's global_keyprefix
    # (the unacked hash too, or not, by kombu version): count whichever holds them.
    redis_client = own_redis.client()
    unacked = sum(redis_client.hlen(key) for key in redis_client.scan_iter(match="*unacked"))
    done_at_kill = _processed(ids)
    # The stalled one at least: Redis would give it back after the visibility timeout.
    assert unacked >= 1
    assert done_at_kill < len(ids)

    processes.worker()
    recovery = _wait_for(
        lambda: _processed(ids) == len(ids), processes, "all 200 processed", PROMISE
    )

    _report(
        capsys,
        f"worker kill -9 after {killed_after} posted, {done_at_kill} processed, "
        f"{unacked} unacked: all 200 processed {recovery:.1f} s after the new worker started",
    )
    _assert_each_processed_exactly_once(source, ids)


# (c) ------------------------------------------------------------------------------------


def _readyz(client) -> tuple[int, dict]:
    response = client.get("/readyz")
    return response.status_code, response.json()


@pytest.mark.django_db(transaction=True)
def test_a_killed_beat_makes_readyz_503_naming_beat_and_a_restarted_one_200(
    client, processes, capsys
):
    processes.worker()
    beat = processes.beat()
    _wait_for(lambda: _readyz(client)[0] == 200, processes, "readyz ok with beat ticking", 60)
    assert _readyz(client)[1]["checks"]["beat"] == "ok"  # ticking, not merely waiting

    processes.kill(beat)
    stale_after = _wait_for(
        lambda: _readyz(client)[0] == 503, processes, "readyz 503 after beat died", 60
    )
    status, body = _readyz(client)
    assert status == 503
    assert body["status"] == "unavailable"
    assert (body["checks"]["database"], body["checks"]["broker"]) == ("ok", "ok")
    assert body["checks"]["beat"].startswith("stale: last tick ")
    assert body["checks"]["beat"].endswith(" s ago (limit 6 s)")
    assert body["beat"]["last_tick_age_seconds"] >= 6  # shown to 0.1 s: 6.04 reads 6.0

    processes.beat()
    back_after = _wait_for(
        lambda: _readyz(client)[0] == 200, processes, "readyz 200 after beat restarted", 60
    )
    assert _readyz(client)[1]["checks"]["beat"] == "ok"
    assert list(Heartbeat.objects.values_list("name", flat=True)) == ["beat"]

    _report(
        capsys,
        f"beat kill -9: readyz 503 after {stale_after:.1f} s (limit 6 s), "
        f"200 again {back_after:.1f} s after beat restarted",
    )
