"""Load a believable demo: users for every role, Japanese companies, leads in every stage.

Idempotent: users, companies, leads and events have stable keys; running it again
changes nothing that is already there.
"""

from __future__ import annotations

import datetime as dt
import random

from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from handoff.activities import activity_log
from handoff.models import Handoff, RejectionReason, RoutingRule, Team, TeamMembership
from handoff.verdicts import handoff_accept, handoff_reject
from leadflow.demo import data, history
from leadflow.demo.integrations import load_integrations
from leadflow.lifecycle import lead_mark_lost, lead_mark_opportunity, lead_mark_won, lead_transition
from leadflow.models import Company, EngagementEvent, Lead, LeadExternalId, Stage, User
from scoring.models import ModelStatus, ScoringModel
from scoring.services import rescore_run_execute, rescore_run_start
from sla.kpis.days import kpi_days_refresh_all

# How many leads end in each stage, and the path that leads there.
LOST = "lost"  # a path step: the SQL is lost and goes back to nurture

PLAN: list[tuple[str, int, list[str]]] = [
    (Stage.ANONYMOUS, 5, []),
    (Stage.KNOWN, 45, []),
    (Stage.MQL, 16, [Stage.MQL]),
    (Stage.SQL, 10, [Stage.MQL, Stage.SQL]),
    (Stage.OPPORTUNITY, 8, [Stage.MQL, Stage.SQL, Stage.OPPORTUNITY]),
    (Stage.CUSTOMER, 7, [Stage.MQL, Stage.SQL, Stage.OPPORTUNITY, Stage.CUSTOMER]),
    (Stage.ADVOCATE, 3, [Stage.MQL, Stage.SQL, Stage.OPPORTUNITY, Stage.CUSTOMER, Stage.ADVOCATE]),
    (Stage.RECYCLED, 9, [Stage.MQL, Stage.RECYCLED]),
    (Stage.RECYCLED, 3, [Stage.MQL, Stage.SQL, LOST]),
    (Stage.DISQUALIFIED, 4, [Stage.DISQUALIFIED]),
]


