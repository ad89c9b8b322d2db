"""Preview-job benchmark: a draft's preview and backtest computed by the background job.

    DATABASE_URL=postgres://... python bench/preview_bench.py --leads 1000000 --events-per-lead 10

PostgreSQL only. Seeds N leads with M events each (the scoring bench's seed, set-based,
checked by bench.seeding), hands a share of them to sales (MQL transitions, then SQL or
recycled) with fit snapshots for half of those, then:

1. starts the preview job of a draft (a clone of the published model with one rule and
   the threshold changed) and runs it in a separate worker process, as Celery would,
   timing it and reading that process's peak RSS;
2. the floor, measured in the same run on the same rows: the bare set-based scoring
   SELECTs the job is built on (both models' scores of every lead now, and of every
   handed lead as of its handoff), aggregated instead of written, in one statement each;
3. reopening: the stored preview and the first page of changed leads, read back.

The seed is reused when the database already holds exactly the bench's leads and events
(`--reseed` to seed again), so a second run only times the job. Run heavy sizes under
`flock /work/wt/bench.lock`. `--smoke` runs a seconds-long size.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadflow.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-not-secret")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.report import emit  # noqa: E402
from bench.scoring_bench import seed, wipe  # noqa: E402
from bench.seeding import insert_select  # noqa: E402
from leadflow.models import EngagementEvent, Lead, StageTransition  # noqa: E402
from scoring import engine, selectors  # noqa: E402
from scoring.models import (  # noqa: E402
    FIELD_PATHS,
    FitSnapshot,
    ModelStatus,
    PreviewRun,
    ScoringModel,
    snapshot_column,
)
from scoring.services import preview_run_start, scoring_model_clone  # noqa: E402
from scoring.sql import LeadFilter  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# Emptied before each run; the fit snapshots are part of the (reused) seed.
PREVIEW_TABLES = [
    "scoring_draftleadscore",
    "scoring_drafthandoffscore",
    "scoring_previewslice",
    "scoring_previewrun",
]
SMOKE = {"leads": 2_000, "events_per_lead": 5, "batch_size": 500}
DAY = 86400


def seeded(n_leads: int, per_lead: int) -> bool:
    """The database holds exactly this bench's seed (and nothing else)."""
    leads = Lead.objects.count()
    return (
        leads == n_leads
        and not Lead.objects.exclude(source="bench").exists()
        and EngagementEvent.objects.count() == n_leads * per_lead
        and StageTransition.objects.exists()
    )


def seed_history(handed_share: float) -> dict:
    """Hand every k-th lead to sales 30-90 days ago (known → MQL), then a third of those
    to SQL a day later and a third back to nurture (recycled) two days later, with the
    lead's stage set to match; fit snapshots for the even lead ids among them."""
    every = max(1, round(1 / handed_share))
    now = timezone.now()
    first = Lead.objects.order_by("pk").values_list("pk", flat=True).first() or 0
    with connection.cursor() as cursor:
        # Only rows that differ: rewriting a million unchanged rows costs minutes.
        cursor.execute("UPDATE leadflow_lead SET stage = 'known' WHERE stage <> 'known'")
    handed = f"(SELECT id, %s - make_interval(secs => (30 + id %% 60) * {DAY}) AS at"
    handed += f" FROM leadflow_lead WHERE (id - %s) %% {every} = 0) h"
    common = {"actor_system": "'bench'", "reason": "''", "context": "'{}'::jsonb"}
    insert_select(
        StageTransition,
        {"lead_id": "id", "from_stage": "'known'", "to_stage": "'mql'", "occurred_at": "at"}
        | common,
        handed,
        [now, first],
    )
    for to_stage, third, after in (("sql", 1, 1), ("recycled", 2, 2)):
        insert_select(
            StageTransition,
            {
                "lead_id": "id",
                "from_stage": "'mql'",
                "to_stage": f"'{to_stage}'",
                "occurred_at": f"at + make_interval(secs => {after * DAY})",
            }
            | common,
            handed + f" WHERE id %% 3 = {third}",
            [now, first],
        )
    with connection.cursor() as cursor:
        cursor.execute(  # the handed leads only (a fifth at the default share)
            "UPDATE leadflow_lead l SET stage = t.to_stage FROM (SELECT DISTINCT ON (lead_id)"
            " lead_id, to_stage FROM leadflow_stagetransition"
            " ORDER BY lead_id, occurred_at DESC) t WHERE t.lead_id = l.id"
        )
    snapshots = seed_snapshots()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE leadflow_lead, leadflow_stagetransition")
    return {"transitions": StageTransition.objects.count(), "fit_snapshots": snapshots}


