"""Intake benchmark: signed generic webhooks against gunicorn on PostgreSQL + Redis.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/lf_intake \\
    REDIS_URL=redis://127.0.0.1:6379/4 \\
    python bench/intake_bench.py --seconds 5 --rate 200 --batches 20 --batch-size 500

It migrates the database, creates a `bench` generic source (no rate limit), starts
gunicorn on 127.0.0.1 (or uses --url of one you started), and measures three things:

1. throughput: single-event POSTs as fast as --threads clients can send, for --seconds;
2. latency at a fixed rate: --rate requests/s for --seconds, p50/p99 measured from each
   request's *scheduled* time (so a stall is not hidden by the client waiting);
3. batches: --batches POSTs of --batch-size events each → events accepted per second.

What is measured is intake: verify, store durably, enqueue, answer 202. No Celery
worker runs, so processing does not compete for the two cores; the queued tasks are
purged at the end. Every loop is bounded by --seconds or a count; only 127.0.0.1.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
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


def start_gunicorn(port: int, workers: int, threads: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "leadflow.wsgi:application",
            "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
            "--worker-class", "gthread", "--threads", str(threads), "--keep-alive", "5",
            "--log-level", "warning", "--backlog", "512",
        ],
        cwd=ROOT,
        env=os.environ.copy(),
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            time.sleep(1.0)  # let every worker finish importing Django
            return server
        except OSError:
            if server.poll() is not None:
                raise SystemExit("gunicorn exited; is DATABASE_URL reachable?") from None
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("gunicorn did not start within 30 s")


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


def throughput(port: int, seconds: float, threads: int, ceiling: int) -> dict:
    requests = prepared(ceiling, offset=50_000_000)
    queue = iter(requests)
    counts = {"ok": 0, "other": 0}
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(worker: int) -> None:
        http_client = Client(port)
        while time.monotonic() < stop:
            with lock:
                request = next(queue, None)
            if request is None:
                break
            status = http_client.send(request)
            with lock:
                counts["ok" if status == 202 else "other"] += 1
        http_client.close()

    started = time.monotonic()
    pool = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.monotonic() - started
    return {"requests_per_s": round(counts["ok"] / elapsed, 1), **counts}


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
    accepted = {"events": 0, "other": 0}

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
        "refused_batches": accepted["other"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--server-threads", type=int, default=4, help="threads per worker")
    parser.add_argument(
        "--max-requests", type=int, default=20000, help="ceiling for the throughput phase"
    )
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=0,
        help="the bench source's limit per minute; a high one measures the Redis counting",
    )
    parser.add_argument("--no-server", action="store_true", help="use a gunicorn already on --port")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        raise SystemExit("Set DATABASE_URL=postgres://... (and REDIS_URL=redis://...)")

    setup_django(args.rate_limit)
    from django.conf import settings

    from leadflow.celery import app

    server = (
        None if args.no_server else start_gunicorn(args.port, args.workers, args.server_threads)
    )
    try:
        results = {
            "setup": {
                "gunicorn": f"{args.workers} gthread workers x {args.server_threads} threads",
                "client_threads": args.threads,
                "source_rate_limit_per_minute": args.rate_limit,
                "broker": settings.CELERY_BROKER_URL,
                "cache": settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1],
            },
            "throughput": throughput(args.port, args.seconds, args.threads, args.max_requests),
            "fixed_rate": {
                "rate": args.rate,
                **fixed_rate(args.port, args.seconds, args.rate, args.threads),
            },
            "batches": batches(args.port, args.batches, args.batch_size, min(args.threads, 4)),
        }
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=20)
        # No worker ran: drop the queued processing tasks of the bench.
        app.control.purge()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
