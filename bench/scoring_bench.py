"""Scoring benchmark: bulk rescore and per-event incremental scoring.

    DATABASE_URL=postgres://... python bench/scoring_bench.py --leads 100000 --events-per-lead 10

PostgreSQL only (the database in DATABASE_URL, migrated first). It seeds N leads with M
events each with a few bulk SQL statements (bench.seeding: checked against the models),
then times (1) the first full scoring and (2) the rescore a publish starts, under the
published model through the same service the Celery task runs, (3) `lead_score_event`
for freshly recorded events, one transaction each, the way intake calls it, and (4) the
floor: one set-based UPDATE of every lead's engagement over the same events. Prints
JSON (bench/report.py) with ratio publish / floor. `--smoke` runs a seconds-long size.

The rescores run in worker processes of their own (`--worker`, the loop the Celery task
runs), so the report gives each worker's peak RSS apart from this process, and a profile
of where a worker's seconds went (per kind of statement, and the hand-off of the leads
that cross into MQL to the per-lead path). Meanwhile this process receives and processes
inbound events for seeded leads, as intake does, to show it is not blocked.

It deletes all leads, companies, events and scores first, so it refuses to run on a
database holding leads it did not create (source "bench") unless given --wipe. With
`--reuse` a database seeded earlier at the same size is kept (its scores, moves and
models are reset, its companies, leads and events kept): seeding 10M events once.
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
import uuid
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

from bench.report import StatementTimes, emit, run_process  # noqa: E402
from bench.seeding import audit, insert_select  # noqa: E402
from leadflow.models import Company, EngagementEvent, Lead  # noqa: E402
from leadflow.services import event_record  # noqa: E402
from scoring import services  # noqa: E402
from scoring.models import LeadScore, ModelStatus, RescoreRun, ScoringModel  # noqa: E402
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


# What a --reuse run finds: the size the rows were seeded at (a table of the bench's own,
# outside the app's models; TRUNCATE … CASCADE of the app's tables leaves it alone).
MARKER = "bench_scoring_seed"
# Events the bench adds after the seed (per-event scoring, intake during the rescore)
# carry an external id; the seeded ones have none, so a reset can tell them apart.


def seeded_size() -> tuple[int, int, float] | None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {MARKER}"
            " (leads integer, events_per_lead integer, known_share double precision)"
        )
        cursor.execute(f"SELECT leads, events_per_lead, known_share FROM {MARKER}")
        row = cursor.fetchone()
    return None if row is None else (row[0], row[1], row[2])


def mark_seeded(n_leads: int, per_lead: int, known_share: float) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {MARKER}")
        cursor.execute(
            f"INSERT INTO {MARKER} VALUES (%s, %s, %s)", [n_leads, per_lead, known_share]
        )


def reset_seeded(known_share: float) -> None:
    """Back to the state right after the seed: no scores, runs, stage moves or what the
    moves wrote (every table that references a lead, but the events, is truncated with
    its dependants), the seeded stages, only the seeded events, the default model."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT c.conrelid::regclass::text FROM pg_constraint c"
            " WHERE c.contype = 'f' AND c.confrelid = 'leadflow_lead'::regclass"
            " AND c.conrelid <> 'leadflow_engagementevent'::regclass"
        )
        tables = sorted({row[0] for row in cursor.fetchall()} | {"scoring_rescorerun"})
        cursor.execute(f"TRUNCATE {', '.join(tables)} CASCADE")
        cursor.execute(
            "DELETE FROM leadflow_engagementevent WHERE external_id <> ''"
            " OR lead_id IN (SELECT id FROM leadflow_lead WHERE source <> 'bench')"
        )
        cursor.execute("DELETE FROM leadflow_lead WHERE source <> 'bench'")
        cursor.execute("SELECT MIN(id) FROM leadflow_lead")
        first_lead = cursor.fetchone()[0]
        stage = seeded_stage(known_share, f"(id - {first_lead} + 1)")
        cursor.execute(
            f"UPDATE leadflow_lead SET stage = {stage} WHERE stage IS DISTINCT FROM {stage}"
        )
    ScoringModel.objects.exclude(version=1).delete()
    ScoringModel.objects.filter(version=1).update(status=ModelStatus.PUBLISHED, archived_at=None)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE leadflow_lead")