def seed_snapshots() -> int:
    """Fit snapshots at the MQL transitions of the even lead ids (the odd ones were
    handed over "before snapshots were kept")."""
    columns = {"lead_id": "l.id", "taken_at": "t.occurred_at", "attributes": "l.attributes"}
    for path in FIELD_PATHS:
        name = path.rpartition(".")[2]
        live = f"c.{name}" if path.startswith("company.") else f"l.{name}"
        columns[snapshot_column(path)] = (
            live if name == "employee_count" else f"COALESCE({live}, '')"
        )
    insert_select(
        FitSnapshot,
        columns,
        "leadflow_stagetransition t JOIN leadflow_lead l ON l.id = t.lead_id"
        " LEFT JOIN leadflow_company c ON c.id = l.company_id"
        " WHERE t.to_stage = 'mql' AND l.id %% 2 = 0",
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE scoring_fitsnapshot")
    return FitSnapshot.objects.count()


def draft_model() -> ScoringModel:
    """A clone of the published model with its first engagement rule worth 5 more points
    and the engagement threshold 5 lower (rules and policy both change)."""
    ScoringModel.objects.filter(status=ModelStatus.DRAFT).delete()
    published = ScoringModel.objects.get(status=ModelStatus.PUBLISHED)
    draft = scoring_model_clone(source=published, name="preview bench")
    draft.engagement_threshold -= 5
    draft.save()
    rule = draft.engagement_rules.order_by("position", "id").first()
    if rule is not None:
        rule.points += 5
        rule.save()
    return draft


WORKER = """
import os, resource, sys, time
sys.path.insert(0, {root!r})
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadflow.settings")
import django
django.setup()
from scoring.services import preview_run_execute
started = time.perf_counter()
preview_run_execute(run_id={run_id}, batch_size={batch_size})
print(time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def run_job(draft: ScoringModel, batch_size: int, workers: int) -> dict:
    """The job in `workers` processes of their own (the Celery workers' part: one task
    per slice), timed from the start to the last one's exit."""
    started = time.perf_counter()
    run = preview_run_start(draft=draft, enqueue=False, fresh=True)
    code = WORKER.format(root=str(ROOT), run_id=run.pk, batch_size=batch_size)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=os.environ
        )
        for _ in range(workers)
    ]
    outputs = [process.communicate()[0].split() for process in processes]
    seconds = time.perf_counter() - started
    if any(process.returncode for process in processes):
        sys.exit("A preview worker failed (its traceback is above).")
    run.refresh_from_db()
    return {
        "seconds": round(seconds, 2),
        "worker_seconds": [round(float(out[-2]), 2) for out in outputs],
        "worker_peak_rss_mb": max(round(int(out[-1]) / 1024, 1) for out in outputs),
        "workers": workers,
        "status": run.status,
        "leads": run.done,
        "handed_leads": run.history_done,
        "leads_per_second": round(run.done / seconds),
        "run_id": run.pk,
    }