class Command(BaseCommand):
    help = (
        "Load demo users, companies, leads and engagement history, inbound sources and an "
        "SFA webhook with its outbox (idempotent)."
    )

    def handle(self, *args, **options) -> None:
        rng = random.Random(2026)  # same demo every time
        with transaction.atomic():
            users = self._users()
            self._teams(users)
            companies = self._companies()
            created = self._leads(rng, companies, users)
            created += self._past(rng, companies, users)
        if created:
            # Score every lead from its history under the published model, as a rescore
            # after an import would (known leads that qualify become MQLs and get routed).
            model = ScoringModel.objects.get(status=ModelStatus.PUBLISHED)
            run = rescore_run_start(model=model, enqueue=False)
            rescore_run_execute(run_id=run.pk)
        # After the scoring: the webhooks' events land on scored leads, as they would.
        integrations = load_integrations()
        # The dashboard's per-day sums now, not at the worker's first beat.
        kpi_days_refresh_all()
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data ready ({created} new leads, {integrations.sources} new sources "
                f"with {integrations.inbound_events} inbound events, "
                f"{integrations.outbox_messages} outbox messages)."
            )
        )

    def _users(self) -> dict[str, User]:
        users = {}
        for username, last, first, role, is_staff in data.USERS:
            user, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "last_name": last,
                    "first_name": first,
                    "email": f"{username}@leadflow-demo.example.jp",
                    "is_staff": is_staff,
                    "is_superuser": role is None,
                },
            )
            if created:
                user.set_password(data.DEMO_PASSWORD)
                user.save(update_fields=["password"])
            elif (username, user.last_name, user.first_name) == ("admin", "管理", "者"):
                # Demos loaded before the admin got one name: the admin said "ようこそ 者".
                user.last_name, user.first_name = last, first
                user.save(update_fields=["last_name", "first_name"])
            if role:
                user.groups.add(Group.objects.get(name=role))
            users[username] = user
        return users

    def _teams(self, users: dict[str, User]) -> None:
        """East Japan (rep1, rep2) by region rule; West Japan (rep3) takes the rest."""
        east, _created = Team.objects.get_or_create(name="東日本営業チーム")
        west, _created = Team.objects.get_or_create(
            name="西日本営業チーム", defaults={"is_default": True}
        )
        for team, reps in ((east, ["rep1", "rep2"]), (west, ["rep3"])):
            team.managers.add(users["manager"])
            for username in reps:
                TeamMembership.objects.get_or_create(team=team, rep=users[username])
        RoutingRule.objects.get_or_create(
            name="東日本（北海道・東北・関東・中部）",
            defaults={
                "order": 10,
                "regions": ["hokkaido", "tohoku", "kanto", "chubu"],
                "team": east,
            },
        )

    def _companies(self) -> list[Company]:
        companies = []
        for name, kana, domain, employees, revenue, industry, prefecture in data.COMPANIES:
            company, _created = Company.objects.get_or_create(
                domain=domain,
                defaults={
                    "name": name,
                    "name_kana": kana,
                    "employee_count": employees,
                    "revenue_band": revenue,
                    "industry": industry,
                    "prefecture": prefecture,
                },
            )
            companies.append(company)
        return companies

    def _leads(self, rng: random.Random, companies: list[Company], users: dict[str, User]) -> int:
        now = timezone.now()
        number = 0
        created = 0
        for final_stage, count, path in PLAN:
            for _ in range(count):
                number += 1
                last = data.LAST_NAMES[number % len(data.LAST_NAMES)]
                first = data.FIRST_NAMES[(number * 7) % len(data.FIRST_NAMES)]
                company = companies[(number * 3) % len(companies)]
                email = f"{first[2]}.{last[2]}{number}@{company.domain}"
                if final_stage == Stage.ANONYMOUS:
                    email = ""
                    if LeadExternalId.objects.filter(
                        system="mautic", external_id=f"demo-{number}"
                    ).exists():
                        continue
                elif Lead.objects.with_email(email).exists():
                    continue
                department, title, role = data.POSITIONS[(number * 5) % len(data.POSITIONS)]
                created_at = now - dt.timedelta(days=rng.randint(5, 90), hours=rng.randint(0, 9))
                lead = Lead.objects.create(
                    email=email,
                    last_name=last[0] if email else "",
                    first_name=first[0] if email else "",
                    last_name_kana=last[1] if email else "",
                    first_name_kana=first[1] if email else "",
                    company=company if email else None,
                    department=department if email else "",
                    job_title=title if email else "",
                    role=role if email else "",
                    phone=f"03-{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}"
                    if email
                    else "",
                    source=rng.choice(["mautic", "hubspot", "csv:展示会2026", "web-form"]),
                    stage=Stage.ANONYMOUS if not email else Stage.KNOWN,
                )
                Lead.objects.filter(pk=lead.pk).update(
                    created_at=created_at, stage_changed_at=created_at
                )
                if not email:
                    LeadExternalId.objects.create(
                        lead=lead, system="mautic", external_id=f"demo-{number}"
                    )
                if path:
                    # What made it an MQL comes before the MQL: hot events in the lead's
                    # first days, the walk after them, and some cooler ones until today.
                    lead_up = min(created_at + dt.timedelta(days=3), now)
                    self._events(rng, lead, created_at, lead_up, hot=True)
                    self._events(rng, lead, lead_up, now, hot=False, first=100)
                    self._walk(rng, lead, path, lead_up, now, manager=users["manager"])
                else:
                    self._events(rng, lead, created_at, now, hot=False)
                created += 1
        return created

    def _past(self, rng, companies: list[Company], users: dict[str, User]) -> int:
        """Leads handed to sales months ago, each with the events that made it an MQL
        before its handoff and sales' verdict (leadflow.demo.history)."""
        now = timezone.now()
        created = 0
        total = sum(spec[0] for spec in history.PROFILES.values())
        number = 0
        oldest, newest = history.SPAN_DAYS
        for profile, (count, events, actor, why, min_size) in history.PROFILES.items():
            fitting = [c for c in companies if (c.employee_count or 0) >= min_size]
            for i in range(count):
                number += 1
                company = fitting[(i * 7 + number) % len(fitting)]
                last = data.LAST_NAMES[(number * 3) % len(data.LAST_NAMES)]
                first = data.FIRST_NAMES[(number * 5) % len(data.FIRST_NAMES)]
                email = f"{first[2]}.{last[2]}.{profile}{i}@{company.domain}"
                if Lead.objects.with_email(email).exists():
                    continue
                # Scored MQLs are decision makers; a trade show brings every kind of card.
                positions = data.POSITIONS if not min_size else data.POSITIONS[:7]
                department, title, role = positions[(i * 3 + number) % len(positions)]
                # Oldest first, evenly over the span, so every month has some verdicts.
                days_ago = oldest - (oldest - newest) * (number - 1) / max(1, total - 1)
                handoff_at = now - dt.timedelta(days=days_ago, hours=rng.randint(0, 8))
                start = handoff_at - dt.timedelta(days=history.LEAD_UP_DAYS)
                lead = Lead.objects.create(
                    email=email,
                    last_name=last[0],
                    first_name=first[0],
                    last_name_kana=last[1],
                    first_name_kana=first[1],
                    company=company,
                    department=department,
                    job_title=title,
                    role=role,
                    phone=f"06-{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}",
                    source="mautic" if profile != "trade_show" else "csv:展示会2026",
                    stage=Stage.KNOWN,
                )
                Lead.objects.filter(pk=lead.pk).update(
                    created_at=start - dt.timedelta(days=1), stage_changed_at=start
                )
                rows, n = [], 0
                for kind, properties, times in events:
                    for _time in range(times):
                        # One per day at most for each kind: caps are per day.
                        at = start + dt.timedelta(days=n % history.LEAD_UP_DAYS, hours=n % 9)
                        rows.append(self._event(lead, kind, at, properties, f"past-{lead.pk}-{n}"))
                        n += 1
                EngagementEvent.objects.bulk_create(rows, ignore_conflicts=True)
                verdict = history.VERDICTS[profile][i % 10]
                paths: dict[str, list[str]] = {
                    "won": [Stage.MQL, Stage.SQL, Stage.OPPORTUNITY, Stage.CUSTOMER],
                    "sql": [Stage.MQL, Stage.SQL],
                    "lost": [Stage.MQL, Stage.SQL, LOST],
                }
                path = paths.get(verdict, [Stage.MQL, Stage.RECYCLED])
                rejection = None
                if path[-1] == Stage.RECYCLED:
                    rejection = (verdict, history.COMMENTS[verdict])
                self._walk(
                    rng,
                    lead,
                    path,
                    handoff_at - dt.timedelta(hours=12),
                    now,
                    manager=users["manager"],
                    rejection=rejection,
                    mql_actor=actor,
                    mql_reason=why,
                )
                created += 1
        return created

    def _events(
        self, rng, lead: Lead, start: dt.datetime, now: dt.datetime, *, hot: bool, first: int = 0
    ) -> None:
        span = (now - start).total_seconds()
        events = []
        n_events = rng.randint(12, 30) if hot else rng.randint(1, 10)
        for i in range(first, first + n_events):
            at = start + dt.timedelta(seconds=rng.uniform(0, span))
            kind, props = self._random_event(rng, hot)
            events.append(self._event(lead, kind, at, props, f"{lead.pk}-{i}"))
        EngagementEvent.objects.bulk_create(events, ignore_conflicts=True)

    @staticmethod
    def _event(lead: Lead, kind: str, at: dt.datetime, properties: dict, key: str):
        # The external id makes a second load_demo skip the events it already made.
        return EngagementEvent(
            lead=lead,
            kind=kind,
            occurred_at=at,
            properties=properties,
            source="demo",
            external_id=f"demo-{key}",
        )

    @staticmethod
    def _random_event(rng: random.Random, hot: bool) -> tuple[str, dict]:
        roll = rng.random()
        if roll < 0.45:
            url, title = rng.choice(data.PAGES)
            return "page_view", {"url": url, "title": title}
        if roll < 0.55 and hot:
            return "pricing_page_view", {"url": "/pricing", "title": "料金プラン"}
        if roll < 0.65:
            name = rng.choice(data.DOCUMENTS)
            kind = "case_study_download" if "事例" in name else "document_download"
            return kind, {"document": name}
        if roll < 0.72 and hot:
            name = rng.choice(data.SEMINARS)
            kind = "consultation" if name == "個別相談会" else "seminar_attendance"
            return kind, {"seminar": name}
        if roll < 0.85:
            return "email_open", {"campaign": rng.choice(data.EMAILS)}
        if roll < 0.95:
            return "email_click", {"campaign": rng.choice(data.EMAILS), "url": "/products/leadflow"}
        return "form_submit", {"form": "資料請求フォーム"}

    def _walk(
        self,
        rng,
        lead: Lead,
        path: list[str],
        start,
        now,
        *,
        manager: User,
        rejection: tuple[str, str] | None = None,
        mql_actor: str = "scoring",
        mql_reason: str = "fit ≥ 30 and engagement ≥ 50",
    ) -> None:
        """Walk the lead through the journey with the same services people use; a
        rejection is `rejection` (code, comment) or a random one."""
        at = start
        handoff = None
        mql_at = start
        for step in path:
            at = min(at + dt.timedelta(days=rng.randint(1, 4), hours=rng.randint(1, 8)), now)
            if step == Stage.MQL:
                lead_transition(lead=lead, to_stage=step, actor=mql_actor, at=at, reason=mql_reason)
                handoff = Handoff.objects.get(lead=lead, status="open")
                mql_at = at
                continue
            if handoff is None:  # never an MQL: marketing's own decision
                lead_transition(
                    lead=lead,
                    to_stage=step,
                    actor="marketer-review",
                    at=at,
                    reason="競合他社の社員",
                )
                continue
            rep = handoff.assigned_to or manager
            code, comment = rejection or rng.choice(data.REJECTIONS)
            if step in (Stage.SQL, Stage.RECYCLED):
                # The SLA allows "not reachable" only after 3 attempts.
                attempts = 3 if step == Stage.RECYCLED and code == "not_reachable" else None
                # Reps call within hours of the MQL, and decide within days (a few late:
                # the dashboard has something to show on both sides of the target).
                contacted = self._contact(rng, handoff, rep, mql_at, now, attempts=attempts)
                at = min(contacted + dt.timedelta(hours=rng.randint(4, 80)), now)
            if step == Stage.SQL:
                bant = dict(
                    zip(
                        ["budget", "authority", "need", "timeline"],
                        rng.sample([True, True, True, False], 4),
                        strict=True,
                    )
                )
                handoff_accept(handoff=handoff, actor=rep, bant=bant, at=at)
            elif step == Stage.RECYCLED:
                handoff_reject(
                    handoff=handoff,
                    actor=rep,
                    at=at,
                    comment=comment,
                    reason=RejectionReason.objects.get(code=code),
                )
            elif step == Stage.OPPORTUNITY:
                lead_mark_opportunity(lead=lead, actor=rep, at=at)
            elif step == Stage.CUSTOMER:
                lead_mark_won(lead=lead, actor=rep, at=at)
            elif step == LOST:
                lead_mark_lost(lead=lead, actor=rep, at=at, reason=rng.choice(data.LOST_REASONS))
            else:
                lead_transition(lead=lead, to_stage=step, actor=rep, at=at)
        if handoff is not None and len(path) == 1 and rng.random() < 0.5:
            # Half of the open MQLs already had a first call; the rest wait (SLA demo).
            self._contact(rng, handoff, handoff.assigned_to or manager, at, now)

    @staticmethod
    def _contact(rng, handoff: Handoff, rep: User, after, now, attempts: int | None = None):
        """Log 1–3 attempts, the first mostly within the 24 h SLA; return the last one's time."""
        delay = rng.randint(1, 20) if rng.random() < 0.85 else rng.randint(26, 44)
        when = min(after + dt.timedelta(hours=delay), now)
        last = when
        for attempt in range(attempts or rng.randint(1, 3)):
            last = min(when + dt.timedelta(hours=attempt * 5), now)
            activity_log(
                handoff=handoff,
                actor=rep,
                kind=rng.choice(["call", "call", "email"]),
                outcome="no_answer" if attempt == 0 and rng.random() < 0.4 else "reached",
                note=rng.choice(data.ACTIVITY_NOTES),
                at=last,
            )
        return last
