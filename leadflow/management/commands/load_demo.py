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

from leadflow.demo import data
from leadflow.lifecycle import lead_transition
from leadflow.models import Company, EngagementEvent, Lead, LeadExternalId, Stage, User

# How many leads end in each stage, and the path that leads there.
PLAN: list[tuple[str, int, list[str]]] = [
    (Stage.ANONYMOUS, 5, []),
    (Stage.KNOWN, 45, []),
    (Stage.MQL, 16, [Stage.MQL]),
    (Stage.SQL, 10, [Stage.MQL, Stage.SQL]),
    (Stage.OPPORTUNITY, 8, [Stage.MQL, Stage.SQL, Stage.OPPORTUNITY]),
    (Stage.CUSTOMER, 7, [Stage.MQL, Stage.SQL, Stage.OPPORTUNITY, Stage.CUSTOMER]),
    (Stage.ADVOCATE, 3, [Stage.MQL, Stage.SQL, Stage.OPPORTUNITY, Stage.CUSTOMER, Stage.ADVOCATE]),
    (Stage.RECYCLED, 12, [Stage.MQL, Stage.RECYCLED]),
    (Stage.DISQUALIFIED, 4, [Stage.DISQUALIFIED]),
]


class Command(BaseCommand):
    help = "Load demo users, companies, leads and engagement history (idempotent)."

    def handle(self, *args, **options) -> None:
        rng = random.Random(2026)  # same demo every time
        with transaction.atomic():
            users = self._users()
            companies = self._companies()
            created = self._leads(rng, companies, users)
        self.stdout.write(self.style.SUCCESS(f"Demo data ready ({created} new leads)."))

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
            if role:
                user.groups.add(Group.objects.get(name=role))
            users[username] = user
        return users

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
        reps = [users["rep1"], users["rep2"], users["rep3"]]
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
                elif Lead.objects.filter(email=email).exists():
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
                self._events(rng, lead, created_at, now, hot=bool(path))
                self._walk(rng, lead, path, created_at, now, rep=reps[number % len(reps)])
                created += 1
        return created

    def _events(self, rng, lead: Lead, start: dt.datetime, now: dt.datetime, *, hot: bool) -> None:
        span = (now - start).total_seconds()
        events = []
        n_events = rng.randint(12, 30) if hot else rng.randint(1, 10)
        for i in range(n_events):
            at = start + dt.timedelta(seconds=rng.uniform(0, span))
            kind, props = self._random_event(rng, hot)
            events.append(
                EngagementEvent(
                    lead=lead,
                    kind=kind,
                    occurred_at=at,
                    properties=props,
                    source="demo",
                    external_id=f"demo-{lead.pk}-{i}",
                )
            )
        EngagementEvent.objects.bulk_create(events, ignore_conflicts=True)

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

    def _walk(self, rng, lead: Lead, path: list[str], start, now, *, rep: User) -> None:
        at = start
        for step in path:
            at = min(at + dt.timedelta(days=rng.randint(1, 6), hours=rng.randint(1, 8)), now)
            if step == Stage.MQL:
                lead_transition(
                    lead=lead,
                    to_stage=step,
                    actor="scoring",
                    at=at,
                    reason="fit ≥ 30 and engagement ≥ 50",
                )
            elif step == Stage.RECYCLED:
                reason = rng.choice(
                    data.REJECTION_REASONS if lead.stage == Stage.MQL else data.LOST_REASONS
                )
                lead_transition(lead=lead, to_stage=step, actor=rep, at=at, reason=reason)
            elif step == Stage.DISQUALIFIED:
                lead_transition(
                    lead=lead,
                    to_stage=step,
                    actor="marketer-review",
                    at=at,
                    reason="競合他社の社員",
                )
            else:
                lead_transition(lead=lead, to_stage=step, actor=rep, at=at)
        if path and path[-1] not in (Stage.RECYCLED, Stage.DISQUALIFIED):
            Lead.objects.filter(pk=lead.pk).update(owner=rep)
