"""Scoring benchmark: bulk rescore and per-event incremental scoring.

    python bench/scoring_bench.py --leads 100000 --events-per-lead 10

Uses the database in DATABASE_URL (migrated first). It seeds N leads with M events each
with a few bulk SQL statements, then times (1) a full rescore under the published model
through the same service the Celery task runs, and (2) `lead_score_event` for freshly
recorded events, one transaction each, the way intake calls it. Prints JSON.

It deletes all leads, companies, events and scores first, so it refuses to run on a
database holding leads it did not create (source "bench") unless given --wipe.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadflow.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-not-secret")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from leadflow.models import Lead  # noqa: E402
from leadflow.services import event_record  # noqa: E402
from scoring.models import ModelStatus, RescoreRun, ScoringModel  # noqa: E402
from scoring.services import (  # noqa: E402
    lead_score_event,
    rescore_run_execute,
    rescore_run_start,
    scoring_model_clone,
    scoring_model_publish,
)
from scoring.tasks import rescore_run_task  # noqa: E402

TABLES = [
    "scoring_leadscore",
    "scoring_rescorerun",
    "leadflow_stagetransition",
    "leadflow_leadexternalid",
    "leadflow_engagementevent",
    "leadflow_lead",
    "leadflow_company",
]
KINDS = [
    "page_view",
    "page_view",
    "page_view",
    "page_view",
    "email_open",
    "email_open",
    "email_click",
    "document_download",
    "case_study_download",
    "seminar_attendance",
    "pricing_page_view",
    "form_submit",
    "consultation",
    "unsubscribe",
]
INDUSTRIES = ["manufacturing", "it", "finance", "retail", "construction", "services", "other"]
PREFECTURES = [
    ("東京都", "kanto"),
    ("大阪府", "kinki"),
    ("愛知県", "chubu"),
    ("北海道", "hokkaido"),
]
ROLES = ["executive", "director", "manager", "staff", "staff", "", ""]
URLS = ["/product/a", "/product/b", "/pricing", "/blog/1", "/blog/2", "/"]


def wipe(force: bool) -> None:
    if not force and Lead.objects.exclude(source="bench").exists():
        sys.exit("The database has leads the bench did not create; pass --wipe to delete them.")
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
        else:
            for table in TABLES:
                cursor.execute(f"DELETE FROM {table}")
    # Back to the default model alone (earlier runs published clones of it).
    ScoringModel.objects.exclude(version=1).delete()
    ScoringModel.objects.filter(version=1).update(status=ModelStatus.PUBLISHED, archived_at=None)


def pg_array(values: list[str]) -> str:
    return "ARRAY[" + ", ".join(f"'{v}'" for v in values) + "]"


def run(cursor, sql: str, params: list) -> None:
    # The modulo operator is a literal % for both drivers' placeholder syntax.
    cursor.execute(sql.replace(" % ", " %% "), params)


def seed(n_leads: int, per_lead: int, known_share: float) -> None:
    """Companies (one per 10 leads), leads and events, a statement each."""
    n_companies = max(1, n_leads // 10)
    pg = connection.vendor == "postgresql"
    now = timezone.now()
    with connection.cursor() as cursor:
        if pg:
            cursor.execute("SELECT setseed(0.42)")
            series = "generate_series(1, %s) AS s(g)"

            def pick(values, expr):
                return f"({pg_array(values)})[1 + ({expr}) % {len(values)}]"

        else:
            series = (
                "(WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < %s)"
                " SELECT g FROM s) AS s"
            )

            def pick(values, expr):
                cases = " ".join(f"WHEN {i} THEN '{v}'" for i, v in enumerate(values))
                return f"(CASE ({expr}) % {len(values)} {cases} END)"

        prefs = [p for p, _ in PREFECTURES]
        regions = [r for _, r in PREFECTURES]
        run(
            cursor,
            "INSERT INTO leadflow_company (name, name_kana, domain, employee_count, revenue_band,"
            " industry, prefecture, region, created_at, updated_at)"
            " SELECT 'Bench ' || g, '', 'bench' || g || '.example.jp', (g * 37) % 3000,"
            f" '', {pick(INDUSTRIES, 'g')}, {pick(prefs, 'g * 7')}, {pick(regions, 'g * 7')},"
            f" %s, %s FROM {series}",
            [now, now, n_companies],
        )
        cursor.execute("SELECT MIN(id) FROM leadflow_company")
        first_company = cursor.fetchone()[0]
        known_mod = max(1, round(1 / known_share)) if known_share > 0 else 0
        stage = (
            f"CASE WHEN g % {known_mod} = 0 THEN 'known' ELSE 'mql' END" if known_mod else "'mql'"
        )
        run(
            cursor,
            "INSERT INTO leadflow_lead (email, last_name, first_name, last_name_kana,"
            " first_name_kana, department, job_title, role, phone, source, stage,"
            " stage_changed_at, attributes, created_at, updated_at, company_id)"
            " SELECT 'bench' || g || '@example.jp', 'ベンチ', '太郎' || g, '', '', '', '',"
            f" {pick(ROLES, 'g * 3')}, '', 'bench', {stage}, %s, '{{}}', %s, %s,"
            f" %s + (g % {n_companies}) FROM {series}",
            [now, now, now, first_company, n_leads],
        )
        cursor.execute("SELECT MIN(id) FROM leadflow_lead")
        first_lead = cursor.fetchone()[0]
        # Events interleave leads (row g belongs to lead g mod N), as real traffic does;
        # times spread over the last 120 days.
        rand = "CAST(random() * 1000000 AS bigint)" if pg else "abs(random())"
        url = pick(URLS, "g * 13")
        props = (
            f"CASE WHEN kind = 'page_view' THEN jsonb_build_object('url', {url}) ELSE '{{}}' END"
            if pg
            else f"CASE WHEN kind = 'page_view' THEN json_object('url', {url}) ELSE '{{}}' END"
        )
        age = "make_interval(secs => r % 10368000)" if pg else None
        occurred = f"%s - {age}" if pg else "datetime(%s, '-' || (r % 10368000) || ' seconds')"
        stamp = now if pg else connection.ops.adapt_datetimefield_value(now)
        run(
            cursor,
            "INSERT INTO leadflow_engagementevent (lead_id, kind, occurred_at, properties,"
            " source, external_id, created_at)"
            f" SELECT %s + (g % {n_leads}), kind, {occurred}, {props}, 'bench', '', %s"
            f" FROM (SELECT g, {rand} AS r, {pick(KINDS, f'{rand}')} AS kind FROM {series}) e",
            [first_lead, stamp, now, n_leads * per_lead],
        )
        if pg:
            cursor.execute("ANALYZE leadflow_company, leadflow_lead, leadflow_engagementevent")


def rescore(run: RescoreRun, workers: int, batch_size: int) -> dict:
    """Run the rescore with `workers` threads (each its own database connection), the
    way that many Celery workers would share it."""

    def work() -> None:
        try:
            rescore_run_execute(run_id=run.pk, batch_size=batch_size)
        finally:
            connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    run.refresh_from_db()
    return {
        "seconds": round(seconds, 2),
        "leads_per_second": round(run.done / seconds),
        "leads": run.done,
        "moved_to_mql": run.moved_to_mql,
        "status": run.status,
    }


def bench_rescore(workers: int, batch_size: int) -> dict:
    """1. Initial scoring of never-scored leads (many known leads become MQL).
    2. What publishing does: a clone with a 5-point lower engagement threshold is
    published and every lead rescored (only the newly qualifying leads move)."""
    published = ScoringModel.objects.get(status=ModelStatus.PUBLISHED)
    initial = rescore(rescore_run_start(model=published, enqueue=False), workers, batch_size)
    draft = scoring_model_clone(source=published, name="bench")
    draft.engagement_threshold -= 5
    draft.save()
    # The bench is the worker here: publishing must not also queue Celery tasks.
    rescore_run_task.delay = lambda *args, **kwargs: None
    run = scoring_model_publish(model=draft)
    return {"initial_scoring": initial, "publish_rescore": rescore(run, workers, batch_size)}


def bench_incremental(samples: int, rng: random.Random) -> dict:
    ids = list(Lead.objects.values_list("pk", flat=True)[:200_000])
    timings = []
    for i in range(samples):
        lead = Lead.objects.get(pk=rng.choice(ids))
        kind = rng.choice(KINDS)
        properties = {"url": rng.choice(URLS)} if kind == "page_view" else {}
        started = time.perf_counter()
        with transaction.atomic():
            event, _created = event_record(
                lead=lead,
                kind=kind,
                occurred_at=timezone.now(),
                properties=properties,
                source="bench",
                external_id=f"inc-{i}",
            )
            lead_score_event(event=event)
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return {
        "incremental_events": samples,
        "incremental_p50_ms": round(statistics.median(timings), 2),
        "incremental_p95_ms": round(timings[int(0.95 * (len(timings) - 1))], 2),
        "incremental_max_ms": round(timings[-1], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leads", type=int, default=10_000)
    parser.add_argument("--events-per-lead", type=int, default=10)
    parser.add_argument("--incremental", type=int, default=1000, help="events to time one by one")
    parser.add_argument("--batch-size", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2, help="parallel rescore workers")
    parser.add_argument(
        "--known-share", type=float, default=0.1, help="share of leads at 'known' (may move)"
    )
    parser.add_argument("--wipe", action="store_true", help="delete non-bench leads too")
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    wipe(args.wipe)
    started = time.perf_counter()
    seed(args.leads, args.events_per_lead, args.known_share)
    result: dict = {
        "database": connection.vendor,
        "leads": args.leads,
        "events": args.leads * args.events_per_lead,
        "seed_seconds": round(time.perf_counter() - started, 2),
        "batch_size": args.batch_size,
        "workers": args.workers,
    }
    settings.SCORING_RESCORE_WORKERS = args.workers
    result.update(bench_rescore(args.workers, args.batch_size))
    result.update(bench_incremental(args.incremental, random.Random(7)))
    result["peak_memory_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
