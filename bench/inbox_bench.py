# ruff: noqa: E501  (the seeding SQL reads better with one expression per line)
"""Inbox benchmark: the handoff lists (search, filters, sort, pages) at scale, on PostgreSQL.

    DATABASE_URL=postgres://... python bench/inbox_bench.py --leads 1000000 --open 100000
    DATABASE_URL=postgres://... python bench/inbox_bench.py --smoke

Seeds with bulk SQL (generate_series; self-contained for now, the shared seeding of
bench/seeding.py will replace it): companies, N leads with their search keys as
leadflow.normalize makes them, K open handoffs (two teams, 20 reps, two timers each, 1 in
50 first contacts overdue) and `--closed` decided ones. Then times, through Django's test
client as a manager of both teams (and as one rep): the inbox, the overdue list, search by
name / kana / phone, filters and a page far down; p50/p95/max in ms, printed as JSON.

Deletes all leads and handoffs first: refuses on a database with leads it did not create
(source "bench:*") unless given --wipe.
"""

from __future__ import annotations

import argparse
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
from django.contrib.auth.models import Group  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.report import emit, latency, p95  # noqa: E402
from bench.sla_bench import wipe  # noqa: E402 - the same tables, the same refusal
from handoff.models import Team, TeamMembership  # noqa: E402
from leadflow.models import User  # noqa: E402
from leadflow.roles import SALES_MANAGER, SALES_REP  # noqa: E402

