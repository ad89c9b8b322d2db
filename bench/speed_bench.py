"""Speed-to-lead bench: the hop figures, delay outcomes, forecast and drill-down of
/dashboard/speed/ among many handoffs, on PostgreSQL.

    DATABASE_URL=postgres://... python bench/speed_bench.py --wipe \
        --leads 1000000 --events 1000000 --open 100000 --closed 50000

Seeds like the SLA bench (bench/sla_bench.py: leads, events, open and decided handoffs
with their timers), then one timeline per handoff (handoff.HandoffTimeline) with every
instant filled as intake, routing and the reps would: the MA event minutes before the
MQL, received seconds before, assigned at the MQL, the rep notified within a minute,
7 in 10 opened within hours, the seeded first contacts and verdicts, the SFA within
seconds. Then, each run (also with `--reuse`, which keeps rows seeded at the same size),
the per-day speed-to-lead rows the figures read, made by the app's own rebuild and
refresh (sla.kpis.days). Times, `--requests` times each (p50/p95/max): the selectors in
`sla.kpis.speed_metrics`
(hops overall and per source/team/rep, delay buckets, the forecast, the slowest hop's
handoffs) for the last 4 weeks of every team, and the page and the API through Django's
test client as a manager of both teams. Floor, same run, same rows: a bare
`SELECT count(*)` of the range's timelines (what any figure over them must read).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from bench import sla_bench
from bench.report import emit, latency
from bench.seeding import SEED_SECONDS, insert_select, remember_seeded_size, seeded_size_at
from handoff.models import HandoffTimeline, TimelineStaleDay
from leadflow.models import User
from sla.access import DEFAULT_RANGE_DAYS
from sla.kpis import speed_days, speed_metrics
from sla.kpis.days import kpi_days_rebuild, kpi_days_refresh_all
from sla.kpis.metrics import MetricsFilter
from sla.models import KpiStaleDay, SpeedHopDay, SpeedRepHopDay
from sla.selectors import calendar_for

SMOKE = {"leads": 2_000, "events": 5_000, "open": 500, "closed": 500, "requests": 5}


def seed_timelines() -> int:
    insert_select(
        HandoffTimeline,
        {
            "handoff_id": "h.id",
            "mql_at": "h.created_at",
            # Spread over the sources independently of the rep (the seeded leads' own
            # source follows the id as the rep does: every rep would see one source).
            "source": "'bench:' || (ARRAY['web', 'seminar', 'hubspot', 'csv', 'partner'])"
            "[1 + (l.id / 20) %% 5]",
            "event_occurred_at": "h.created_at - random() * interval '30 minutes'",
            "received_at": "h.created_at - random() * interval '5 seconds'",
            "processed_at": "h.created_at",
            "assigned_at": "h.assigned_at",
            "notified_at": "h.assigned_at + random() * interval '1 minute'",
            "opened_at": "CASE WHEN h.id %% 10 < 7"
            " THEN h.assigned_at + random() * interval '4 hours' END",
            "first_contact_at": "h.first_contact_at",
            "decided_at": "h.decided_at",
            "sfa_delivered_at": "h.created_at + random() * interval '2 seconds'",
        },
        "handoff_handoff h JOIN leadflow_lead l ON l.id = h.lead_id ORDER BY h.id",
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE handoff_handofftimeline")
    return HandoffTimeline.objects.count()


def fill_speed_days() -> dict:
    """The per-day speed-to-lead rows of every seeded day, made as the app makes them after
    an upgrade or by the nightly rebuild: every day marked stale, then worked off by the
    refresh beat runs (`sla.kpis.days`, DAYS_PER_REFRESH days per transaction, the KPI days
    with them), timed; so the tables the figures read hold rows as the app lays them out."""
    KpiStaleDay.objects.all().delete()
    TimelineStaleDay.objects.all().delete()
    marked = kpi_days_rebuild()
    started = time.perf_counter()
    refreshed = kpi_days_refresh_all()
    seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute(
            "ANALYZE sla_speedhopday, sla_speedrephopday, sla_speeddelayday, sla_speedarrivalhour"
        )
    return {
        "days_marked": marked,
        "days_refreshed": refreshed,
        "refresh_seconds": round(seconds, 1),
    }


# The size of the rows seeded last, so that --reuse keeps them only for the same size.
MARKER = "bench_speed_seed"


def reusable(size: dict[str, int]) -> dt.datetime | None:
    """When the rows of this size were seeded, if they still are (else None)."""
    seeded_at = seeded_size_at(MARKER, size)
    if seeded_at is None or HandoffTimeline.objects.count() != size["open"] + size["closed"]:
        return None  # none of this size, or another bench wiped or reseeded the tables since
    return seeded_at


def timed(function: Callable[[], object], requests: int) -> dict:
    function()  # warm-up: the first call compiles plans and fills per-process caches
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1000)
    return latency(samples)


def page(client: Client, url: str) -> Callable[[], object]:
    def get() -> object:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        return response

    return get


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--open", type=int, default=100_000)
    parser.add_argument("--closed", type=int, default=50_000)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--smoke", action="store_true", help=f"a few seconds: {SMOKE}")
    parser.add_argument("--wipe", action="store_true")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the rows an earlier run of this size seeded (its size is recorded in the"
        " database); seed afresh if there are none or they are of another size",
    )
    args = parser.parse_args()
    if args.smoke:
        vars(args).update(SMOKE)
    if connection.vendor != "postgresql":
        sys.exit("The speed-to-lead bench needs PostgreSQL: set DATABASE_URL=postgres://...")
    call_command("migrate", verbosity=0)
    size = {k: getattr(args, k) for k in ("leads", "events", "open", "closed")}
    seeded_at = reusable(size) if args.reuse else None
    if seeded_at is None:
        sla_bench.wipe(args.wipe)
        started = time.perf_counter()
        seeded = sla_bench.seed(args.leads, args.events, args.open, args.closed, 0)
        timelines = seed_timelines()
        seeded["seed_seconds"] = round(time.perf_counter() - started, 1)
        seeded["seed_table_seconds"] = dict(SEED_SECONDS)
        remember_seeded_size(MARKER, size)
    else:
        seeded = {"reused_seed_of": seeded_at.isoformat(timespec="seconds")}
        timelines = HandoffTimeline.objects.count()
    seeded.update(fill_speed_days())  # each run: the figures read what this code writes
    manager = seeded.pop("manager", None) or User.objects.get(username="bench-manager")

    today = timezone.localdate()
    f = MetricsFilter(start=today - dt.timedelta(days=DEFAULT_RANGE_DAYS - 1), end=today)
    calendar = calendar_for()
    hops = speed_metrics.hop_figures(f)
    slowest = hops["slowest"] or "pickup"
    client = Client()
    client.force_login(manager)
    # The rows the range's figures read (whole weeks by their week rows).
    in_range = {
        model._meta.db_table: speed_days.hop_rows(model, f.start, f.end, f.team_ids).count()
        for model in (SpeedHopDay, SpeedRepHopDay)
    }
    results = {
        **seeded,
        "speed_day_rows_in_range": in_range,
        "timelines": timelines,
        "in_range": speed_metrics.timelines(f).count(),
        "slowest_hop": slowest,
        "hop_figures": timed(lambda: speed_metrics.hop_figures(f), args.requests),
        "delay_outcomes": timed(lambda: speed_metrics.delay_outcomes(f), args.requests),
        "forecast": timed(lambda: speed_metrics.forecast(f, calendar=calendar), args.requests),
        "drill_down": timed(lambda: speed_metrics.hop_handoffs(f, slowest), args.requests),
        "page": timed(page(client, "/dashboard/speed/"), args.requests),
        "page_drill": timed(page(client, f"/dashboard/speed/?hop={slowest}"), args.requests),
        "api": timed(page(client, "/api/v1/metrics/speed/"), args.requests),
    }

    def floor_query() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM handoff_handofftimeline WHERE mql_at >= %s AND mql_at < %s",
                [f.start_at, f.end_at],
            )
            return cursor.fetchone()[0]

    floor = {"count_p95_ms": timed(floor_query, args.requests)["p95_ms"]}
    emit(
        "speed",
        size={
            "leads": args.leads,
            "events": args.events,
            "open_handoffs": args.open,
            "closed_handoffs": args.closed,
            "requests": args.requests,
            "smoke": args.smoke,
        },
        results=results,
        floor=floor,
        floor_note="a bare SELECT count(*) of the range's timelines on the mql_at index, "
        "through the same connection, as many times as each figure is asked for",
        ratio={
            "page_p95_vs_floor": results["page"]["p95_ms"] / max(floor["count_p95_ms"], 1e-3),
            "api_p95_vs_floor": results["api"]["p95_ms"] / max(floor["count_p95_ms"], 1e-3),
        },
        notes="target: the speed-to-lead queries p95 ≤ 300 ms at 1M leads / 100,000 open "
        "handoffs; pages through Django's test client (routing, middleware, view, template)",
    )


if __name__ == "__main__":
    main()