def seeded_stage(known_share: float, g: str) -> str:
    """The stage the seed gives the lead of row `g` (an SQL expression, 1-based)."""
    known_mod = max(1, round(1 / known_share)) if known_share > 0 else 0
    if not known_mod:
        return "'mql'"
    return f"(CASE WHEN {g} % {known_mod} = 0 THEN 'known' ELSE 'mql' END)"


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
    stage = seeded_stage(known_share, "g").replace("%", "%%")
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


def worker(run_id: int, batch_size: int) -> None:
    """`--worker`: one rescore worker, the loop the Celery task runs, to the end of the
    run; prints JSON: its seconds, those of the hand-off to the per-lead MQL path (and how
    many it moved), and its statements by kind."""
    handed = {"seconds": 0.0, "moved": 0}
    hand_off = services.hand_off_new_mqls

    def timed_hand_off(*args, **kwargs):
        started = time.perf_counter()
        moved = hand_off(*args, **kwargs)
        handed["seconds"] += time.perf_counter() - started
        handed["moved"] += moved
        return moved

    services.hand_off_new_mqls = timed_hand_off
    started = time.perf_counter()
    with StatementTimes(connection) as times:
        rescore_run_execute(run_id=run_id, batch_size=batch_size)
    print(
        json.dumps(
            {
                "seconds": time.perf_counter() - started,
                "hand_off_seconds": handed["seconds"],
                "handed_off": handed["moved"],
                "statements": times.report(),
            }
        )
    )


def intake_source():
    from integrations.models import Source

    source, _created = Source.objects.update_or_create(
        slug="scoring-bench",
        defaults={"kind": "generic", "secret": "bench", "rate_limit_per_minute": 0},
    )
    return source


def intake_one(source, email: str, rng: random.Random) -> tuple[float, bool]:
    """Receive and process one inbound event for a seeded lead, as intake and its worker
    do (this process is that worker). Returns (milliseconds, processed)."""
    from integrations.models import InboundEvent, InboundStatus
    from integrations.services import inbound_event_process, inbound_event_receive

    key = uuid.uuid4().hex
    body = {
        "id": f"intake-{key}",
        "type": rng.choice(KINDS),
        "occurred_at": timezone.now().isoformat(),
        "lead": {"email": email},
    }
    started = time.perf_counter()
    inbound, _created = inbound_event_receive(
        source=source, body=json.dumps(body), headers={}, dedup_key=key
    )
    inbound_event_process(inbound_event_id=inbound.pk, time_budget=None)
    status = InboundEvent.objects.filter(pk=inbound.pk).values_list("status", flat=True).get()
    return (time.perf_counter() - started) * 1000, status == InboundStatus.PROCESSED


