"""Replay of a draft routing plan (#19): the job's time over N weeks of past MQLs.

    DATABASE_URL=postgres://... python bench/replay_bench.py --mqls 20000 --weeks 4 --wipe

PostgreSQL only. Seeds leads and companies as the scoring bench does
(bench.scoring_bench.seed), one team of `--reps` reps, and for every lead an MQL spread
evenly over the last `--weeks` weeks: a stage move, a handoff assigned round robin, a
first contact 5 + 4k minutes later for the team's k-th rep (one in ten never contacted,
still open), a verdict 1–8 hours after the contact, and the first-contact SLA timer, all
set-based through bench.seeding. The business calendar is open every day, all day (as
the claims bench's), so the recorded response times are working time at any hour. Then
it makes a draft plan (a copy of that routing) that requires claims within 15 minutes
and halves every rep's capacity (10 open handoffs), and times the replay job
(handoff.replay.replay_run_execute) from its start to its stored result.

The floor, in the same run: the part the job cannot skip, reading the same handoffs and
their assignments into memory (handoff.replay's own read, without simulating).

It deletes all leads first (refuses without --wipe on a database holding others).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from bench.claims_bench import calendar_always_open
from bench.report import emit
from bench.scoring_bench import seed, wipe
from bench.seeding import audit, handoff_search_key_sql, insert_select
from handoff import plans, replay
from handoff.models import (
    Assignment,
    Handoff,
    PlanRep,
    PlanTeam,
    ReplayRun,
    ReplayStatus,
    RoutingPlan,
    Team,
    TeamMembership,
)
from leadflow.models import Lead, StageTransition, User
from sla.models import SlaTimer

SMOKE = {"mqls": 1500, "weeks": 2, "reps": 6, "repeat": 1}


def seed_history(n: int, weeks: int, reps: list[int], team_id: int) -> dict[str, int]:
    """The MQLs of the last `weeks` weeks, one per seeded lead (lead ids 1…n)."""
    now = timezone.now()
    span = weeks * 7 * 24 * 3600 - 3600  # seconds; the last one an hour ago
    rep_array = "ARRAY[" + ", ".join(str(r) for r in reps) + "]"
    series = f"(SELECT g, %s - make_interval(secs => {span} - (g - 1) * {span}.0 / {n}) AS t"
    series += f" FROM generate_series(1, {n}) AS s(g)) m"
    insert_select(
        StageTransition,
        {
            "lead_id": "g",
            "from_stage": "'known'",
            "to_stage": "'mql'",
            "occurred_at": "t",
            "actor_system": "'bench'",
            "reason": "''",
            "context": "'{}'::jsonb",
        },
        series,
        [now],
    )
    # Rep k of the team (g % reps) answers in 5 + 4k minutes: the first few within the
    # draft's 15-minute claim window, the others not.
    contact = f"t + make_interval(mins => 5 + 4 * (g %% {len(reps)}))"
    verdict = f"{contact} + make_interval(hours => 1 + g %% 8)"
    contacted = "g %% 10 <> 0"
    insert_select(
        Handoff,
        {
            "lead_id": "g",
            "search_key": handoff_search_key_sql("g"),
            "mql_transition_id": "g",
            "team_id": str(team_id),
            "assigned_to_id": f"({rep_array})[1 + g %% {len(reps)}]",
            "status": f"CASE WHEN {contacted} THEN 'accepted' ELSE 'open' END",
            "created_at": "t",
            "assigned_at": "t",
            "first_contact_at": f"CASE WHEN {contacted} THEN {contact} END",
            "decided_at": f"CASE WHEN {contacted} THEN {verdict} END",
            "rejection_comment": "''",
            "next_due_kind": "''",
        },
        series,
        [now],
    )
    insert_select(
        Assignment,
        {
            "handoff_id": "g",
            "rep_id": f"({rep_array})[1 + g %% {len(reps)}]",
            "via": "'routing'",
            "reason": "''",
            "assigned_at": "t",
        },
        series,
        [now],
    )
    insert_select(
        SlaTimer,
        {
            "handoff_id": "g",
            "kind": "'first_contact'",
            "status": f"CASE WHEN {contacted} THEN 'met' ELSE 'breached' END",
            "counts_business_time": "false",
            "started_at": "t",
            "due_at": "t + interval '24 hours'",
            "met_at": f"CASE WHEN {contacted} THEN {contact} END",
            "rep_id": f"({rep_array})[1 + g %% {len(reps)}]",
            "rep_since": "t",
        },
        series,
        [now],
    )
    with connection.cursor() as cursor:
        for table in ("handoff_handoff", "handoff_assignment", "sla_slatimer"):
            cursor.execute(f"ANALYZE {table}")
    return {
        "leadflow_stagetransition": audit(StageTransition),
        "handoff_handoff": audit(Handoff),
        "handoff_assignment": audit(Assignment),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mqls", type=int, default=20_000)
    parser.add_argument("--weeks", type=int, default=4)
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the median counts")
    parser.add_argument("--smoke", action="store_true", help=f"a few seconds: {SMOKE}")
    parser.add_argument("--wipe", action="store_true", help="delete non-bench leads too")
    args = parser.parse_args()
    if args.smoke:
        vars(args).update(SMOKE)
    if connection.vendor != "postgresql":
        sys.exit("The replay bench needs PostgreSQL: set DATABASE_URL=postgres://...")

    call_command("migrate", verbosity=0)
    wipe(args.wipe)
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE handoff_replayrun, handoff_routingplan, handoff_teammembership,"
            " handoff_team_managers, handoff_routingrule, handoff_team RESTART IDENTITY CASCADE"
        )
    User.objects.filter(username__startswith="bench-replay-").delete()
    calendar_always_open()
    started = time.perf_counter()
    audited = seed(args.mqls, 1, known_share=0.0)
    team = Team.objects.create(name="bench-replay", is_default=True)
    reps = []
    for number in range(args.reps):
        rep = User.objects.create_user(f"bench-replay-{number}", f"r{number}@bench.invalid")
        TeamMembership.objects.create(team=team, rep=rep)
        reps.append(rep.pk)
    first_lead = Lead.objects.order_by("pk").values_list("pk", flat=True).first()
    if first_lead != 1:
        sys.exit("The seed expects lead ids from 1 (TRUNCATE … RESTART IDENTITY).")
    audited.update(seed_history(args.mqls, args.weeks, reps, team.pk))
    seed_seconds = time.perf_counter() - started

    plan = plans.routing_plan_draft_create(plan=RoutingPlan(name="bench"), actor=None)
    PlanTeam.objects.filter(plan=plan).update(claim_required=True, claim_window_minutes=15)
    PlanRep.objects.filter(plan=plan).update(max_open_handoffs=10)

    samples, floor_samples = [], []
    run = None
    for _repeat in range(args.repeat):
        ReplayRun.objects.filter(plan=plan).delete()
        started = time.perf_counter()
        run = replay.replay_run_start(plan=plan, weeks=args.weeks, fresh=True)
        replay.replay_run_execute(run_id=run.pk)
        samples.append(time.perf_counter() - started)
        run.refresh_from_db()
        started = time.perf_counter()
        records = replay._records(run.since, run.until)
        floor_samples.append(time.perf_counter() - started)
    assert run is not None
    seconds, floor_seconds = statistics.median(samples), statistics.median(floor_samples)
    result = run.result
    emit(
        "replay",
        size={
            "mqls": args.mqls,
            "weeks": args.weeks,
            "reps": args.reps,
            "smoke": args.smoke,
        },
        results={
            "seed_seconds": round(seed_seconds, 2),
            "seed_rows_audited": audited,
            "status": run.status,
            "replayed_mqls": result.get("mqls"),
            "floor_rows": len(records),
            "job_seconds": round(seconds, 3),
            "mqls_per_s": round(args.mqls / seconds, 1),
            "replay_assignments": result["replay"]["received"],
            "replay_passes": result["replay"]["passed_on"],
            "replay_breaches": result["replay"]["breaches"],
            "actual_breaches": result["actual"]["breaches"],
            "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        },
        floor={"seconds": round(floor_seconds, 3)},
        floor_note="the job's own read of the same handoffs and assignments into memory "
        "(handoff.replay._records), without simulating",
        ratio={"job_vs_floor": seconds / max(floor_seconds, 1e-6)},
        notes=f"medians of --repeat runs; the draft requires claims within 15 minutes and "
        f"caps each rep at 10 open handoffs. Done: {run.status == ReplayStatus.DONE}.",
    )


if __name__ == "__main__":
    main()
