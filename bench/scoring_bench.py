"""Scoring benchmark: bulk rescore and per-event incremental scoring.

    DATABASE_URL=postgres://... python bench/scoring_bench.py --leads 100000 --events-per-lead 10

PostgreSQL only (the database in DATABASE_URL, migrated first). It seeds N leads with M
events each with a few bulk SQL statements (bench.seeding: checked against the models),
then times (1) the first full scoring and (2) the rescore a publish starts, under the
published model through the same service the Celery task runs, (3) `lead_score_event`
for freshly recorded events, one transaction each, the way intake calls it, and (4) the
floor: one set-based UPDATE of every lead's engagement over the same events. Prints
JSON (bench/report.py) with ratio publish / floor. `--smoke` runs a seconds-long size.

It deletes all leads, companies, events and scores first, so it refuses to run on a
database holding leads it did not create (source "bench") unless given --wipe.
"""

from __future__ import annotations

import argparse
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

from bench.report import emit  # noqa: E402
from bench.seeding import audit, insert_select  # noqa: E402
from leadflow.models import Company, EngagementEvent, Lead  # noqa: E402
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
PREFECTURES = ["東京都", "大阪府", "愛知県", "北海道"]
ROLES = ["executive", "director", "manager", "staff", "staff", "", ""]
URLS = ["/product/a", "/product/b", "/pricing", "/blog/1", "/blog/2", "/"]


def wipe(force: bool) -> None:
    if not force and Lead.objects.exclude(source="bench").exists():
        sys.exit("The database has leads the bench did not create; pass --wipe to delete them.")
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
    # Back to the default model alone (earlier runs published clones of it).
    ScoringModel.objects.exclude(version=1).delete()
    ScoringModel.objects.filter(version=1).update(status=ModelStatus.PUBLISHED, archived_at=None)


def pick(values: list[str], expr: str) -> str:
    """One of `values` chosen by an integer SQL expression (a literal array index)."""
    array = "ARRAY[" + ", ".join(f"'{v}'" for v in values) + "]"
    return f"({array})[1 + ({expr}) %% {len(values)}]"


