"""SLA benchmark: the breach sweep and the managers' dashboard on PostgreSQL.

    DATABASE_URL=postgres://... python bench/sla_bench.py \
        --leads 200000 --events 1000000 --open 100000 --closed 50000 --due 1000

Seeds with bulk SQL (generate_series): companies, N leads, M engagement events, K open
handoffs with their two SLA timers each (`--due` of them already past due, the rest due
later) and `--closed` decided handoffs of the last 90 days with met timers. Then times:

- the sweep (`sla.services.timers_sweep`, one batch as large as `--due`) claiming the due
  timers among all the open ones, repeated `--sweeps` times (the due timers are put back
  to pending between runs);
- the dashboard's per-day sums (`sla.kpis.days`): recomputing every seeded day from scratch
  (what the nightly rebuild and an upgrade do), and the per-minute refresh when the five
  busiest days (all the open handoffs) are stale;
- the dashboard page `/dashboard/` (last 4 weeks, a manager of both teams) and the
  summary API, `--requests` times each through Django's test client; p50/p95/max.

Prints JSON. Celery calls go to an in-memory broker unless CELERY_BROKER_URL is set.
It deletes all leads, handoffs and timers first, so it refuses to run on a database
holding leads it did not create (source "bench:*") unless given --wipe.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadflow.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-not-secret")
os.environ.setdefault("CELERY_BROKER_URL", "memory://")
# Plain http to the local server: no https redirect, no secure-only cookies.
os.environ.setdefault("LEADFLOW_SECURE_COOKIES", "0")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.report import emit, latency, p95  # noqa: E402
from bench.seeding import audit, handoff_search_key_sql, insert_select  # noqa: E402
from handoff.models import Activity, Handoff, RejectionReason, Team, TeamMembership  # noqa: E402
from leadflow.models import Company, EngagementEvent, Lead, StageTransition, User  # noqa: E402
from leadflow.roles import SALES_MANAGER, SALES_REP  # noqa: E402
from sla.kpis.days import kpi_days_mark_stale, kpi_days_rebuild, kpi_days_refresh_all  # noqa: E402
from sla.models import KpiStaleDay, SlaTimer, TimerStatus  # noqa: E402
from sla.services import next_due_values, timers_sweep  # noqa: E402

# No collectstatic for a bench: serve from the folders, without the manifest.
settings.STORAGES = {
    **settings.STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

TABLES = [
    "sla_slatimer",
    "sla_kpihandoffday",
    "sla_kpitimerday",
    "sla_kpistaleday",
    "sla_speedhopday",
    "sla_speedrephopday",
    "sla_speeddelayday",
    "sla_speedarrivalhour",
    "handoff_timelinestaleday",
    "sla_digestdelivery",
    "handoff_activity",
    "handoff_assignment",
    "handoff_handoff",
    "handoff_teammembership",
    "handoff_team_managers",
    "handoff_team",
    "leadflow_stagetransition",
    "leadflow_engagementevent",
    "leadflow_leadexternalid",
    "leadflow_lead",
    "leadflow_company",
]
REPS = 20


def wipe(force: bool) -> None:
    if not force and Lead.objects.exclude(source__startswith="bench:").exists():
        sys.exit("The database has leads the bench did not create; pass --wipe to delete them.")
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
    User.objects.filter(username__startswith="bench-").delete()


def people() -> tuple[list[User], User]:
    teams = [Team.objects.create(name=f"bench-{name}") for name in ("east", "west")]
    reps = []
    for number in range(REPS):
        rep = User.objects.create_user(f"bench-rep{number}", f"rep{number}@bench.invalid")
        rep.groups.add(Group.objects.get(name=SALES_REP))
        TeamMembership.objects.create(team=teams[number % 2], rep=rep)
        reps.append(rep)
    manager = User.objects.create_user("bench-manager", "manager@bench.invalid")
    for team in teams:
        team.managers.add(manager)
    manager.groups.add(Group.objects.get(name=SALES_MANAGER))
    return reps, manager


# The seeded companies, numbered by g (params: created_at, updated_at).
COMPANIES = {
    "name": "'ベンチ株式会社' || g",
    "name_kana": "''",
    "domain": "'bench' || g || '.invalid'",
    "employee_count": "10 + g %% 5000",
    "revenue_band": "''",
    "industry": "'manufacturing'",
    "prefecture": "'東京都'",
    "created_at": "%s",
    "updated_at": "%s",
}


def handoff_of_transition(team_ids: list[int], rep_ids: list[int]) -> dict[str, str]:
    """A seeded handoff's lead, MQL transition (`t`), team and rep: alternating teams,
    the reps in turn; and its search key, as the database keeps it."""
    return {
        "lead_id": "t.lead_id",
        "search_key": handoff_search_key_sql("t.lead_id"),
        "mql_transition_id": "t.id",
        "team_id": f"(ARRAY{team_ids})[1 + t.lead_id %% 2]",
        "assigned_to_id": f"(ARRAY{rep_ids})[1 + t.lead_id %% {len(rep_ids)}]",
    }


def seed(n_leads: int, n_events: int, n_open: int, n_closed: int, n_due: int) -> dict:
    reps, manager = people()
    rep_ids = [rep.pk for rep in reps]
    team_ids = list(Team.objects.order_by("pk").values_list("pk", flat=True))
    reasons = dict(RejectionReason.objects.values_list("code", "pk"))
    now = timezone.now()
    n_handoffs = n_open + n_closed
    if n_handoffs > n_leads:
        sys.exit("--open + --closed must not exceed --leads (one handoff per lead).")
    started = time.perf_counter()
    n_companies = max(1, n_leads // 10)
    with connection.cursor() as c:
        c.execute("SELECT setseed(0.42)")
    insert_select(Company, COMPANIES, "generate_series(1, %s) AS g", [now, now, n_companies])
    insert_select(
        Lead,
        {
            "email": "'lead' || g || '@bench.invalid'",
            "last_name": "'山田'",
            "first_name": "'太郎' || g",
            "last_name_kana": "''",
            "first_name_kana": "''",
            "company_id": "1 + g %% %s",
            "department": "''",
            "job_title": "CASE WHEN g %% 7 = 0 THEN '' ELSE '部長' END",
            "role": "''",
            "phone": "CASE WHEN g %% 11 = 0 THEN ''"
            " ELSE '03-0000-' || lpad((g %% 10000)::text, 4, '0') END",
            "source": "'bench:'"
            " || (ARRAY['web', 'seminar', 'hubspot', 'csv', 'partner'])[1 + g %% 5]",
            "stage": "CASE WHEN g <= %s THEN 'mql'"
            " WHEN g <= %s THEN (ARRAY['sql', 'recycled'])[1 + g %% 2] ELSE 'known' END",
            "stage_changed_at": "%s",
            "attributes": "'{}'::jsonb",
            "created_at": "%s",
            "updated_at": "%s",
        },
        "generate_series(1, %s) AS g",
        [n_companies, n_open, n_handoffs, now, now, now, n_leads],
    )
    insert_select(
        EngagementEvent,
        {
            "lead_id": "1 + (random() * (%s - 1))::int",
            "kind": "(ARRAY['page_view', 'email_open', 'email_click', 'document_download',"
            " 'pricing_page_view', 'seminar_attendance'])[1 + g %% 6]",
            "occurred_at": "%s - random() * interval '180 days'",
            "properties": "'{}'::jsonb",
            "source": "'bench'",
            "external_id": "''",
            "created_at": "%s",
        },
        "generate_series(1, %s) AS g",
        [n_leads, now, now, n_events],
    )
    # The MQL transitions: open handoffs came in during the last 5 days, decided ones
    # during the last 90; 1 in 10 MQLs was moved by hand (not the scoring policy).
    insert_select(
        StageTransition,
        {
            "lead_id": "g",
            "from_stage": "'known'",
            "to_stage": "'mql'",
            "occurred_at": "CASE WHEN g <= %s THEN %s - random() * interval '5 days'"
            " ELSE %s - interval '6 days' - random() * interval '84 days' END",
            "actor_user_id": "CASE WHEN g %% 10 = 0 THEN %s END",
            "actor_system": "CASE WHEN g %% 10 = 0 THEN '' ELSE 'scoring' END",
            "reason": "''",
            "context": "'{}'::jsonb",
        },
        "generate_series(1, %s) AS g",
        [n_open, now, now, manager.pk, n_handoffs],
    )
    rejected = f"""(ARRAY[{reasons["not_reachable"]}, {reasons["no_budget"]},
                   {reasons["timing"]}])[1 + t.lead_id %% 3]"""
    insert_select(
        Handoff,
        {
            **handoff_of_transition(team_ids, rep_ids),
            "status": "CASE WHEN t.lead_id <= %s THEN 'open'"
            " WHEN t.lead_id %% 2 = 0 THEN 'accepted' ELSE 'rejected' END",
            "created_at": "t.occurred_at",
            "assigned_at": "t.occurred_at",
            "first_contact_at": "CASE WHEN t.lead_id <= %s AND t.lead_id %% 3 <> 0 THEN NULL"
            " ELSE t.occurred_at + random() * interval '40 hours' END",
            "decided_at": "CASE WHEN t.lead_id > %s THEN t.occurred_at + interval '3 days' END",
            "decided_by_id": "NULL",
            "bant_budget": "NULL",
            "bant_authority": "NULL",
            "bant_need": "NULL",
            "bant_timeline": "NULL",
            "rejection_reason_id": f"CASE WHEN t.lead_id > %s AND t.lead_id %% 2 = 1"
            f" THEN {rejected} END",
            "rejection_comment": "CASE WHEN t.lead_id > %s AND t.lead_id %% 2 = 1"
            " THEN 'bench' ELSE '' END",
        },
        "leadflow_stagetransition t WHERE t.to_stage = 'mql'",
        [n_open, n_open, n_open, n_open, n_open],
    )
    # Two timers per handoff. Open: pending, `n_due` first-contact timers already due,
    # the others due within 24 h; verdicts due in days. Decided: met.
    insert_select(
        SlaTimer,
        {
            "handoff_id": "h.id",
            "kind": "k.kind",
            "policy_id": "p.id",
            "status": "CASE WHEN h.status <> 'open' THEN 'met'"
            " WHEN k.kind = 'first_contact' AND h.first_contact_at IS NOT NULL"
            " THEN 'met' ELSE 'pending' END",
            "counts_business_time": "p.counts_business_time",
            "started_at": "h.created_at",
            "due_at": "CASE WHEN k.kind = 'first_contact' AND h.status = 'open'"
            " AND h.first_contact_at IS NULL"
            " THEN %s + interval '1 minute' + random() * interval '24 hours'"
            " WHEN k.kind = 'first_contact' THEN h.created_at + interval '24 hours'"
            " WHEN h.status = 'open' THEN %s + interval '1 day' + random() * interval '6 days'"
            " ELSE h.created_at + interval '7 days' END",
            "remind_at": "NULL",
            "reminded_at": "NULL",
            "met_at": "CASE WHEN k.kind = 'first_contact' THEN h.first_contact_at"
            " ELSE h.decided_at END",
            "breached_at": "NULL",
            "escalated_at": "NULL",
            "rep_id": "h.assigned_to_id",
            "rep_since": "h.created_at",
        },
        "handoff_handoff h CROSS JOIN (VALUES ('first_contact'), ('verdict')) AS k(kind)"
        " JOIN sla_timerpolicy p ON p.kind = k.kind",
        [now, now],
    )
    with connection.cursor() as c:
        c.execute(
            """UPDATE sla_slatimer SET due_at = %s - interval '1 minute'
               WHERE id IN (SELECT id FROM sla_slatimer
                            WHERE kind = 'first_contact' AND status = 'pending'
                            ORDER BY id LIMIT %s)""",
            [now, n_due],
        )
    # The lists' stored urgency, as sla.services keeps it after every timer change.
    Handoff.objects.update(**next_due_values())
    insert_select(
        Activity,
        {
            "handoff_id": "id",
            "kind": "'call'",
            "outcome": "'reached'",
            "note": "''",
            "by_id": "assigned_to_id",
            "at": "first_contact_at",
            "created_at": "first_contact_at",
        },
        "handoff_handoff WHERE first_contact_at IS NOT NULL",
    )
    with connection.cursor() as c:
        c.execute("ANALYZE")
    audited = {
        model._meta.db_table: audit(model)
        for model in (Company, Lead, EngagementEvent, StageTransition, Handoff, SlaTimer, Activity)
    }
    due = SlaTimer.objects.filter(status=TimerStatus.PENDING, due_at__lte=now).count()
    return {
        "seed_seconds": round(time.perf_counter() - started, 1),
        "seed_rows_audited": audited,
        "due_timers": due,
        "open_handoffs": n_open,
        "pending_timers": SlaTimer.objects.filter(status=TimerStatus.PENDING).count(),
        "manager": manager,
    }


def time_sweeps(times: int, batch: int, now: dt.datetime) -> dict:
    due_ids = list(
        SlaTimer.objects.filter(status=TimerStatus.PENDING, due_at__lte=now).values_list(
            "pk", flat=True
        )
    )
    durations, breached = [], []
    for _ in range(times):
        SlaTimer.objects.filter(pk__in=due_ids).update(
            status=TimerStatus.PENDING, breached_at=None, escalated_at=None
        )
        connection.cursor().execute("ANALYZE sla_slatimer")
        started = time.perf_counter()
        result = timers_sweep(now=now, batch_size=batch)
        durations.append(time.perf_counter() - started)
        breached.append(len(result.breached))
    return {
        "sweep_seconds": [round(d, 3) for d in durations],
        "sweep_seconds_median": round(statistics.median(durations), 3),
        "breached_per_sweep": breached,
    }


def _estimated_rows(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = %s", [table])
        return int(cursor.fetchone()[0])


def time_kpi_refresh() -> dict:
    KpiStaleDay.objects.all().delete()
    marked = kpi_days_rebuild()
    started = time.perf_counter()
    kpi_days_refresh_all()
    rebuild = time.perf_counter() - started
    today = timezone.localdate()
    busy = [today - dt.timedelta(days=n) for n in range(6)]
    kpi_days_mark_stale(moments=busy)
    started = time.perf_counter()
    kpi_days_refresh_all()
    busy_refresh = time.perf_counter() - started
    return {
        "kpi_rebuild_days": marked,
        "kpi_rebuild_seconds": round(rebuild, 2),
        "kpi_refresh_busiest_6_days_seconds": round(busy_refresh, 2),
    }


def time_pages(manager: User, requests: int) -> dict:
    client = Client()
    client.force_login(manager)
    out = {}
    for name, url in (
        ("dashboard", "/dashboard/"),
        ("api_summary", "/api/v1/metrics/summary/"),
        ("api_reps", "/api/v1/metrics/reps/"),
    ):
        assert client.get(url).status_code == 200  # warm-up
        samples = []
        for _ in range(requests):
            started = time.perf_counter()
            response = client.get(url)
            samples.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.status_code
        out[name] = latency(samples)
    return out


def time_floors(requests: int, batch: int, now: dt.datetime) -> dict:
    """What the sweep and the dashboard cannot beat, on the same rows: the sweep's floor
    is one bare UPDATE claiming one batch of the due pending timers, as large as the
    sweep's (rolled back); the dashboard's
    is one bare SELECT count(*) over the handoffs of its 4-week window, timed as often
    as the page and through the same connection (no HTTP, no template, no KPI sums).
    `now` is the sweeps' own: timers seeded due later may have come due since."""
    with transaction.atomic(), connection.cursor() as cursor:
        # The timed sweeps left the due timers breached: pending again, as they were seeded.
        cursor.execute(
            "UPDATE sla_slatimer SET status = 'pending', breached_at = NULL, escalated_at = NULL"
            " WHERE status = 'breached' AND due_at <= %s",
            [now],
        )
        started = time.perf_counter()
        cursor.execute(
            "UPDATE sla_slatimer SET status = 'breached', breached_at = %s"
            " WHERE id IN (SELECT id FROM sla_slatimer WHERE status = 'pending'"
            " AND due_at <= %s ORDER BY due_at LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id",
            [now, now, batch],
        )
        claimed = len(cursor.fetchall())
        sweep = time.perf_counter() - started
        transaction.set_rollback(True)
    samples = []
    with connection.cursor() as cursor:
        for _ in range(requests + 1):  # the first one warms the cache, as the page's does
            started = time.perf_counter()
            cursor.execute(
                "SELECT count(*) FROM handoff_handoff WHERE created_at >= %s AND created_at < %s",
                [now - dt.timedelta(days=28), now],
            )
            rows = cursor.fetchone()[0]
            samples.append((time.perf_counter() - started) * 1000)
    samples = sorted(samples[1:])
    return {
        "sweep_seconds": round(sweep, 4),
        "sweep_timers_claimed": claimed,
        "dashboard_p95_ms": round(p95(samples), 2),
        "dashboard_window_handoffs": rows,
    }