def floor(draft: ScoringModel) -> dict:
    """The same scoring SELECTs over every lead in one statement each, summed, no rows
    written, no batches: what the job cannot go below."""
    d_model = engine.compiled(draft)
    p_model = engine.compiled(ScoringModel.objects.get(status=ModelStatus.PUBLISHED))
    everyone = LeadFilter.everyone()
    now_sql = selectors.now_scores_sql(d_model, p_model, timezone.now(), "", everyone)
    now_sql.add(" SELECT COUNT(*), SUM(df + de + pf + pe), COUNT(dout), COUNT(pout) FROM x")
    bt_sql = selectors.handoff_scores_sql(d_model, p_model, everyone)
    bt_sql.add(" SELECT COUNT(*), SUM(df + de + pf + pe + dq + pq) FROM bt")
    timings = {}
    with connection.cursor() as cursor:
        cursor.execute("SET work_mem = '128MB'")  # as the job's batches do
        for name, sql in (("now", now_sql), ("handoff", bt_sql)):
            started = time.perf_counter()
            cursor.execute(sql.text, sql.params)
            rows = cursor.fetchone()[0]
            timings[name] = {"seconds": round(time.perf_counter() - started, 2), "rows": rows}
        cursor.execute("RESET work_mem")
    timings["seconds"] = round(timings["now"]["seconds"] + timings["handoff"]["seconds"], 2)
    return timings


def reopen(run_id: int) -> dict:
    """What opening the preview again costs: the summary and the first changed page."""
    run = PreviewRun.objects.get(pk=run_id)
    started = time.perf_counter()
    preview = selectors.preview_from_run(run=run)
    summary_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    page = selectors.preview_run_changes(run=run)
    page_ms = (time.perf_counter() - started) * 1000
    return {
        "summary_ms": round(summary_ms, 1),
        "changed_page_ms": round(page_ms, 1),
        "changed_leads": page.total,
        "moves_to_mql": preview.now_draft.moves,
        "history_today_fit": preview.history_today_fit,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--events-per-lead", type=int, default=10)
    parser.add_argument("--handed-share", type=float, default=0.2, help="leads handed to sales")
    parser.add_argument("--batch-size", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=2, help="worker processes (slices)")
    parser.add_argument("--smoke", action="store_true", help=f"a few seconds: {SMOKE}")
    parser.add_argument("--reseed", action="store_true", help="seed even if the seed is there")
    parser.add_argument("--wipe", action="store_true", help="delete non-bench leads too")
    args = parser.parse_args()
    if args.smoke:
        vars(args).update(SMOKE)
    if connection.vendor != "postgresql":
        sys.exit("The preview bench needs PostgreSQL: set DATABASE_URL=postgres://...")

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(PREVIEW_TABLES)}")
    seed_seconds, audited, history = 0.0, {}, {}
    if args.reseed or not seeded(args.leads, args.events_per_lead):
        started = time.perf_counter()
        wipe(args.wipe)
        audited = seed(args.leads, args.events_per_lead, known_share=1.0)
        history = seed_history(args.handed_share)
        seed_seconds = time.perf_counter() - started
    elif not FitSnapshot.objects.exists():
        history = {"fit_snapshots": seed_snapshots()}  # the schema was migrated again
    # The workers cut the slices (in the run's first step): one per worker process.
    os.environ["SCORING_PREVIEW_WORKERS"] = str(args.workers)
    draft = draft_model()
    job = run_job(draft, args.batch_size, args.workers)
    floored = floor(draft)
    reopened = reopen(job["run_id"])
    emit(
        "preview",
        size={
            "leads": args.leads,
            "events": args.leads * args.events_per_lead,
            "handed_share": args.handed_share,
            "batch_size": args.batch_size,
            "workers": args.workers,
            "smoke": args.smoke,
            "seed_reused": not seed_seconds,
        },
        results={
            "seed_seconds": round(seed_seconds, 2),
            "seed_rows_audited": audited,
            **history,
            "preview_job": job,
            "reopen": reopened,
            "bench_peak_rss_mb": round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
            ),
        },
        floor=floored,
        floor_note="the job's own scoring SELECTs (both models, every lead now; both models, "
        "every handed lead as of its handoff) in one statement each, aggregated instead of "
        "written, no batches; same rows, same run, after the job",
        ratio={"job_vs_floor": job["seconds"] / max(floored["seconds"], 1e-6)},
        notes="preview_job.seconds runs from preview_run_start to the last worker process's "
        "exit (process start and Django setup included); worker_peak_rss_mb is the largest "
        "peak RSS of the worker processes. The floor runs on one connection (one core).",
    )


if __name__ == "__main__":
    main()