def seed(n_leads: int, per_lead: int, known_share: float) -> dict:
    """Companies (one per 10 leads), leads and events, a statement each, through
    bench.seeding (checked against the models; the keys computed as the app does)."""
    n_companies = max(1, n_leads // 10)
    now = timezone.now()
    series = "generate_series(1, %s) AS s(g)"
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.42)")
    insert_select(
        Company,
        {
            "name": "'Bench ' || g",
            "name_kana": "''",
            "domain": "'bench' || g || '.example.jp'",
            "employee_count": "(g * 37) %% 3000",
            "revenue_band": "''",
            "industry": pick(INDUSTRIES, "g"),
            "prefecture": pick(PREFECTURES, "g * 7"),
            "created_at": "%s",
            "updated_at": "%s",
        },
        series,
        [now, now, n_companies],
    )
    first_company = Company.objects.order_by("pk").values_list("pk", flat=True).first()
    known_mod = max(1, round(1 / known_share)) if known_share > 0 else 0
    stage = f"CASE WHEN g %% {known_mod} = 0 THEN 'known' ELSE 'mql' END" if known_mod else "'mql'"
    insert_select(
        Lead,
        {
            "email": "'bench' || g || '@example.jp'",
            "last_name": "'ベンチ'",
            "first_name": "'太郎' || g",
            "last_name_kana": "''",
            "first_name_kana": "''",
            "department": "''",
            "job_title": "''",
            "role": pick(ROLES, "g * 3"),
            "phone": "''",
            "source": "'bench'",
            "stage": stage,
            "stage_changed_at": "%s",
            "attributes": "'{}'::jsonb",
            "created_at": "%s",
            "updated_at": "%s",
            "company_id": f"%s + (g %% {n_companies})",
        },
        series,
        [now, now, now, first_company, n_leads],
    )
    first_lead = Lead.objects.order_by("pk").values_list("pk", flat=True).first()
    # Events interleave leads (row g belongs to lead g mod N), as real traffic does;
    # times spread over the last 120 days.
    rand = "CAST(random() * 1000000 AS bigint)"
    insert_select(
        EngagementEvent,
        {
            "lead_id": f"%s + (g %% {n_leads})",
            "kind": "kind",
            "occurred_at": "%s - make_interval(secs => r %% 10368000)",
            "properties": "CASE WHEN kind = 'page_view'"
            f" THEN jsonb_build_object('url', {pick(URLS, 'g * 13')}) ELSE '{{}}' END",
            "source": "'bench'",
            "external_id": "''",
            "created_at": "%s",
        },
        f"(SELECT g, {rand} AS r, {pick(KINDS, rand)} AS kind FROM {series}) e",
        [first_lead, now, now, n_leads * per_lead],
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE leadflow_company, leadflow_lead, leadflow_engagementevent")
    return {model._meta.db_table: audit(model) for model in (Company, Lead, EngagementEvent)}


def floor_publish(model: ScoringModel) -> dict:
    """The floor the publish is compared with: ONE set-based UPDATE of every lead's
    engagement, SUM(points x decay) per lead over the same events, with the published
    model's points and half-lives per event kind (each kind's unconditional rule; no
    caps, no per-rule state, no stage moves). Run last, timed, then rolled back."""
    rules: dict[str, tuple[int, int | None]] = {}
    for rule in model.engagement_rules.order_by("position", "id"):
        if not rule.property_key and rule.kind not in rules:
            rules[rule.kind] = (rule.points, rule.half_life_days)
    cases = " ".join(
        f"WHEN '{kind}' THEN {points}"
        + (
            # double precision, as scoring.sql computes: EXTRACT gives numeric, and
            # numeric power() is some 20x slower than the floor should be.
            " * power(0.5, CAST(EXTRACT(EPOCH FROM (%s - e.occurred_at)) AS double precision)"
            f" / {half_life * 86400})"
            if half_life
            else ""
        )
        for kind, (points, half_life) in rules.items()
    )
    now = timezone.now()
    params = [now for _points, half_life in rules.values() if half_life]
    sql = f"""UPDATE scoring_leadscore AS ls
              SET engagement = s.total, computed_at = now()
              FROM (SELECT e.lead_id, round(SUM(CASE e.kind {cases} ELSE 0 END)) AS total
                    FROM leadflow_engagementevent e GROUP BY e.lead_id) AS s
              WHERE ls.lead_id = s.lead_id"""
    with transaction.atomic(), connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(sql, params)
        seconds = time.perf_counter() - started
        rows = cursor.rowcount
        transaction.set_rollback(True)
    return {"seconds": round(seconds, 3), "leads_updated": rows}


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


SMOKE = {"leads": 2_000, "events_per_lead": 5, "incremental": 50, "batch_size": 500}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--events-per-lead", type=int, default=10)
    parser.add_argument("--incremental", type=int, default=1000, help="events to time one by one")
    parser.add_argument("--batch-size", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2, help="parallel rescore workers")
    parser.add_argument(
        "--known-share", type=float, default=0.1, help="share of leads at 'known' (may move)"
    )
    parser.add_argument("--smoke", action="store_true", help=f"a few seconds: {SMOKE}")
    parser.add_argument("--wipe", action="store_true", help="delete non-bench leads too")
    args = parser.parse_args()
    if args.smoke:
        vars(args).update(SMOKE)
    if connection.vendor != "postgresql":
        sys.exit("The scoring bench needs PostgreSQL: set DATABASE_URL=postgres://...")

    call_command("migrate", verbosity=0)
    wipe(args.wipe)
    started = time.perf_counter()
    audited = seed(args.leads, args.events_per_lead, args.known_share)
    seed_seconds = time.perf_counter() - started
    settings.SCORING_RESCORE_WORKERS = args.workers
    rescored = bench_rescore(args.workers, args.batch_size)
    incremental = bench_incremental(args.incremental, random.Random(7))
    floor = floor_publish(ScoringModel.objects.get(status=ModelStatus.PUBLISHED))
    publish = rescored["publish_rescore"]["seconds"]
    emit(
        "scoring",
        size={
            "leads": args.leads,
            "events": args.leads * args.events_per_lead,
            "batch_size": args.batch_size,
            "workers": args.workers,
            "smoke": args.smoke,
        },
        results={
            "seed_seconds": round(seed_seconds, 2),
            "seed_rows_audited": audited,
            **rescored,
            **incremental,
            "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        },
        floor=floor,
        floor_note="one set-based UPDATE scoring_leadscore FROM (SELECT lead_id, "
        "SUM(points x decay) FROM the same events GROUP BY lead_id), with the published "
        "model's points and half-lives per kind (no caps, no state, no stage moves); "
        "timed after the publish, then rolled back",
        ratio={"publish_vs_floor": publish / max(floor["seconds"], 1e-6)},
        notes="initial_scoring also moves every newly qualifying lead to MQL one by one "
        "(issue #17 item 3); publish_rescore rescores under a clone 5 engagement points "
        "lower. peak_memory_mb is this process's (the rescore runs in its threads).",
    )


if __name__ == "__main__":
    main()
