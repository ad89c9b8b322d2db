"""Bulk qualification (#17, 3): N new MQLs handed off after a publish, set-based.

    DATABASE_URL=postgres://... python bench/bulk_bench.py --mqls 65000 --wipe

PostgreSQL only (the database in DATABASE_URL, migrated first). Seeds N leads at "known"
with their companies (bench.scoring_bench.seed, no events), three teams of ten reps
(room for 20 open handoffs each: 600 MQLs go to reps, the rest of the wave waits in the
queues), one routing rule per region, a webhook destination that hears of MQLs; then
publishes a clone of the default model (the run and its wave, not executed), gives every
lead a score row of the new model above both thresholds, and times what a rescore batch
does after its scores are written: the promotion candidates (`_promotion_candidates`)
and `hand_off_new_mqls` over them, the whole wave in this process, batch after batch.

The floor, in the same run on the same rows: the bare set-based writes the hand-off
cannot do without, one UPDATE of the leads' stages, one INSERT … SELECT of their
StageTransition rows and one of their Handoff rows, timed and rolled back before the
hand-off runs. It deletes all leads first (refuses without --wipe on a database holding
others).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadflow.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-not-secret")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.report import StatementTimes, emit  # noqa: E402
from bench.scoring_bench import seed, wipe  # noqa: E402
from bench.seeding import insert_select  # noqa: E402
from handoff.models import Handoff, RepProfile, RoutingRule, Team, TeamMembership  # noqa: E402
from integrations.outbound.models import Destination, DestinationKind, OutboxMessage  # noqa: E402
from leadflow.models import Lead, MqlWave, Stage, StageTransition, User  # noqa: E402
from scoring import engine, services  # noqa: E402
from scoring.models import LeadScore, ModelStatus, ScoringModel  # noqa: E402
from sla.models import SlaTimer  # noqa: E402

SMOKE = {"mqls": 3000}
REGIONS = [["kanto"], ["kinki"], []]  # the last team is the default: the rest of Japan
REPS_PER_TEAM = 10
CAPACITY = 20


def seed_sales() -> None:
    """Three teams of reps with little room, routed by region, and an SFA webhook."""
    for number, regions in enumerate(REGIONS, start=1):
        team = Team.objects.create(name=f"Bench team {number}", is_default=not regions)
        if regions:
            RoutingRule.objects.create(name=f"bench {number}", regions=regions, team=team)
        for rep_number in range(1, REPS_PER_TEAM + 1):
            rep = User.objects.create(username=f"bench-{number}-{rep_number}")
            RepProfile.objects.create(user=rep, max_open_handoffs=CAPACITY)
            TeamMembership.objects.create(team=team, rep=rep)
    Destination.objects.create(
        kind=DestinationKind.WEBHOOK,
        slug="bench-sfa",
        name="Bench SFA",
        base_url="http://127.0.0.1:9/",
    )


def wipe_sales() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE handoff_handoff, handoff_routingrule, handoff_teammembership,"
            " handoff_repprofile, handoff_team, integrations_destination,"
            " leadflow_mqlwave RESTART IDENTITY CASCADE"
        )
    User.objects.filter(username__startswith="bench-").delete()


def score_everyone(model: ScoringModel) -> int:
    """Every lead scored above both thresholds of `model`, no hand-raiser."""
    now = timezone.now()
    LeadScore.objects.all().delete()
    insert_select(
        LeadScore,
        {
            "lead_id": "id",
            "model_id": "%s",
            "fit": "%s",
            "engagement": "%s",
            "fit_rules": "'[]'::jsonb",
            "engagement_state": "'{}'::jsonb",
            "computed_at": "%s",
        },
        "leadflow_lead",
        [model.pk, model.fit_threshold + 10, model.engagement_threshold + 10, now],
    )
    return LeadScore.objects.count()


def floor() -> dict:
    """The bare writes of the same moves, rolled back: stages, transitions, handoffs."""
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE leadflow_lead SET stage = 'mql', stage_changed_at = now(),"
            " updated_at = now() WHERE stage = 'known'"
        )
        updated = cursor.rowcount
        cursor.execute(
            "INSERT INTO leadflow_stagetransition (lead_id, from_stage, to_stage,"
            " occurred_at, actor_system, reason, context) SELECT id, 'known', 'mql', now(),"
            " 'floor', '', '{}'::jsonb FROM leadflow_lead WHERE stage = 'mql' ORDER BY id"
        )
        cursor.execute(
            "INSERT INTO handoff_handoff (lead_id, mql_transition_id, status, created_at,"
            " rejection_comment, next_due_kind, search_key) SELECT lead_id, id, 'open',"
            " occurred_at, '', '', '' FROM leadflow_stagetransition"
            " WHERE actor_system = 'floor'"
        )
        handoffs = cursor.rowcount
        seconds = time.perf_counter() - started
        transaction.set_rollback(True)
    return {"seconds": round(seconds, 3), "leads_updated": updated, "handoffs": handoffs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mqls", type=int, default=65_000)
    parser.add_argument("--smoke", action="store_true", help=f"a few seconds: {SMOKE}")
    parser.add_argument("--wipe", action="store_true", help="delete non-bench leads too")
    args = parser.parse_args()
    if args.smoke:
        vars(args).update(SMOKE)
    if connection.vendor != "postgresql":
        sys.exit("The bulk bench needs PostgreSQL: set DATABASE_URL=postgres://...")
    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    wipe_sales()
    wipe(args.wipe)
    seed(args.mqls, 1, 1.0)  # one event each: the seed refuses an empty table
    seed_sales()
    draft = services.scoring_model_clone(
        source=ScoringModel.objects.get(status=ModelStatus.PUBLISHED)
    )
    run = services.scoring_model_publish(model=draft)
    draft.refresh_from_db()
    scored = score_everyone(draft)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    seed_seconds = time.perf_counter() - started

    bare = floor()
    model = engine.compiled(draft.pk)
    wave = MqlWave.objects.get(key=f"rescore:{run.pk}")
    now = timezone.now()
    started = time.perf_counter()
    with StatementTimes(connection) as statements:
        candidates = services._promotion_candidates(model, now)
        found = time.perf_counter() - started
        moved = services.hand_off_new_mqls(model, candidates, now, wave=wave)
        seconds = time.perf_counter() - started
    wave.refresh_from_db()
    handoffs = Handoff.objects.count()
    emit(
        "bulk",
        size={
            "mqls": args.mqls,
            "teams": len(REGIONS),
            "reps": len(REGIONS) * REPS_PER_TEAM,
            "capacity_per_rep": CAPACITY,
            "batch": services.HAND_OFF_BATCH,
            "smoke": args.smoke,
        },
        results={
            "seed_seconds": round(seed_seconds, 2),
            "scored": scored,
            "seconds": round(seconds, 2),
            "candidates_seconds": round(found, 2),
            "mqls_per_second": round(moved / max(seconds, 1e-6)),
            "moved": moved,
            "handoffs": handoffs,
            "wave": {"mqls": wave.mqls, "assigned": wave.assigned, "held": wave.held},
            "transitions": StageTransition.objects.filter(to_stage=Stage.MQL).count(),
            "timers": SlaTimer.objects.count(),
            "outbox": OutboxMessage.objects.count(),
            "left_known": Lead.objects.filter(stage=Stage.KNOWN).count(),
            "sql": statements.report(),
            "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        },
        floor=bare,
        floor_note="one UPDATE of the leads' stages, one INSERT … SELECT of their "
        "StageTransition rows and one of their Handoff rows (no routing, timers, outbox, "
        "snapshots or marks), in one transaction, rolled back",
        ratio={"hand_off_vs_floor": seconds / max(bare["seconds"], 1e-6)},
        notes="seconds: the promotion candidates plus hand_off_new_mqls over all of them, "
        "one process; the issue's target is 65,000 MQLs in at most 60 s.",
    )


if __name__ == "__main__":
    main()
