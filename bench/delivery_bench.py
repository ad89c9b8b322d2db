"""End-to-end delivery latency: lead in → MQL delivered to the SFA.

On PostgreSQL + Redis with a real Celery worker subprocess (and its embedded beat) and a
local HTTP destination (its own process, as an SFA would be), at a steady rate, and
prints JSON with the p50/p95/p99 latency.
Target: p99 ≤ 2 s.

--from webhook (default): each lead arrives as a signed generic webhook (an executive at
a large company asking for a consultation: the hand-raiser rule makes it an MQL at once);
the clock starts before the POST and stops when the destination has the MQL, so it
covers intake, the inbound worker task, scoring, routing, the outbox and delivery.
--from stage: MQLs are made directly through leadflow.lifecycle (delivery alone).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/lf_bench \\
    CELERY_BROKER_URL=redis://127.0.0.1:6379/6 \\
    python bench/delivery_bench.py --seconds 20 --rate 50

The database must exist (createdb); the bench migrates it. Everything it creates is
named bench-<run>; earlier bench destinations are disabled at the start.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadflow.settings")
# Production-like: DEBUG off (it records every query), so a secret is needed.
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", "bench-only-not-a-secret-" + "x" * 40)
os.environ.setdefault("LEADFLOW_SECURE_COOKIES", "0")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connections, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.report import emit  # noqa: E402
from integrations.outbound.models import Destination, DestinationKind  # noqa: E402
from integrations.services import source_create  # noqa: E402
from integrations.signing import SignatureError, sign, verify  # noqa: E402
from leadflow.celery import app  # noqa: E402
from leadflow.lifecycle import lead_transition  # noqa: E402
from leadflow.models import Lead, Stage  # noqa: E402
from scoring.models import ScoringModel  # noqa: E402

SECRET = "bench-secret"
SMOKE = {"seconds": 2.0, "rate": 10.0, "producers": 2}


def _serve_destination(port_out: Any, arrivals: Any) -> None:
    """The destination's own process: answers each POST and reports (e-mail, arrival time,
    signed) to the bench. A real SFA is another machine; as a thread of the bench it would
    wait for the GIL behind the producer threads, and that wait would count as delivery."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            now = time.time()
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                verify([SECRET], body, self.headers.get("X-LeadFlow-Signature", ""), now=now)
                signed = True
            except SignatureError:
                signed = False
            arrivals.put((json.loads(body)["lead"]["email"], now, signed))
            reply = b'{"ok":true}'
            self.send_response(200 if signed else 401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port_out.put(server.server_address[1])
    server.serve_forever()


class Receiver:
    """The destination: records when each lead's message arrived (and any duplicates)."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}  # lead e-mail → arrival time
        self.duplicates = 0
        self.bad_signatures = 0
        self.lock = threading.Lock()
        # Forked before the bench opens any connection or thread.
        context = multiprocessing.get_context("fork")
        self.arrivals = context.Queue()
        port = context.Queue()
        self.process = context.Process(
            target=_serve_destination, args=(port, self.arrivals), daemon=True
        )
        self.process.start()
        self.port = port.get(timeout=30)
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        while True:
            email, at, signed = self.arrivals.get()
            with self.lock:
                if not signed:
                    self.bad_signatures += 1
                elif email in self.arrived:
                    self.duplicates += 1
                else:
                    self.arrived[email] = at

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(timeout=10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/leadflow"


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation: a reported p99 is a real sample)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(fraction * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def start_worker(
    concurrency: int,
    log_path: Path,
    *,
    pool: str = "prefork",
    beat: bool = True,
    name: str = "w",
    queues: str = "",
) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "leadflow",
        "worker",
        *(["--beat"] if beat else []),
        "--pool",
        pool,
        "--loglevel",
        "WARNING",
        "--concurrency",
        str(concurrency),
        "--without-gossip",
        "--without-mingle",
        "--hostname",
        f"bench-{os.getpid()}-{name}@%h",
        *(["--queues", queues] if queues else []),
    ]
    env = os.environ.copy()
    # The worker imports the checkout this bench runs from, whatever else is installed.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    log = log_path.open("w")
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_for_worker(process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"The worker exited with {process.returncode}; see its log.")
        if app.control.ping(timeout=0.5):
            return
    raise SystemExit("The worker did not answer a ping in time.")


def stop_worker(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def post_webhook(client: Client, slug: str, email: str) -> float:
    """Send one signed generic webhook for a new hand-raising lead; return the send time."""
    body = json.dumps(
        {
            "id": f"evt-{email}",
            "type": "consultation",
            "occurred_at": timezone.now().isoformat(),
            "lead": {
                "email": email,
                "last_name": "ベンチ",
                "job_title": "代表取締役",
                "company": f"株式会社ベンチ{email.split('@')[0]}",
                "employee_count": 1200,
                "industry": "製造業",
                "address": "東京都千代田区丸の内1-1-1",
            },
        },
        ensure_ascii=False,
    ).encode()
    sent = time.time()
    response = client.post(
        f"/api/v1/intake/{slug}/",
        data=body,
        content_type="application/json",
        headers={"X-LeadFlow-Signature": sign(SECRET, body)},
    )
    if response.status_code != 202:
        raise SystemExit(f"intake answered {response.status_code}: {response.content[:300]!r}")
    return sent


def produce(
    offset: int,
    step: int,
    total: int,
    rate: float,
    started_wall: float,
    start: str,
    run: str,
    *,
    emails: list[str],
    lead_ids: list[int],
    out: Any,
) -> None:
    """One producer process: leads offset, offset + step, … each at started + n / rate."""
    client = Client()
    results: dict[str, float] = {}
    behind = 0.0
    try:
        for n in range(offset, total, step):
            pause = started_wall + n / rate - time.time()
            if pause > 0:
                time.sleep(pause)
            else:
                behind = max(behind, -pause)
            if start == "stage":
                results[emails[n + 1]] = make_mql(Lead.objects.get(pk=lead_ids[n + 1]))
            else:
                results[emails[n + 1]] = post_webhook(client, run, emails[n + 1])
    finally:
        connections.close_all()
        out.put((results, behind))


def make_mql(lead: Lead) -> float:
    """Move the lead to MQL; return the wall-clock time right after the commit."""
    stamp: list[float] = []
    with transaction.atomic():
        # Registered before the move, so it runs first among the on-commit callbacks:
        # before the delivery task is even enqueued.
        transaction.on_commit(lambda: stamp.append(time.time()))
        lead_transition(lead=lead, to_stage=Stage.MQL, actor="bench")
    return stamp[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20, help="how long to create MQLs")
    parser.add_argument("--rate", type=float, default=50, help="MQLs per second")
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes")
    parser.add_argument(
        "--pool",
        choices=["prefork", "solo"],
        default="prefork",
        help="prefork: one worker with --concurrency processes; solo: --concurrency workers",
    )
    parser.add_argument(
        "--layout",
        choices=["one", "split"],
        default="one",
        help="one: a single worker consumes every queue (as `make run`); split: the worker "
        "takes intake + delivery and a second 1-process worker with the beat takes sla, "
        "scoring and celery (the periodic sweeps), as README's production layout",
    )
    parser.add_argument("--producers", type=int, default=4, help="processes making MQLs")
    parser.add_argument("--drain-timeout", type=float, default=60)
    parser.add_argument(
        "--from",
        dest="start",
        choices=["webhook", "stage"],
        default="webhook",
        help="where the clock starts: a signed intake webhook, or the MQL stage change",
    )
    parser.add_argument("--smoke", action="store_true", help=f"a few seconds: {SMOKE}")
    args = parser.parse_args()
    if args.smoke:
        vars(args).update(SMOKE)

    engine = settings.DATABASES["default"]["ENGINE"]
    if not engine.endswith("postgresql") or not settings.CELERY_BROKER_URL.startswith("redis"):
        raise SystemExit("Run on PostgreSQL + Redis: set DATABASE_URL and CELERY_BROKER_URL.")

    receiver = Receiver()
    call_command("migrate", verbosity=0)
    run = f"bench-{int(time.time())}"
    total = int(args.seconds * args.rate)
    Destination.objects.filter(slug__startswith="bench-").update(enabled=False)
    destination = Destination.objects.create(
        kind=DestinationKind.WEBHOOK,
        slug=run,
        name=run,
        base_url=receiver.url,
        signing_secret=SECRET,
        events=["mql_created"],
        timeout_seconds=5.0,
    )
    emails = [f"{run}-{n}@bench.example.jp" for n in range(total + 1)]
    leads = []
    if args.start == "stage":
        # Through save(), not bulk_create: save() derives the matching keys.
        with transaction.atomic():
            leads = [
                Lead.objects.create(email=email, last_name="Bench", source="bench")
                for email in emails
            ]
    else:
        source_create(kind="generic", slug=run, secret=SECRET, rate_limit_per_minute=0)
        if not ScoringModel.objects.filter(status="published").exists():
            raise SystemExit("No published scoring model: the MQL rule cannot fire.")
    app.control.purge()  # leftovers from earlier runs or tests must not skew the numbers

    var = Path(settings.VAR_DIR)
    var.mkdir(parents=True, exist_ok=True)
    if args.pool == "solo":
        # N single-process workers: no prefork pipe between a parent and its children.
        workers = [
            start_worker(1, var / f"bench-worker-{n}.log", pool="solo", beat=n == 0, name=str(n))
            for n in range(args.concurrency)
        ]
    elif args.layout == "split":
        workers = [
            start_worker(
                args.concurrency,
                var / "bench-worker.log",
                beat=False,
                queues="intake,delivery",
                name="intake",
            ),
            start_worker(
                1, var / "bench-worker-periodic.log", queues="sla,scoring,celery", name="periodic"
            ),
        ]
    else:
        workers = [start_worker(args.concurrency, var / "bench-worker.log")]
    worker = workers[0]
    try:
        wait_for_worker(worker, timeout=60)
        # Warm-up: the first task pays for imports and connections; not counted.
        if args.start == "stage":
            make_mql(leads[0])
        else:
            post_webhook(Client(), run, emails[0])
        deadline = time.monotonic() + 30
        while emails[0] not in receiver.arrived and time.monotonic() < deadline:
            time.sleep(0.01)

        # Several producers share one schedule (lead n is due at start + n/rate), as
        # concurrent intake workers would; one thread alone cannot always keep the pace.
        committed: dict[str, float] = {}
        late: list[float] = []

        # Producers are processes, as intake's web workers are: as threads of one process
        # they take turns on its GIL and fall behind the schedule at 50/s. Spawned, not
        # forked: this process has threads (the receiver's) that a fork would copy stuck.
        context = multiprocessing.get_context("spawn")
        out = context.Queue()
        started_wall = time.time() + 3.0  # the children need a moment to import Django
        started = time.monotonic() + 3.0
        lead_ids = [lead.pk for lead in leads]
        producers = [
            context.Process(
                target=produce,
                args=(k, args.producers, total, args.rate, started_wall, args.start, run),
                kwargs={"emails": emails, "lead_ids": lead_ids, "out": out},
            )
            for k in range(args.producers)
        ]
        for process in producers:
            process.start()
        for _ in producers:
            results, behind = out.get()
            committed.update(results)
            late.append(behind)
        for process in producers:
            process.join()
        elapsed = time.monotonic() - started

        deadline = time.monotonic() + args.drain_timeout
        while time.monotonic() < deadline:
            with receiver.lock:
                if all(pk in receiver.arrived for pk in committed):
                    break
            time.sleep(0.05)
        floor = round_trip_floor(receiver, run, min(max(total, 20), 200))
    finally:
        for each in workers:
            stop_worker(each)
        Destination.objects.filter(pk=destination.pk).update(enabled=False)
        receiver.stop()

    latencies = sorted(
        (receiver.arrived[pk] - at) * 1000 for pk, at in committed.items() if pk in receiver.arrived
    )
    p99 = percentile(latencies, 0.99)
    emit(
        "delivery",
        size={
            "from": args.start,
            "mqls": total,
            "seconds": args.seconds,
            "target_rate_per_s": args.rate,
            "producers": args.producers,
            "worker_concurrency": args.concurrency,
            "worker_pool": args.pool,
            "worker_layout": args.layout,
            "smoke": args.smoke,
        },
        results={
            "achieved_rate_per_s": round(total / elapsed, 1),
            "producers_behind_schedule_max_ms": round(max(late, default=0.0) * 1000, 1),
            "received": len(latencies),
            "missing": total - len(latencies),
            "duplicates": receiver.duplicates,
            "bad_signatures": receiver.bad_signatures,
            "latency_ms": {
                "p50": round(percentile(latencies, 0.50), 1),
                "p95": round(percentile(latencies, 0.95), 1),
                "p99": round(p99, 1),
                "max": round(latencies[-1], 1) if latencies else None,
            },
            "target_p99_ms": 2000,
            "p99_ok": p99 <= 2000 and len(latencies) == total,
            "deliver_inline": settings.OUTBOX_DELIVER_INLINE,
        },
        floor=floor,
        floor_note="a bare signed POST of the same message shape from this process to the "
        "same destination process, one after another: the HTTP round trip every delivery "
        "pays; everything above it is intake, the broker, the worker, scoring, routing "
        "and the outbox",
        ratio={
            "p50_vs_floor": percentile(latencies, 0.50) / max(floor["round_trip_ms"]["p50"], 1e-3),
            "p99_vs_floor": p99 / max(floor["round_trip_ms"]["p99"], 1e-3),
        },
        notes="PostgreSQL + Redis + a real Celery worker; the webhooks go through Django's "
        "test client (the same URL routing, middleware and view as behind gunicorn, "
        "without an HTTP server)"
        if args.start == "webhook"
        else "PostgreSQL + Redis + a real Celery worker; MQLs made by leadflow.lifecycle",
    )


def round_trip_floor(receiver: Receiver, run: str, requests: int) -> dict:
    """Bare signed POSTs to the destination, as the worker's delivery would send them."""
    connection = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=10)
    samples = []
    for n in range(requests + 1):  # the first one opens the connection: not counted
        body = json.dumps({"lead": {"email": f"{run}-floor-{n}@bench.example.jp"}}).encode()
        headers = {"Content-Type": "application/json", "X-LeadFlow-Signature": sign(SECRET, body)}
        started = time.perf_counter()
        connection.request("POST", "/leadflow", body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        samples.append((time.perf_counter() - started) * 1000)
        if response.status != 200:
            raise SystemExit(f"The destination answered {response.status} to the floor POST.")
    connection.close()
    samples = sorted(samples[1:])
    return {
        "requests": requests,
        "round_trip_ms": {
            "p50": round(percentile(samples, 0.50), 2),
            "p95": round(percentile(samples, 0.95), 2),
            "p99": round(percentile(samples, 0.99), 2),
        },
    }


if __name__ == "__main__":
    main()