def rescore(run: RescoreRun, workers: int, batch_size: int, n_leads: int) -> dict:
    """Run the rescore in `workers` worker processes (`--worker`: each its own database
    connection and memory, as Celery workers), while this process keeps intake going:
    inbound events for seeded leads, received and processed one after the other."""
    argv = [sys.executable, __file__, "--worker", str(run.pk), "--batch-size", str(batch_size)]
    outcomes: list[dict] = []

    def work() -> None:
        outcomes.append(run_process(argv))

    # Intake must not score with the worker processes' model cache in mind: nothing to
    # share; the source is made before the workers start.
    source = intake_source()
    rng = random.Random(11)
    threads = [threading.Thread(target=work) for _ in range(workers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    intake_ms, processed = [], 0
    while any(thread.is_alive() for thread in threads):
        g = rng.randrange(n_leads)
        milliseconds, ok = intake_one(source, f"bench{g + 1}@example.jp", rng)
        intake_ms.append(milliseconds)
        processed += ok
        time.sleep(0.05)
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    for outcome in outcomes:
        if outcome["returncode"] != 0:
            sys.exit(f"A rescore worker failed (exit {outcome['returncode']}).")
    reports = [json.loads(outcome["stdout"].strip().splitlines()[-1]) for outcome in outcomes]
    run.refresh_from_db()
    hand_off = max(report["hand_off_seconds"] for report in reports)
    # From the workers' start of work, as running Celery workers would (a process start
    # and Django's set-up are not part of a publish); the wall time includes them.
    working = max(report["seconds"] for report in reports)
    return {
        "seconds": round(working, 2),
        "wall_seconds": round(seconds, 2),
        "leads_per_second": round(run.done / working),
        "leads": run.done,
        "moved_to_mql": run.moved_to_mql,
        "status": run.status,
        # The workers run side by side: the longest hand-off is the time it added.
        "hand_off_seconds": round(hand_off, 2),
        "handed_off": sum(report["handed_off"] for report in reports),
        "without_hand_off_seconds": round(working - hand_off, 2),
        "worker_peak_rss_mb": max(outcome["peak_rss_mb"] for outcome in outcomes),
        "worker_statements": [report["statements"] for report in reports],
        "intake_during_rescore": {
            "events": len(intake_ms),
            "processed": processed,
            **({"p50_ms": round(statistics.median(intake_ms), 1)} if intake_ms else {}),
            **({"max_ms": round(max(intake_ms), 1)} if intake_ms else {}),
        },
    }


def bench_rescore(workers: int, batch_size: int, n_leads: int, publish_only: bool) -> dict:
    """1. Initial scoring of never-scored leads (many known leads become MQL).
    2. What publishing does: a clone with a 5-point lower engagement threshold is
    published and every lead rescored (only the newly qualifying leads move)."""
    published = ScoringModel.objects.get(status=ModelStatus.PUBLISHED)
    if publish_only:
        initial = {"skipped": "--publish-only: the leads were scored by the last run"}
    else:
        initial_run = rescore_run_start(model=published, enqueue=False)
        initial = rescore(initial_run, workers, batch_size, n_leads)
    draft = scoring_model_clone(source=published, name="bench")
    draft.engagement_threshold -= 5
    draft.save()
    # The bench is the worker here: publishing must not also queue Celery tasks.
    rescore_run_task.apply_async = lambda *args, **kwargs: None
    run = scoring_model_publish(model=draft)
    publish = rescore(run, workers, batch_size, n_leads)
    return {"initial_scoring": initial, "publish_rescore": publish}


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
    parser.add_argument(
        "--reuse", action="store_true", help="keep rows seeded earlier at the same size"
    )
    parser.add_argument("--seed-only", action="store_true", help="seed (or reset), then stop")
    parser.add_argument(
        "--publish-only",
        action="store_true",
        help="keep the last run's scores and stages; time only the publish of a further clone",
    )
    parser.add_argument("--worker", type=int, metavar="RUN_ID", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker(args.worker, args.batch_size)
        return
    if args.smoke:
        vars(args).update(SMOKE)
    if connection.vendor != "postgresql":
        sys.exit("The scoring bench needs PostgreSQL: set DATABASE_URL=postgres://...")

    call_command("migrate", verbosity=0)
    size = (args.leads, args.events_per_lead, args.known_share)
    started = time.perf_counter()
    if args.publish_only:
        if not (seeded_size() == size and LeadScore.objects.exists()):
            sys.exit("--publish-only needs a database a run at this size scored (--reuse).")
        audited = {"reused": "as the last run left it"}
    elif args.reuse and seeded_size() == size:
        reset_seeded(args.known_share)
        audited = {"reused": True}
    else:
        wipe(args.wipe)
        seeded_size()  # the marker table
        audited = seed(*size)
        mark_seeded(*size)
    seed_seconds = time.perf_counter() - started
    if args.seed_only:
        print(json.dumps({"seed_seconds": round(seed_seconds, 2), "audited": audited}))
        return
    settings.SCORING_RESCORE_WORKERS = args.workers
    rescored = bench_rescore(args.workers, args.batch_size, args.leads, args.publish_only)
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
        ratio={
            "publish_vs_floor": publish / max(floor["seconds"], 1e-6),
            "publish_without_hand_off_vs_floor": rescored["publish_rescore"][
                "without_hand_off_seconds"
            ]
            / max(floor["seconds"], 1e-6),
        },
        notes="initial_scoring also moves every newly qualifying lead to MQL one by one "
        "(issue #17 item 3); publish_rescore rescores under a clone 5 engagement points "
        "lower; hand_off_seconds is the per-lead MQL path the leads crossing into MQL "
        "are handed to (the bulk qualification of item 3 replaces it). "
        "worker_peak_rss_mb is the largest peak RSS of the worker processes; "
        "peak_memory_mb is this (seeding, intake) process's.",
    )


if __name__ == "__main__":
    main()
