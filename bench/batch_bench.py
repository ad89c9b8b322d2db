"""Batch processing benchmark: one inbound body of N events, processed as the worker does.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/lf_batch \\
    python bench/batch_bench.py --items 100,1000,5000

For each N it stores one generic `{"events": [...]}` body of N events (each a new lead:
distinct e-mail and name, 200 companies, the published default scoring model; every
50th event a consultation with fit ≥ 20, so 2 % become MQLs and are routed, with SLA
timers and KPI marks), processes it with `inbound_event_process` (chunks of 100, one
transaction each, no time budget) and reports items per second. Beside it, the floor
of the same run: `--floor` single-event bodies of the same kind of events (default:
N, at most 1,000) processed one by one, per item. So `batch_vs_single` near 1 means a
batch costs what its events cost alone: linear, nothing growing with the batch.

It seeds its own data (source `batch-bench`, leads `bench-<run>-…@example.jp`) and
prints JSON. No Celery worker and no HTTP: what is measured is processing. `--smoke`
runs 50 events and a floor of 20, to check the script works.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadflow.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-not-secret")
os.environ.setdefault("LOG_LEVEL", "WARNING")

KINDS = ["page_view", "email_open", "document_download", "email_click", "pricing_page_view"]


def _event(run: str, n: int) -> dict:
    kind = "consultation" if n % 50 == 49 else KINDS[n % len(KINDS)]
    return {
        "id": f"bench-{run}-{n}",
        "type": kind,
        "occurred_at": "2026-01-15T10:00:00+09:00",
        "lead": {
            "email": f"bench-{run}-{n}@example.jp",
            "last_name": f"山田{run}{n}",  # a new person each time, in every run
            "first_name": "太郎",
            "job_title": "部長",
            "company": f"株式会社ベンチ{n % 200}",
            "employee_count": 500,
            "industry": "製造業",
        },
    }


def _store(source, body: object, key: str) -> int:
    from integrations.models import InboundEvent

    # Stored as intake stores it, but not enqueued: this process runs it.
    return InboundEvent.objects.create(source=source, body=json.dumps(body), dedup_key=key).pk


def _process(inbound_id: int) -> dict:
    from integrations.models import InboundEvent
    from integrations.services import inbound_event_process

    inbound_event_process(inbound_event_id=inbound_id, time_budget=None)
    inbound = InboundEvent.objects.get(pk=inbound_id)
    return {"status": inbound.status, **{k: inbound.result.get(k) for k in ("applied", "failed")}}


def measure(source, size: int, floor: int) -> dict:
    run = uuid.uuid4().hex[:8]
    inbound_id = _store(source, {"events": [_event(run, n) for n in range(size)]}, f"b:{run}")
    started = time.perf_counter()
    outcome = _process(inbound_id)
    batch_seconds = time.perf_counter() - started

    single_run = uuid.uuid4().hex[:8]
    ids = [_store(source, _event(single_run, n), f"s:{single_run}:{n}") for n in range(floor)]
    started = time.perf_counter()
    singles_ok = sum(_process(pk)["status"] == "processed" for pk in ids)
    floor_seconds = time.perf_counter() - started

    batch_rate = size / batch_seconds
    floor_rate = floor / floor_seconds if floor else None
    return {
        "items": size,
        "batch": {
            **outcome,
            "seconds": round(batch_seconds, 2),
            "items_per_second": round(batch_rate, 1),
            "ms_per_item": round(1000 * batch_seconds / size, 2),
        },
        "floor_single_events": {
            "events": floor,
            "processed": singles_ok,
            "seconds": round(floor_seconds, 2),
            "items_per_second": round(floor_rate, 1) if floor_rate else None,
            "ms_per_item": round(1000 * floor_seconds / floor, 2) if floor else None,
        },
        "batch_vs_single": round(batch_rate / floor_rate, 2) if floor_rate else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", default="100,1000,5000", help="batch sizes, comma-separated")
    parser.add_argument("--floor", type=int, default=None, help="single events per size")
    parser.add_argument("--smoke", action="store_true", help="50 events, a floor of 20")
    args = parser.parse_args()
    sizes = [50] if args.smoke else [int(part) for part in args.items.split(",") if part]

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from integrations.models import Source
    from integrations.services import CHUNK_SIZE

    call_command("migrate", verbosity=0)
    source, _created = Source.objects.update_or_create(
        slug="batch-bench",
        defaults={"kind": "generic", "secret": "bench", "rate_limit_per_minute": 0},
    )
    results = []
    for size in sizes:
        floor = 20 if args.smoke else min(size, 1000) if args.floor is None else args.floor
        results.append(measure(source, size, floor))
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.report import emit

    emit(
        "batch",
        size={"items": sizes, "chunk_size": CHUNK_SIZE, "cpus": os.cpu_count()},
        results={str(r["items"]): r["batch"] for r in results},
        floor={str(r["items"]): r["floor_single_events"] for r in results},
        floor_note="the same kind of events, each in a body of its own, processed one by one "
        "in the same run (per-item cost without batching)",
        ratio={f"batch_{r['items']}_vs_single": r["batch_vs_single"] or 0.0 for r in results},
        notes=f"database: {connection.vendor}; timings on a shared machine are noisy: compare "
        "a batch with the floor of the same run",
    )


if __name__ == "__main__":
    main()