settings.STORAGES = {
    **settings.STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
REPS = 20


def seed(n_leads: int, n_open: int, n_closed: int) -> tuple[User, User, float]:
    teams = [Team.objects.create(name=f"bench-{name}") for name in ("east", "west")]
    reps = []
    for number in range(REPS):
        rep = User.objects.create_user(f"bench-rep{number}", f"rep{number}@bench.invalid")
        rep.groups.add(Group.objects.get(name=SALES_REP))
        TeamMembership.objects.create(team=teams[number % 2], rep=rep)
        reps.append(rep)
    manager = User.objects.create_user("bench-manager", "manager@bench.invalid")
    manager.groups.add(Group.objects.get(name=SALES_MANAGER))
    for team in teams:
        team.managers.add(manager)
    team_ids = [t.pk for t in teams]
    rep_ids = [r.pk for r in reps]
    now = timezone.now()
    started = time.perf_counter()
    with connection.cursor() as c:
        c.execute("SELECT setseed(0.42)")
        c.execute(
            """INSERT INTO leadflow_company (name, name_kana, domain, employee_count,
                   revenue_band, industry, prefecture, region, match_key, search_key,
                   created_at, updated_at)
               SELECT 'ベンチ株式会社' || g, 'ベンチ', 'bench' || g || '.invalid', 10, '',
                      'manufacturing', '東京都', 'kanto', 'ベンチ' || g,
                      'べんち株式会社' || g || ' べんち', %s, %s
               FROM generate_series(1, %s) AS g""",
            [now, now, max(1, n_leads // 10)],
        )
        # Names vary (山田/佐藤/鈴木/田中/高橋 × a numbered given name) so that a search
        # narrows to a realistic share; the keys are what lead_search_key makes of them.
        c.execute(
            """INSERT INTO leadflow_lead (email, last_name, first_name, last_name_kana,
                   first_name_kana, company_id, department, job_title, role, phone, source,
                   stage, stage_changed_at, attributes, name_key, phone_key, search_key,
                   created_at, updated_at)
               SELECT 'lead' || g || '@bench.invalid', s.kanji, '太郎' || g, s.kana, 'タロウ',
                      1 + g %% %s, '', '', '',
                      '03-' || lpad((g / 10000)::text, 4, '0') || '-' || lpad((g %% 10000)::text, 4, '0'),
                      'bench:' || (ARRAY['web', 'seminar', 'hubspot', 'csv', 'partner'])[1 + g %% 5],
                      CASE WHEN g <= %s THEN 'mql' ELSE 'known' END, %s, '{}'::jsonb, '', '',
                      s.kanji || '太郎' || g || ' ' || s.hira || 'たろう lead' || g
                        || '@benchinvalid 03' || lpad((g / 10000)::text, 4, '0')
                        || lpad((g %% 10000)::text, 4, '0'),
                      %s, %s
               FROM generate_series(1, %s) AS g
               CROSS JOIN LATERAL (SELECT (ARRAY['山田','佐藤','鈴木','田中','高橋'])[1 + g %% 5] AS kanji,
                                          (ARRAY['ヤマダ','サトウ','スズキ','タナカ','タカハシ'])[1 + g %% 5] AS kana,
                                          (ARRAY['やまだ','さとう','すずき','たなか','たかはし'])[1 + g %% 5] AS hira) s""",
            [max(1, n_leads // 10), n_open + n_closed, now, now, now, n_leads],
        )
        c.execute(
            """INSERT INTO leadflow_stagetransition (lead_id, from_stage, to_stage, occurred_at,
                   actor_user_id, actor_system, reason, context)
               SELECT g, 'known', 'mql', %s - random() * interval '30 days', NULL, 'scoring',
                      '', '{}'::jsonb
               FROM generate_series(1, %s) AS g""",
            [now, n_open + n_closed],
        )
        c.execute(
            f"""INSERT INTO handoff_handoff (lead_id, mql_transition_id, team_id, assigned_to_id,
                    status, created_at, assigned_at, first_contact_at, decided_at, rejection_comment)
                SELECT t.lead_id, t.id, (ARRAY{team_ids})[1 + t.lead_id %% 2],
                       (ARRAY{rep_ids})[1 + t.lead_id %% {REPS}],
                       CASE WHEN t.lead_id <= %s THEN 'open' ELSE 'accepted' END,
                       t.occurred_at, t.occurred_at, NULL,
                       CASE WHEN t.lead_id > %s THEN t.occurred_at + interval '3 days' END, ''
                FROM leadflow_stagetransition t""",
            [n_open, n_open],
        )
        c.execute(
            """INSERT INTO sla_slatimer (handoff_id, kind, policy_id, status,
                   counts_business_time, started_at, due_at, met_at, rep_id, rep_since)
               SELECT h.id, k.kind, p.id, CASE WHEN h.status = 'open' THEN 'pending' ELSE 'met' END,
                      false, h.created_at,
                      CASE WHEN h.status = 'open' AND k.kind = 'first_contact' AND h.id %% 50 = 0
                           THEN %s - interval '1 hour'
                           ELSE %s + random() * interval '6 days' END,
                      CASE WHEN h.status = 'open' THEN NULL ELSE h.decided_at END,
                      h.assigned_to_id, h.created_at
               FROM handoff_handoff h
               CROSS JOIN (VALUES ('first_contact'), ('verdict')) AS k(kind)
               JOIN sla_timerpolicy p ON p.kind = k.kind""",
            [now, now],
        )
        c.execute("ANALYZE")
    return manager, reps[0], round(time.perf_counter() - started, 1)


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
    args = parser.parse_args()
    if args.smoke:
        args.leads, args.open, args.closed, args.requests = 20_000, 2_000, 500, 5
    if connection.vendor != "postgresql":
        sys.exit("The inbox bench needs PostgreSQL: set DATABASE_URL=postgres://...")
    call_command("migrate", verbosity=0)
    wipe(args.wipe)
    manager, rep, seconds = seed(args.leads, args.open, args.closed)
    team = Team.objects.order_by("pk").values_list("pk", flat=True).first()
    as_manager, as_rep = Client(), Client()
    as_manager.force_login(manager)
    as_rep.force_login(rep)
    results: dict = {
        "seed_seconds": seconds,
        "rep_inbox": timed(as_rep, "/inbox/?q=%E3%81%95%E3%81%A8%E3%81%86", args.requests),
    }
    for name, url in CASES.items():
        results[name] = timed(as_manager, url.format(team=team), args.requests)
    floor = time_floor(args.requests)
    searches = [name for name in results if name.startswith(("search", "filter", "page", "api"))]
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
        floor_note="a bare SELECT of one page (25) of open handoffs, newest first, and a bare "
        "count(*) of the open handoffs, through the same connection, per request",
        ratio={
            "manager_inbox_p95_vs_floor": results["manager_inbox"]["p95_ms"]
            / max(floor["page_and_count_p95_ms"], 1e-3),
            "worst_search_p95_vs_floor": max(results[name]["p95_ms"] for name in searches)
            / max(floor["page_and_count_p95_ms"], 1e-3),
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


if __name__ == "__main__":
    main()
