"""Claim or pass on (#19) under load: MQLs at a steady rate into one team whose reps must
claim within the window, one rep in three never claiming.

    DATABASE_URL=postgres://... python bench/claims_bench.py --rate 50 --seconds 120

Producer processes make MQLs through leadflow.lifecycle (routing, claim window, SLA timers,
timeline, as in production) at `--rate` per second for `--seconds`; a claimer thread
claims, within a second, every window of the reps who claim (handoff.claims.claim_make,
as the inbox's button does); the sweeper runs handoff.claims.claims_sweep every
`--sweep-every` seconds (the beat's SLA sweep runs every 60 s), each run draining its
batches while they come back full, as sweep_task re-enqueues itself. It runs until every
never-claimed window of the produced MQLs has passed. Reported:

- the claim sweep's wall time per run (median, p95, max) and the windows it passed;
- the time from MQL to the second rep's assignment (Assignment via "passed"), p50/p99,
  over every MQL the never-claiming reps let pass.

Floors from the same run: the window itself (no pass can come sooner: the p99 minus the
window is the sweep's cadence and cost), and for the sweep a bare UPDATE of one batch of
due pending windows (what any pass must at least write), timed on the same rows.

The default business calendar is set to every day, 00:00–23:59, no holidays, so working
hours do not move the windows. The smoke size (`--smoke`) travels in time instead of
waiting for the window: it sweeps with `now` = wall clock + the window.

It deletes all leads and handoffs first (refuses without --wipe on a database holding
leads it did not create).
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import queue
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadflow.settings")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", "bench-only-not-a-secret-" + "x" * 40)
os.environ.setdefault("CELERY_BROKER_URL", "memory://")
os.environ.setdefault("LEADFLOW_SECURE_COOKIES", "0")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, connections, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.report import emit, p95  # noqa: E402
from handoff import claims  # noqa: E402
from handoff.models import (  # noqa: E402
    Assignment,
    ClaimStatus,
    ClaimVia,
    HandoffClaim,
    RepProfile,
    Team,
    TeamMembership,
)
from leadflow.lifecycle import lead_transition  # noqa: E402
from leadflow.models import Lead, Stage, User  # noqa: E402
from leadflow.roles import SALES_REP  # noqa: E402
from sla.models import BusinessCalendar  # noqa: E402

TABLES = [
    "handoff_handoffclaim",
    "handoff_queuenotice",
    "handoff_handofftimeline",
    "handoff_activity",
    "handoff_assignment",
    "handoff_handoff",
    "handoff_teammembership",
    "handoff_team_managers",
    "handoff_routingrule",
    "handoff_team",
    "sla_slatimer",
    "sla_kpihandoffday",
    "sla_kpitimerday",
    "sla_kpistaleday",
    "sla_repworkinghours",
    "leadflow_stagetransition",
    "leadflow_engagementevent",
    "leadflow_leadexternalid",
    "leadflow_lead",
]
SMOKE = {"rate": 10.0, "seconds": 3.0, "reps": 6, "sweep_every": 0.5, "producers": 2}


def wipe(force: bool) -> None:
    if not force and Lead.objects.exclude(source__startswith="bench").exists():
        sys.exit("The database has leads the bench did not create; pass --wipe to delete them.")
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
    User.objects.filter(username__startswith="bench-").delete()


def calendar_always_open() -> None:
    """The default business calendar: every day 00:00–23:59, no holidays or closures, so
    working hours move nothing the bench measures (also the replay bench's)."""
    calendar, _ = BusinessCalendar.objects.get_or_create(
        is_default=True, defaults={"name": "bench"}
    )
    calendar.closures.all().delete()
    for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"):
        setattr(calendar, day, True)
    calendar.opens_at, calendar.closes_at = dt.time(0, 0), dt.time(23, 59)
    calendar.national_holidays = False
    calendar.save()


def setup(reps: int, window: int) -> tuple[Team, set[int], set[int]]:
    calendar_always_open()
    team = Team.objects.create(
        name="bench-claims",
        is_default=True,
        claim_required=True,
        claim_window_minutes=window,
        claim_max_passes=2,
    )
    group = Group.objects.get(name=SALES_REP)
    claiming, never = set(), set()
    for number in range(reps):
        rep = User.objects.create_user(f"bench-rep{number}", f"rep{number}@bench.invalid")
        rep.groups.add(group)
        TeamMembership.objects.create(team=team, rep=rep)
        RepProfile.objects.create(user=rep, max_open_handoffs=30000)
        (never if number % 3 == 2 else claiming).add(rep.pk)
    return team, claiming, never


def produce(rate: float, offset: float, seconds: float, clock: Any, out: Any) -> None:
    """One producer process: MQLs at `rate` per second on a fixed schedule (no drift) from
    the start + `offset` for `seconds`: behind schedule it sends at once, and what it could
    not send by then is not sent (the achieved rate says so). Puts (lead ids, how far
    behind schedule it fell at most) on `out`. Processes, not threads: as threads of the
    bench they took turns on one GIL, and the bench, not the app, capped the rate
    (37 MQL/s at 50 asked, the bench process at 100 % of a core)."""
    made: list[int] = []
    behind = 0.0
    try:
        # Django is set up (the module's import): say so, then wait for the common start.
        out.put(("ready", os.getpid()))
        clock["go"].wait()
        start = clock["start"].value
        stop_at = start + seconds
        interval = 1.0 / rate
        due = start + offset
        while due < stop_at and time.monotonic() < stop_at:
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            else:
                behind = max(behind, -pause)
            lead = Lead.objects.create(
                email=f"claims-{os.getpid()}-{len(made)}@bench.invalid",
                last_name="Bench",
                source="bench:claims",
                stage=Stage.KNOWN,
            )
            lead_transition(lead=lead, to_stage=Stage.MQL, actor="bench")
            made.append(lead.pk)
            due += interval
    finally:
        connections.close_all()
        out.put(("done", (made, behind)))


def claim_loop(claiming: set[int], done: threading.Event, claimed: list[int]) -> None:
    """The reps who claim: every pending window of theirs, within a second."""
    try:
        while not done.is_set():
            pending = list(
                HandoffClaim.objects.filter(status=ClaimStatus.PENDING, rep_id__in=claiming)
                .order_by("started_at")
                .values_list("handoff_id", "rep_id")[:500]
            )
            for handoff_id, rep_id in pending:
                if claims.claim_make(
                    handoff_id=handoff_id,
                    rep_id=rep_id,
                    via=ClaimVia.ACKNOWLEDGED,
                    at=timezone.now(),
                ):
                    claimed.append(handoff_id)
            done.wait(0.5 if len(pending) < 500 else 0)
    finally:
        connections.close_all()


def sweep_once(skew: dt.timedelta) -> dict:
    """One beat's sweep: batches until one comes back short (sweep_task's re-enqueue)."""
    started = time.perf_counter()
    passed = queued = batches = 0
    while True:
        result = claims.claims_sweep(now=timezone.now() + skew)
        batches += 1
        passed += len(result.passed)
        queued += len(result.queued)
        if not result.more:
            break
    return {
        "seconds": time.perf_counter() - started,
        "passed": passed,
        "queued": queued,
        "batches": batches,
    }


def floor_update(batch: int, skew: dt.timedelta) -> dict:
    """A bare UPDATE of one batch of the due pending windows (rolled back)."""
    now = timezone.now() + skew
    with transaction.atomic(), connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(
            "UPDATE handoff_handoffclaim SET status = 'passed', resolved_at = %s WHERE id IN"
            " (SELECT id FROM handoff_handoffclaim WHERE status = 'pending' AND due_at <= %s"
            " ORDER BY due_at LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id",
            [now, now, batch],
        )
        rows = len(cursor.fetchall())
        seconds = time.perf_counter() - started
        transaction.set_rollback(True)
    return {"seconds": seconds, "windows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=50, help="MQLs per second")
    parser.add_argument("--seconds", type=float, default=120, help="how long to make MQLs")
    parser.add_argument("--reps", type=int, default=30, help="one in three never claims")
    parser.add_argument("--window", type=int, default=1, help="claim window, minutes")
    parser.add_argument("--sweep-every", type=float, default=15.0, help="seconds between sweeps")
    parser.add_argument("--producers", type=int, default=4, help="processes making MQLs")
    parser.add_argument("--wipe", action="store_true")
    parser.add_argument("--smoke", action="store_true", help=f"a few seconds: {SMOKE}")
    args = parser.parse_args()
    if args.smoke:
        for key, value in SMOKE.items():
            setattr(args, key, value)

    call_command("migrate", verbosity=0)
    wipe(args.wipe)
    _team, claiming, never = setup(args.reps, args.window)
    window = dt.timedelta(minutes=args.window)
    # Smoke: no waiting for the window; the sweeper looks one window ahead.
    # (less 2 s, so the claimers' windows are claimed before it can pass them).
    skew = window - dt.timedelta(seconds=2) if args.smoke else dt.timedelta(0)

    made: list[int] = []
    late: list[float] = []
    claimed: list[int] = []
    done = threading.Event()
    claimer = threading.Thread(target=claim_loop, args=(claiming, done, claimed))
    claimer.start()
    # Spawned, not forked: this process has a thread (the claimer) and open connections.
    # The schedule starts once every child has imported Django (CLOCK_MONOTONIC is one
    # clock for every process of the machine).
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    clock = {"go": context.Event(), "start": context.Value("d", 0.0)}
    producers = [
        context.Process(
            target=produce,
            args=(args.rate / args.producers, i / args.rate, args.seconds, clock, out),
        )
        for i in range(args.producers)
    ]
    for process in producers:
        process.start()
    for _ in producers:
        kind, _pid = out.get(timeout=120)
        assert kind == "ready", kind
    start = time.monotonic() + 0.1
    clock["start"].value = start
    clock["go"].set()
    stop_at = start + args.seconds
    reported = 0

    def collect(block: bool = False) -> None:
        nonlocal reported
        while reported < len(producers):
            try:
                _done, (ids, behind) = out.get(timeout=120) if block else out.get_nowait()
            except queue.Empty:
                return
            made.extend(ids)
            late.append(behind)
            reported += 1

    sweeps: list[dict] = []
    batch = settings.HANDOFF_CLAIM_SWEEP_BATCH_SIZE
    # Let the claimer see the first windows before any sweep could pass them.
    next_sweep = start + args.sweep_every
    deadline = stop_at + window.total_seconds() + 4 * args.sweep_every + 60
    while time.monotonic() < deadline:
        time.sleep(max(0.0, next_sweep - time.monotonic()))
        next_sweep += args.sweep_every
        # The floor first, on the rows this sweep is about to pass (rolled back).
        bare = floor_update(batch, skew)
        run = sweep_once(skew)
        if run["passed"] or run["queued"]:
            run["floor_seconds"] = bare["seconds"]
            run["floor_windows"] = bare["windows"]
            sweeps.append(run)
        collect()
        producing = reported < len(producers)
        left = HandoffClaim.objects.filter(
            status=ClaimStatus.PENDING, rep_id__in=never, assignment__via="routing"
        ).count()
        if not producing and left == 0:
            break
    collect(block=True)
    for process in producers:
        process.join()
    done.set()
    claimer.join()

    # MQL → the second rep: the first pass of each handoff.
    # The MQLs first routed to a rep who never claims.
    let_go = HandoffClaim.objects.filter(rep_id__in=never, assignment__via="routing").values(
        "handoff_id"
    )
    waits = sorted(
        (assigned - created).total_seconds()
        for assigned, created in Assignment.objects.filter(via="passed", handoff_id__in=let_go)
        .order_by("handoff_id", "assigned_at")
        .distinct("handoff_id")
        .values_list("assigned_at", "handoff__created_at")
    )
    let_pass = HandoffClaim.objects.filter(rep_id__in=never).exclude(status=ClaimStatus.CLAIMED)
    first_windows_never = HandoffClaim.objects.filter(
        rep_id__in=never, assignment__via="routing"
    ).count()
    sweep_seconds = sorted(run["seconds"] for run in sweeps)
    if not waits or not sweep_seconds:
        sys.exit("Nothing was passed on: the bench measured nothing.")
    p99 = waits[max(0, int(len(waits) * 0.99) - 1)]
    floor_median = statistics.median(run["floor_seconds"] for run in sweeps)
    elapsed = time.monotonic() - start
    emit(
        "claims",
        size={
            "rate_per_s": args.rate,
            "seconds": args.seconds,
            "reps": args.reps,
            "never_claiming_reps": len(never),
            "window_minutes": args.window,
            "sweep_every_s": args.sweep_every,
            "smoke_time_travel": args.smoke,
        },
        results={
            "mqls": len(made),
            "achieved_rate_per_s": round(len(made) / args.seconds, 1),
            "producers": args.producers,
            "producers_behind_schedule_max_ms": round(max(late, default=0.0) * 1000, 1),
            "claimed_by_claimers": len(claimed),
            "first_windows_of_never_claimers": first_windows_never,
            "windows_let_pass": let_pass.count(),
            "passes_in_all": Assignment.objects.filter(via="passed").count(),
            "passed_to_second_rep": len(waits),
            "sweep": {
                "runs": len(sweeps),
                "median_s": round(statistics.median(sweep_seconds), 4),
                "p95_s": round(p95(sweep_seconds), 4),
                "max_s": round(max(sweep_seconds), 4),
                "windows_per_run_median": statistics.median(
                    run["passed"] + run["queued"] for run in sweeps
                ),
            },
            "mql_to_second_rep_s": {
                "p50": round(statistics.median(waits), 2),
                "p99": round(p99, 2),
                "max": round(waits[-1], 2),
            },
            "wall_seconds": round(elapsed, 1),
        },
        floor={
            "window_s": window.total_seconds(),
            "bare_update_median_s": round(floor_median, 4),
            "bare_update_windows_median": statistics.median(run["floor_windows"] for run in sweeps),
        },
        floor_note=(
            "window_s: the claim window, before which no pass can come; bare_update: before"
            " each sweep run, one UPDATE … FOR UPDATE SKIP LOCKED of a batch of the due"
            " pending windows that run then passes (rolled back)"
        ),
        ratio={
            "p99_vs_window": p99 / window.total_seconds(),
            "sweep_median_vs_bare_update": statistics.median(sweep_seconds) / floor_median,
        },
        notes=(
            "p99 − window ≈ the sweep cadence (--sweep-every; the beat's is 60 s) + a run's"
            " time. Smoke size sweeps one window ahead instead of waiting."
        ),
    )


if __name__ == "__main__":
    main()
