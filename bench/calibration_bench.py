"""Calibration benchmark: the scoring studio's calibration and rule verdicts over the
decided leads, each scored as of its handoff.

    DATABASE_URL=postgres://... python bench/calibration_bench.py --leads 100000 --wipe

PostgreSQL only (the database in DATABASE_URL, migrated first). It seeds N leads with M
events each as the scoring bench does (bench.scoring_bench.seed), hands every fifth lead
to sales (a move to MQL some days ago) with a verdict two days later (four in ten SQL,
half of those won, the rest rejected with a reason), then times, under the published
model, `calibration_for` (one statement: the grid, deciles and every threshold of the
explorer), `feedback_for` (one statement: verdicts per rule, the suggestions) and one
explorer redraw (no query). The floor is the part neither can skip: scoring the same
decided leads as of their handoff and counting them. Prints JSON (bench/report.py).

Like the scoring bench it deletes all leads first (refuses without --wipe if some are
not the bench's).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from bench.report import emit
from bench.scoring_bench import seed, wipe
from bench.seeding import audit, insert_select
from leadflow.models import Lead, StageTransition
from scoring import engine
from scoring.calibration import (
    calibration_for,
    explorer_data,
    history_ctes,
    scores_for,
)
from scoring.models import ModelStatus, ScoringModel
from scoring.services import preview_run_execute, preview_run_start, scoring_model_clone
from scoring.sql import Sql
from scoring.suggestions import feedback_for

SMOKE = {"leads": 2000, "events_per_lead": 5, "repeat": 2}
T = TypeVar("T")
REASONS = ["no_budget", "timing", "no_authority", "competitor", "not_target"]


def hand_over(first_lead: int, n_leads: int) -> int:
    """Every fifth lead: a move to MQL 3–92 days ago and a verdict 2 days later; four
    in ten become SQL (half of them then won), six in ten are rejected with a reason."""
    now = timezone.now()
    common = {
        "actor_system": "'bench'",
        "reason": "''",
        "lead_id": "%s + g",
    }
    handed = f"generate_series(0, {n_leads - 1}, 5) AS s(g)"
    insert_select(
        StageTransition,
        {
            **common,
            "from_stage": "'known'",
            "to_stage": "'mql'",
            "occurred_at": "%s - make_interval(days => 5 + g %% 90)",
            "context": "'{}'::jsonb",
        },
        f"(SELECT g FROM {handed}) h",
        [first_lead, now],
    )
    reasons = "ARRAY[" + ", ".join(f"'{r}'" for r in REASONS) + "]"
    insert_select(
        StageTransition,
        {
            **common,
            "from_stage": "'mql'",
            "to_stage": "CASE WHEN (g / 5) %% 10 < 4 THEN 'sql' ELSE 'recycled' END",
            "occurred_at": "%s - make_interval(days => 3 + g %% 90)",
            "context": "CASE WHEN (g / 5) %% 10 < 4 THEN '{}'::jsonb ELSE"
            f" jsonb_build_object('rejection_reason', ({reasons})[1 + (g / 5) %% 5]) END",
        },
        f"(SELECT g FROM {handed}) h",
        [first_lead, now],
    )
    insert_select(
        StageTransition,
        {
            **common,
            "from_stage": "'sql'",
            "to_stage": "'customer'",
            "occurred_at": "%s - make_interval(days => 1 + g %% 90)",
            "context": "'{}'::jsonb",
        },
        f"(SELECT g FROM {handed} WHERE (g / 5) %% 10 < 2) h",
        [first_lead, now],
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE leadflow_stagetransition")
    return audit(StageTransition)


def timed(function: Callable[[], T], repeat: int) -> tuple[float, T]:
    samples = []
    for _run in range(repeat):
        started = time.perf_counter()
        result = function()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples), result


def floor_query(model: ScoringModel) -> float:
    """Score the handed-over leads as of their handoff and count them: the scoring both
    statements do, without grouping anything."""
    history = history_ctes()
    scores = scores_for(engine.compiled(model), prefix="s_")
    sql = Sql("WITH ").add(history.text, history.params).add(", " + scores.text, scores.params)
    sql.add(" SELECT COUNT(*), SUM(s.fit + s.engagement) FROM s_scores s")
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(sql.text, sql.params)
        cursor.fetchone()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--events-per-lead", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the median counts")
    parser.add_argument("--smoke", action="store_true", help=f"a few seconds: {SMOKE}")
    parser.add_argument("--wipe", action="store_true", help="delete non-bench leads too")
    args = parser.parse_args()
    if args.smoke:
        vars(args).update(SMOKE)
    if connection.vendor != "postgresql":
        sys.exit("The calibration bench needs PostgreSQL: set DATABASE_URL=postgres://...")

    call_command("migrate", verbosity=0)
    wipe(args.wipe)
    started = time.perf_counter()
    audited = seed(args.leads, args.events_per_lead, known_share=1.0)
    first_lead = Lead.objects.order_by("pk").values_list("pk", flat=True).first() or 0
    audited["leadflow_stagetransition"] = hand_over(first_lead, args.leads)
    seed_seconds = time.perf_counter() - started
    model = ScoringModel.objects.get(status=ModelStatus.PUBLISHED)

    calibration_seconds, calibration = timed(lambda: calibration_for(model), args.repeat)
    feedback_seconds, feedback = timed(lambda: feedback_for(model), args.repeat)
    explorer_seconds, _data = timed(
        lambda: explorer_data(calibration, model.fit_threshold, model.engagement_threshold),
        args.repeat,
    )
    floor_seconds = statistics.median(floor_query(model) for _run in range(args.repeat))
    # What the page reads once a draft's preview job has finished: the job's stored rows.
    draft = scoring_model_clone(source=model)
    started = time.perf_counter()
    run = preview_run_start(draft=draft, enqueue=False)
    preview_run_execute(run_id=run.pk)
    job_seconds = time.perf_counter() - started
    run.refresh_from_db()
    stored_seconds, stored = timed(lambda: calibration_for(model, run=run), args.repeat)
    stored_feedback_seconds, stored_feedback = timed(
        lambda: feedback_for(model, run=run), args.repeat
    )
    emit(
        "calibration",
        size={
            "leads": args.leads,
            "events": args.leads * args.events_per_lead,
            "handed_over": calibration.handed_over,
            "decided": calibration.total.leads,
            "smoke": args.smoke,
        },
        results={
            "seed_seconds": round(seed_seconds, 2),
            "seed_rows_audited": audited,
            "calibration_seconds": round(calibration_seconds, 3),
            "histogram_cells": len(calibration.cells),
            "feedback_seconds": round(feedback_seconds, 3),
            "suggestions": len(feedback.suggestions),
            "explorer_redraw_ms": round(1000 * explorer_seconds, 2),
            "preview_job_seconds": round(job_seconds, 2),
            "stored_calibration_seconds": round(stored_seconds, 3),
            "stored_feedback_seconds": round(stored_feedback_seconds, 3),
            # The page's figures from the job's rows are the live ones (as in the tests).
            "stored_equals_live": (
                (stored.handed_over, stored.total.leads, len(stored.cells))
                == (calibration.handed_over, calibration.total.leads, len(calibration.cells))
                and [x.text for x in stored_feedback.suggestions]
                == [x.text for x in feedback.suggestions]
            ),
            "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        },
        floor={"seconds": round(floor_seconds, 3)},
        floor_note="the handed-over leads scored as of their handoff (scoring.sql.scores_cte "
        "with the same cutoff) and counted: no outcomes, no grouping",
        ratio={
            "calibration_vs_floor": calibration_seconds / max(floor_seconds, 1e-6),
            "feedback_vs_floor": feedback_seconds / max(floor_seconds, 1e-6),
        },
        notes="medians of --repeat runs, under the published default model. The live "
        "figures are what a small database (or a model with no preview job) gets in the "
        "request; the page reads the stored ones once the draft's preview job finished "
        "(the job's own time is preview_job_seconds): about 2 × stored calibration + "
        "stored feedback per load.",
    )


if __name__ == "__main__":
    main()
