# ruff: noqa: E501  (the seeding SQL reads better with one expression per line)
"""Inbox benchmark: the handoff lists (search, filters, sort, pages) at scale, on PostgreSQL.

    DATABASE_URL=postgres://... python bench/inbox_bench.py --leads 1000000 --open 100000
    DATABASE_URL=postgres://... python bench/inbox_bench.py --reuse   # the same seed again
    DATABASE_URL=postgres://... python bench/inbox_bench.py --smoke

Seeds through bench/seeding.py (INSERT … SELECT over generate_series, derived keys by the
app's own functions, the handoffs' search keys from their leads and companies in the same
INSERT, an audit against save() and the database's triggers), with the tables' plain
indexes (the handoffs' trigram index among them) dropped while the rows go in and built
once at the end: companies, N leads (five surnames, so a name search narrows to a
realistic share), K open handoffs (two teams, 20 reps, two timers each, 1 in 50 first
contacts overdue) and `--closed` decided ones, the stored next deadline as sla.services
keeps it, and the dashboard's KPI days. `--reuse` keeps a
seed of the same size (it takes minutes at 1M leads) and seeds afresh otherwise.

Then times, through Django's test client as a manager of both teams (and as one rep):
the inbox, the overdue list, search by name / kana / phone, filters, a page far down,
the API's list, and the SLA dashboard on the same rows; p50/p95/max in ms, printed as
JSON. Floors from the same run: a bare page + count of the open handoffs, and the
dashboard's bare count (bench/sla_bench.py's floor).

Deletes all leads and handoffs first: refuses on a database with leads it did not create
(source "bench:*") unless given --wipe.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadflow.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-not-secret")
os.environ.setdefault("CELERY_BROKER_URL", "memory://")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.report import emit, latency, p95  # noqa: E402
from bench.seeding import audit, indexes_deferred, insert_select  # noqa: E402
from bench.sla_bench import (  # noqa: E402 - the same tables, rows and refusal
    COMPANIES,
    handoff_of_transition,
    people,
    wipe,
)
from handoff.models import Handoff, HandoffStatus, Team  # noqa: E402
from leadflow.models import Company, Lead, StageTransition, User  # noqa: E402
from sla.kpis.days import kpi_days_rebuild, kpi_days_refresh_all  # noqa: E402
from sla.models import SlaTimer  # noqa: E402
from sla.services import next_due_values  # noqa: E402

settings.STORAGES = {
    **settings.STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
SURNAMES = "(ARRAY['山田','佐藤','鈴木','田中','高橋'])[1 + g %% 5]"
SURNAMES_KANA = "(ARRAY['ヤマダ','サトウ','スズキ','タナカ','タカハシ'])[1 + g %% 5]"


def seed(n_leads: int, n_open: int, n_closed: int) -> dict:
    n_handoffs = n_open + n_closed
    if n_handoffs > n_leads:
        sys.exit("--open + --closed must not exceed --leads (one handoff per lead).")
    reps, _manager = people()
    rep_ids = [rep.pk for rep in reps]
    team_ids = list(Team.objects.order_by("pk").values_list("pk", flat=True))
    now = timezone.now()
    n_companies = max(1, n_leads // 10)
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    with connection.cursor() as c:
        c.execute("SELECT setseed(0.42)")
    with indexes_deferred(Company, Lead, StageTransition, Handoff, SlaTimer) as rebuilt:
        # With a kana, so a company search has something to find besides the name.
        insert_select(
            Company,
            {**COMPANIES, "name_kana": "'ベンチ'"},
            "generate_series(1, %s) AS g",
            [now, now, n_companies],
        )
        seconds["companies"] = _lap(started)
        insert_select(
            Lead,
            {
                "email": "'lead' || g || '@bench.invalid'",
                "last_name": SURNAMES,
                "first_name": "'太郎' || g",
                "last_name_kana": SURNAMES_KANA,
                "first_name_kana": "'タロウ'",
                "company_id": "1 + g %% %s",
                "department": "''",
                "job_title": "''",
                "role": "''",
                "phone": "'03-' || lpad((g / 10000)::text, 4, '0')"
                " || '-' || lpad((g %% 10000)::text, 4, '0')",
                "source": "'bench:'"
                " || (ARRAY['web', 'seminar', 'hubspot', 'csv', 'partner'])[1 + g %% 5]",
                "stage": "CASE WHEN g <= %s THEN 'mql' WHEN g <= %s THEN 'sql' ELSE 'known' END",
                "stage_changed_at": "%s",
                "attributes": "'{}'::jsonb",
                # What the handoff table's trigger would set for the handoffs seeded below
                # (set here, so the trigger finds nothing to change).
                "has_handoff": "g <= %s",
                "created_at": "%s",
                "updated_at": "%s",
            },
            "generate_series(1, %s) AS g",
            [n_companies, n_open, n_handoffs, now, n_handoffs, now, now, n_leads],
        )
        seconds["leads"] = _lap(started)
        insert_select(
            StageTransition,
            {
                "lead_id": "g",
                "from_stage": "'known'",
                "to_stage": "'mql'",
                "occurred_at": "%s - random() * interval '30 days'",
                "actor_user_id": "NULL",
                "actor_system": "'scoring'",
                "reason": "''",
                "context": "'{}'::jsonb",
            },
            "generate_series(1, %s) AS g",
            [now, n_handoffs],
        )
        insert_select(
            Handoff,
            {
                **handoff_of_transition(team_ids, rep_ids),
                "status": "CASE WHEN t.lead_id <= %s THEN 'open' ELSE 'accepted' END",
                "created_at": "t.occurred_at",
                "assigned_at": "t.occurred_at",
                "first_contact_at": "NULL",
                "decided_at": "CASE WHEN t.lead_id > %s THEN t.occurred_at + interval '3 days' END",
                "rejection_comment": "''",
            },
            "leadflow_stagetransition t ORDER BY t.id",
            [n_open, n_open],
        )
        insert_select(
            SlaTimer,
            {
                "handoff_id": "h.id",
                "kind": "k.kind",
                "policy_id": "p.id",
                "status": "CASE WHEN h.status = 'open' THEN 'pending' ELSE 'met' END",
                "counts_business_time": "false",
                "started_at": "h.created_at",
                "due_at": "CASE WHEN h.status = 'open' AND k.kind = 'first_contact'"
                " AND h.id %% 50 = 0 THEN %s - interval '1 hour'"
                " ELSE %s + random() * interval '6 days' END",
                "met_at": "CASE WHEN h.status = 'open' THEN NULL ELSE h.decided_at END",
                "rep_id": "h.assigned_to_id",
                "rep_since": "h.created_at",
            },
            "handoff_handoff h CROSS JOIN (VALUES ('first_contact'), ('verdict')) AS k(kind)"
            " JOIN sla_timerpolicy p ON p.kind = k.kind",
            [now, now],
        )
        seconds["handoffs_and_timers"] = _lap(started)
        # The lists' stored urgency, as sla.services keeps it after every timer change.
        Handoff.objects.update(**next_due_values())
        seconds["next_due"] = _lap(started)
    seconds["indexes"] = _lap(started)
    kpi_days_rebuild()
    kpi_days_refresh_all()
    seconds["kpi_days"] = _lap(started)
    with connection.cursor() as c:
        # As autovacuum leaves a table at rest: statistics, and the visibility map that
        # lets an index-only scan skip the rows (the source filter's).
        c.execute("VACUUM ANALYZE")
    audited = {model._meta.db_table: audit(model) for model in (Company, Lead, Handoff)}
    return {
        "seed_seconds": round(time.perf_counter() - started, 1),
        "seed_laps": seconds,
        "indexes_rebuilt": len(rebuilt),
        "seed_rows_audited": audited,
    }


def _lap(started: float) -> float:
    return round(time.perf_counter() - started, 1)


def seeded_size() -> tuple[int, int, int]:
    return (
        Lead.objects.count(),
        Handoff.objects.filter(status=HandoffStatus.OPEN).count(),
        Handoff.objects.exclude(status=HandoffStatus.OPEN).count(),
    )


def timed(client: Client, url: str, requests: int) -> dict:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)  # warm-up
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return {"url": url, **latency(samples)}


CASES = {
    "manager_inbox": "/inbox/",
    "overdue_list": "/inbox/list/?sla=overdue&view=table",
    "search_name": "/inbox/list/?q=%E4%BD%90%E8%97%A4%E5%A4%AA%E9%83%8E12345&view=table",  # 佐藤太郎12345
    "search_kana": "/inbox/list/?q=%E3%81%95%E3%81%A8%E3%81%86%E3%81%9F%E3%82%8D%E3%81%86&view=table",  # さとうたろう
    "search_phone": "/inbox/list/?q=%EF%BC%90%EF%BC%93%EF%BC%90%EF%BC%90%EF%BC%90%EF%BC%91%EF%BC%92%EF%BC%93&view=table",  # ０３０００１２３
    "filter_status_source_team": "/inbox/list/?status=open&source=bench:web&view=table&team={team}",
    "filter_due_today_sorted_newest": "/inbox/list/?sla=due_today&sort=newest&view=table",
    "page_100": "/inbox/list/?status=open&sort=newest&view=table&page=100",
    "api_search": "/api/v1/handoffs/?q=%E3%81%95%E3%81%A8%E3%81%86&status=open",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--open", type=int, default=100_000)
    parser.add_argument("--closed", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--smoke", action="store_true", help="20,000 leads, 2,000 open, 5 requests")
    parser.add_argument("--wipe", action="store_true")
    parser.add_argument(
        "--reuse", action="store_true", help="keep a seed of the same size if there is one"
    )
    args = parser.parse_args()
    if args.smoke:
        args.leads, args.open, args.closed, args.requests = 20_000, 2_000, 500, 5
    if connection.vendor != "postgresql":
        sys.exit("The inbox bench needs PostgreSQL: set DATABASE_URL=postgres://...")
    call_command("migrate", verbosity=0)
    size = (args.leads, args.open, args.closed)
    if args.reuse and seeded_size() == size:
        seeded: dict = {"seed_reused": True}
    else:
        wipe(args.wipe)
        seeded = {"seed_reused": False, **seed(*size)}
    manager = User.objects.get(username="bench-manager")
    rep = User.objects.get(username="bench-rep0")
    team = Team.objects.order_by("pk").values_list("pk", flat=True).first()
    as_manager, as_rep = Client(), Client()
    as_manager.force_login(manager)
    as_rep.force_login(rep)
    results: dict = {
        **seeded,
        "rep_inbox": timed(as_rep, "/inbox/?q=%E3%81%95%E3%81%A8%E3%81%86", args.requests),
    }
    for name, url in CASES.items():
        results[name] = timed(as_manager, url.format(team=team), args.requests)
    results["dashboard"] = timed(as_manager, "/dashboard/", args.requests)
    floor = {**time_floor(args.requests), **dashboard_floor(args.requests)}
    searches = [name for name in CASES if name.startswith(("search", "filter", "page", "api"))]
    list_floor = max(floor["page_and_count_p95_ms"], 1e-3)
    emit(
        "inbox",
        size={
            "leads": args.leads,
            "open_handoffs": args.open,
            "closed_handoffs": args.closed,
            "requests": args.requests,
            "smoke": args.smoke,
        },
        results=results,
        floor=floor,
        floor_note="lists: a bare SELECT of one page (25) of open handoffs, newest first, and a "
        "bare count(*) of the open handoffs, through the same connection, per request; "
        "dashboard: a bare count(*) of the handoffs of its 4-week window (as bench/sla_bench.py)",
        ratio={
            "manager_inbox_p95_vs_floor": results["manager_inbox"]["p95_ms"] / list_floor,
            "worst_search_p95_vs_floor": max(results[name]["p95_ms"] for name in searches)
            / list_floor,
            "dashboard_p95_vs_floor": results["dashboard"]["p95_ms"]
            / max(floor["dashboard_p95_ms"], 1e-3),
        },
        notes="target: search and filter p95 ≤ 200 ms at 1M leads / 100,000 open handoffs; "
        "pages through Django's test client",
    )


def time_floor(requests: int) -> dict:
    samples = []
    for _ in range(requests + 1):
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM handoff_handoff WHERE status = 'open'"
                " ORDER BY created_at DESC, id DESC LIMIT 25"
            )
            cursor.fetchall()
            cursor.execute("SELECT count(*) FROM handoff_handoff WHERE status = 'open'")
            cursor.fetchone()
        samples.append((time.perf_counter() - started) * 1000)
    return {"page_and_count_p95_ms": round(p95(samples[1:]), 1)}  # the first warms up


def dashboard_floor(requests: int) -> dict:
    now = timezone.now()
    samples = []
    with connection.cursor() as cursor:
        for _ in range(requests + 1):
            started = time.perf_counter()
            cursor.execute(
                "SELECT count(*) FROM handoff_handoff WHERE created_at >= %s AND created_at < %s",
                [now - dt.timedelta(days=28), now],
            )
            cursor.fetchone()
            samples.append((time.perf_counter() - started) * 1000)
    return {"dashboard_p95_ms": round(p95(samples[1:]), 1)}


if __name__ == "__main__":
    main()
