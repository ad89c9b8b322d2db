"""Intake benchmark: signed single-event webhooks against gunicorn, beside a bare view.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/lf_intake \\
    REDIS_URL=redis://127.0.0.1:6379/4 CELERY_BROKER_URL=redis://127.0.0.1:6379/3 \\
    python bench/intake_bench.py            # or --smoke (seconds)

It migrates the database, creates a `bench` generic source (no rate limit) and starts
two gunicorn servers on 127.0.0.1 with the same settings (`--workers` sync workers):
LeadFlow, and its floor, `bench/bare_intake.py` (a bare Django view that parses the
JSON and does one INSERT). Then it measures:

1. throughput, LeadFlow and the bare view in interleaved rounds (`--rounds` of
   `--seconds` each, the order alternating), with the same wrk client (`--connections`
   connections, 1 thread; bench/intake_wrk.lua sends a different signed event each
   request) → req/s of each and the ratio LeadFlow / bare;
2. latency at a fixed rate: --rate requests/s for --seconds (a Python client), p50/p99
   measured from each request's *scheduled* time (so a stall is not hidden);
3. batches: --batches POSTs of --batch-size events each → events accepted per second;
4. nothing lost: every 202 left a stored inbound event.

What is measured is intake: verify, store durably, enqueue, answer 202. No Celery
worker runs, so processing does not compete for the two cores; the queued tasks are
purged at the end. Every loop is bounded by --seconds or a count; only 127.0.0.1.
Needs wrk (apt-get install wrk).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadflow.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-not-secret")
os.environ.setdefault("LOG_LEVEL", "WARNING")
# Plain http to the local server: no https redirect, no secure-only cookies.
os.environ.setdefault("LEADFLOW_SECURE_COOKIES", "0")

SECRET = "bench-secret"
SLUG = "bench"


def setup_django(rate_limit: int):
    import django

    django.setup()
    from django.core.management import call_command

    from integrations.models import InboundEvent, Source

    call_command("migrate", verbosity=0)
    source, _created = Source.objects.update_or_create(
        slug=SLUG,
        defaults={
            "kind": "generic",
            "secret": SECRET,
            "enabled": True,
            "rate_limit_per_minute": rate_limit,
        },
    )
    InboundEvent.objects.filter(source=source).delete()
    return source


def start_gunicorn(app: str, port: int, workers: int, worker_class: str, threads: int):
    server = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", app,
            "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
            "--worker-class", worker_class, "--threads", str(threads), "--keep-alive", "5",
            "--log-level", "warning", "--backlog", "512",
        ],
        cwd=ROOT,
        env=os.environ.copy(),
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            time.sleep(1.0)  # let every worker finish importing Django
            return server
        except OSError:
            if server.poll() is not None:
                raise SystemExit(f"gunicorn {app} exited; is DATABASE_URL reachable?") from None
            time.sleep(0.2)
    server.terminate()
    raise SystemExit(f"gunicorn {app} did not start within 60 s")


def stop(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def event(n: int) -> dict:
    return {
        "id": f"{uuid.uuid4().hex}-{n}",
        "type": "page_view",
        "occurred_at": int(time.time()),
        "lead": {"email": f"bench{n % 5000}@example.jp", "company": "株式会社ベンチ"},
        "properties": {"url": "https://example.jp/products"},
    }


def signed(body: bytes) -> tuple[bytes, dict[str, str]]:
    from integrations.signing import sign

    return body, {"Content-Type": "application/json", "X-LeadFlow-Signature": sign(SECRET, body)}


def prepared(count: int, offset: int = 0) -> list[tuple[bytes, dict[str, str]]]:
    # Built and signed before the clock starts: the client shares the two cores with the
    # server, so its own JSON and HMAC work would otherwise be measured as server time.
    return [signed(json.dumps(event(offset + n)).encode()) for n in range(count)]


class Client:
    """One keep-alive connection per client thread (gunicorn's gthread workers keep it)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection: http.client.HTTPConnection | None = None

    def send(self, request: tuple[bytes, dict[str, str]]) -> int:
        body, headers = request
        for attempt in range(2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                self.connection.request(
                    "POST", f"/api/v1/intake/{SLUG}/", body=body, headers=headers
                )
                response = self.connection.getresponse()
                response.read()
                if response.getheader("Connection", "").lower() == "close":
                    self.close()
                return response.status
            except (http.client.HTTPException, OSError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def wrk_round(port: int, seconds: float, connections: int, requests_file: Path) -> dict:
    """One wrk run against 127.0.0.1:port; its Lua `done` prints one WRK_JSON line."""
    command = [
        "wrk", "-t", "1", "-c", str(connections), "--timeout", "10s",
        "-d", f"{max(1, round(seconds))}s",  # whole seconds: wrk takes no fractions
        "-s", str(ROOT / "bench" / "intake_wrk.lua"),
        f"http://127.0.0.1:{port}/api/v1/intake/{SLUG}/", "--", "1", str(requests_file),
    ]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    line = next((x for x in out.stdout.splitlines() if x.startswith("WRK_JSON ")), None)
    if out.returncode or line is None:
        raise SystemExit(f"wrk failed ({out.returncode}): {out.stdout[-500:]} {out.stderr[-500:]}")
    figures = json.loads(line.removeprefix("WRK_JSON "))
    if figures["wrapped"]:
        raise SystemExit("wrk ran out of prepared events: raise --max-rate.")
    figures["requests_per_s"] = round(figures["requests"] / (figures["duration_us"] / 1e6), 1)
    return figures


def warm_up(ports: dict[str, int], requests: int) -> int:
    """A few requests to each server before the clock, from as many clients as there are
    workers, so no round pays a worker's first request (lazy imports, the database
    connection, URL resolving). Returns how many LeadFlow accepted (they are stored)."""
    accepted = 0
    for name, port in ports.items():
        bodies = prepared(requests, offset=90_000_000 + port * 1000)
        statuses: list[int] = []

        def client(share: list, port: int = port, statuses: list = statuses) -> None:
            http_client = Client(port)
            statuses.extend(http_client.send(request) for request in share)
            http_client.close()

        pool = [threading.Thread(target=client, args=(bodies[n::4],)) for n in range(4)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        if set(statuses) != {202}:
            raise SystemExit(f"{name} answered {sorted(set(statuses))} while warming up.")
        accepted += len(statuses) if name == "leadflow" else 0
    return accepted


def throughput(
    ports: dict[str, int], rounds: int, seconds: float, connections: int, max_rate: int
) -> dict:
    """Interleaved rounds, the order alternating so neither side always runs on a cooler
    machine; each round's events are new (signed just before it: the 5-minute window)."""
    per_round: dict[str, list[dict]] = {name: [] for name in ports}
    with tempfile.TemporaryDirectory() as folder:
        for number in range(rounds):
            requests_file = Path(folder) / f"round{number}.tsv"
            with requests_file.open("w") as out:
                for body, headers in prepared(
                    int(max_rate * seconds), offset=50_000_000 + number * 10_000_000
                ):
                    out.write(f"{headers['X-LeadFlow-Signature']}\t{body.decode()}\n")
            order = list(ports) if number % 2 == 0 else list(reversed(ports))
            for name in order:
                per_round[name].append(wrk_round(ports[name], seconds, connections, requests_file))
    return {
        name: {
            "requests_per_s": statistics.median(r["requests_per_s"] for r in rounds_),
            "rounds_requests_per_s": [r["requests_per_s"] for r in rounds_],
            "requests": sum(r["requests"] for r in rounds_),
            "non_2xx": sum(r["non_2xx"] for r in rounds_),
            "socket_errors": sum(r["socket_errors"] for r in rounds_),
            "timeouts": sum(r["timeouts"] for r in rounds_),
            "p50_ms": statistics.median(r["p50_ms"] for r in rounds_),
            "p99_ms": max(r["p99_ms"] for r in rounds_),
        }
        for name, rounds_ in per_round.items()
    }


def fixed_rate(port: int, seconds: float, rate: float, threads: int) -> dict:
    total = int(seconds * rate)
    requests = prepared(total)
    start = time.perf_counter() + 0.2
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    next_index = iter(range(total))

    def client() -> None:
        http_client = Client(port)
        while True:
            with lock:
                i = next(next_index, None)
            if i is None:
                http_client.close()
                return
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            status = http_client.send(requests[i])
            done = time.perf_counter()
            with lock:
                latencies.append(done - scheduled)
                statuses[status] = statuses.get(status, 0) + 1

    pool = [threading.Thread(target=client) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    latencies.sort()
    return {
        "requests": total,
        "statuses": statuses,
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1),
        "max_ms": round(latencies[-1] * 1000, 1),
    }


def batches(port: int, count: int, size: int, threads: int) -> dict:
    bodies = [
        signed(json.dumps({"events": [event(b * size + i) for i in range(size)]}).encode())
        for b in range(count)
    ]
    queue = iter(bodies)
    lock = threading.Lock()
    accepted = {"events": 0, "requests": 0, "other": 0}

    def client() -> None:
        http_client = Client(port)
        while True:
            with lock:
                body = next(queue, None)
            if body is None:
                http_client.close()
                return
            status = http_client.send(body)
            with lock:
                if status == 202:
                    accepted["events"] += size
                    accepted["requests"] += 1
                else:
                    accepted["other"] += 1

    started = time.monotonic()
    pool = [threading.Thread(target=client) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.monotonic() - started
    return {
        "batches": count,
        "batch_size": size,
        "body_kib": round(len(bodies[0][0]) / 1024, 1),
        "events_per_s": round(accepted["events"] / elapsed),
        "requests_accepted": accepted["requests"],
        "refused_batches": accepted["other"],
    }


SMOKE = {
    "rounds": 1,
    "seconds": 2.0,
    "rate": 50.0,
    "batches": 2,
    "batch_size": 50,
    "max_rate": 3000,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds per server")
    parser.add_argument("--seconds", type=float, default=10.0, help="per round and fixed rate")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    parser.add_argument("--rate", type=float, default=200.0, help="the fixed-rate phase")
    parser.add_argument("--threads", type=int, default=8, help="fixed-rate client threads")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (each server)")
    parser.add_argument("--worker-class", choices=["sync", "gthread"], default="sync")
    parser.add_argument("--server-threads", type=int, default=1, help="threads per gthread worker")
    parser.add_argument(
        "--max-rate", type=int, default=5000, help="events prepared per round second (wrk)"
    )
    parser.add_argument("--port", type=int, default=8765, help="LeadFlow; the bare view: +1")
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=0,
        help="the bench source's limit per minute; a high one measures the Redis counting",
    )
    parser.add_argument("--smoke", action="store_true", help=f"a few seconds: {SMOKE}")
    args = parser.parse_args()
    if args.smoke:
        vars(args).update(SMOKE)
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        raise SystemExit("Set DATABASE_URL=postgres://... (and REDIS_URL=redis://...)")
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk).")

    source = setup_django(args.rate_limit)
    from django.conf import settings
    from django.db import connection

    from bench.bare_intake import CREATE_TABLE, TABLE
    from bench.report import emit
    from integrations.models import InboundEvent
    from leadflow.celery import app

    with connection.cursor() as cursor:
        cursor.execute(CREATE_TABLE)
        cursor.execute(f"TRUNCATE {TABLE}")
    connection.close()
    ports = {"leadflow": args.port, "bare": args.port + 1}
    servers = []
    try:
        for name, wsgi in (("leadflow", "leadflow.wsgi"), ("bare", "bench.bare_intake")):
            servers.append(
                start_gunicorn(
                    f"{wsgi}:application",
                    ports[name],
                    args.workers,
                    args.worker_class,
                    args.server_threads,
                )
            )
        warmed = warm_up(ports, args.workers * 4)
        rounds = throughput(ports, args.rounds, args.seconds, args.connections, args.max_rate)
        steady = fixed_rate(ports["leadflow"], args.seconds, args.rate, args.threads)
        batched = batches(ports["leadflow"], args.batches, args.batch_size, min(args.threads, 4))
    finally:
        for server in servers:
            stop(server)
        # No worker ran: drop the queued processing tasks of the bench.
        app.control.purge()
    # One stored inbound event per accepted request (a batch is one delivery). wrk counts
    # only the answers it read before its clock ran out; the requests still in flight
    # then (at most one per connection and round) are stored too, uncounted.
    accepted = (
        rounds["leadflow"]["requests"]
        - rounds["leadflow"]["non_2xx"]
        + steady["statuses"].get(202, 0)
        + batched["requests_accepted"]
        + warmed
    )
    stored = InboundEvent.objects.filter(source=source).count()
    emit(
        "intake",
        size={
            "rounds": args.rounds,
            "seconds": args.seconds,
            "wrk_connections": args.connections,
            "fixed_rate_per_s": args.rate,
            "batches": args.batches,
            "batch_size": args.batch_size,
            "gunicorn": f"{args.workers} {args.worker_class} workers"
            + (f" x {args.server_threads} threads" if args.worker_class == "gthread" else ""),
            "smoke": args.smoke,
        },
        results={
            "throughput": rounds["leadflow"],
            "fixed_rate": {"rate": args.rate, **steady},
            "batches": batched,
            "accepted_requests": accepted,
            "stored_inbound_events": stored,
            "lost": max(0, accepted - stored),
            "source_rate_limit_per_minute": args.rate_limit,
            "broker": settings.CELERY_BROKER_URL.split("://")[0],
            "cache": settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1],
        },
        floor={"bare_view": rounds["bare"]},
        floor_note="bench/bare_intake.py: a bare Django view (no middleware) that parses "
        "the JSON and does one INSERT, same gunicorn settings, same wrk client and events, "
        "rounds interleaved with LeadFlow's",
        ratio={
            "throughput_vs_bare": rounds["leadflow"]["requests_per_s"]
            / max(rounds["bare"]["requests_per_s"], 1e-6)
        },
        notes="ratio is LeadFlow's req/s as a share of the bare view's (issue #17 asks "
        ">= 0.6); targets: fixed-rate p99 <= 50 ms at 200 req/s, lost == 0",
    )


if __name__ == "__main__":
    main()