SMOKE = {
    "leads": 2_000,
    "events": 5_000,
    "open": 500,
    "closed": 300,
    "due": 50,
    "sweeps": 1,
    "requests": 5,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leads", type=int, default=200_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--open", type=int, default=100_000)
    parser.add_argument("--closed", type=int, default=50_000)
    parser.add_argument("--due", type=int, default=1_000)
    parser.add_argument("--sweeps", type=int, default=3)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--smoke", action="store_true", help=f"a few seconds: {SMOKE}")
    parser.add_argument("--wipe", action="store_true")
    parser.add_argument("--keep", action="store_true", help="reuse the seeded data")
    args = parser.parse_args()
    if args.smoke:
        vars(args).update(SMOKE)
    if connection.vendor != "postgresql":
        sys.exit("The SLA bench needs PostgreSQL: set DATABASE_URL=postgres://...")
    call_command("migrate", verbosity=0)
    if args.keep:
        manager = User.objects.get(username="bench-manager")
        seeded: dict = {"manager": manager}
    else:
        wipe(args.wipe)
        seeded = seed(args.leads, args.events, args.open, args.closed, args.due)
    manager = seeded.pop("manager")
    # One moment for the sweeps and their floor, so both claim the same due timers.
    now = timezone.now()
    sweeps = time_sweeps(args.sweeps, batch=max(args.due, 1), now=now)
    pages = time_pages(manager, args.requests)
    results = {**seeded, **sweeps, **time_kpi_refresh(), **pages}
    floor = time_floors(args.requests, max(args.due, 1), now)
    emit(
        "sla",
        size={
            "leads": Lead.objects.count() if args.keep else args.leads,
            "events": _estimated_rows("leadflow_engagementevent") if args.keep else args.events,
            "open_handoffs": args.open,
            "closed_handoffs": args.closed,
            "due_timers": args.due,
            "requests": args.requests,
            "smoke": args.smoke,
        },
        results=results,
        floor=floor,
        floor_note="sweep: one bare UPDATE … RETURNING claiming a batch of due pending timers "
        "as large as the sweep's (rolled back); dashboard: a bare SELECT count(*) over the "
        "handoffs of the page's 4-week window through the same connection, as many times as "
        "the page is asked for",
        ratio={
            "sweep_vs_floor": sweeps["sweep_seconds_median"] / max(floor["sweep_seconds"], 1e-6),
            "dashboard_p95_vs_floor": pages["dashboard"]["p95_ms"]
            / max(floor["dashboard_p95_ms"], 1e-3),
        },
        notes="targets: sweep ≤ 1 s, dashboard p95 ≤ 300 ms; pages go through Django's test "
        "client (the URL routing, middleware and view, without an HTTP server)",
    )


if __name__ == "__main__":
    main()
