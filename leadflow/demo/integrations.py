"""Demo integrations: two inbound sources with what they sent, and an SFA webhook with
its outbox, so Integrations in the admin shows the real thing after `load_demo`.

Everything goes through the services production uses: `source_create`, then
`inbound_event_receive` and `inbound_event_process` with bodies in each vendor's format
(so the stored events, leads, results and failure reasons are the real ones);
`outbox_enqueue_for_transition` for recent stage changes, and the webhook connector with
its record step for delivery. No request leaves the machine: delivery goes through an
in-process httpx transport that answers as the SFA would, inside the one transaction
that also wrote the rows, so no worker ever sees them pending.

The destination is left switched off: its address is fictional, and a running worker
would otherwise retry every later stage change against it until it gave up. Point it
at a real receiver and switch it on to try delivery.

Idempotent: a source or destination that exists already is left alone, with everything
it has (its events are only made when it is created).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import secrets
import uuid
import zlib
from dataclasses import dataclass
from typing import Any

import httpx
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from integrations.models import Source
from integrations.outbound.delivery import DeliveryStats, deliver_one
from integrations.outbound.models import (
    Destination,
    DestinationKind,
    MessageStatus,
    OutboundEvent,
    OutboxMessage,
)
from integrations.outbound.outbox import events_for_transition, outbox_enqueue_for_transition
from integrations.registry import ADAPTERS
from integrations.services import inbound_event_process, inbound_event_receive, source_create
from leadflow.models import Lead, Stage, StageTransition

MAUTIC_SLUG = "mautic"
FORM_SLUG = "web-form"
DESTINATION_SLUG = "sfa-webhook"
DESTINATION_URL = "https://sfa.example.jp/api/leadflow/webhook"
# How many recent stage changes of each kind were sent to the SFA; the SFA refused the
# latest acceptance (a required field of its own), which left that message dead.
OUTBOX_MIX = {
    OutboundEvent.MQL_CREATED: 3,
    OutboundEvent.ACCEPTED: 2,
    OutboundEvent.REJECTED: 1,
    OutboundEvent.WON: 1,
    OutboundEvent.LOST: 1,
}
SFA_REFUSAL = {
    "error": {
        "code": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        "message": "取引先名（Company）は必須項目です。",
        "fields": ["Company"],
    }
}


@dataclass
class DemoIntegrations:
    sources: int = 0
    inbound_events: int = 0
    outbox_messages: int = 0


def load_integrations() -> DemoIntegrations:
    now = timezone.now()
    made = DemoIntegrations()
    known = list(
        Lead.objects.filter(stage=Stage.KNOWN)
        .exclude(email="")
        .select_related("company")
        .order_by("pk")[:4]
    )
    if not Source.objects.filter(slug=MAUTIC_SLUG).exists():
        source = source_create(kind="mautic", slug=MAUTIC_SLUG, name="Mautic（本番）")
        made.sources += 1
        made.inbound_events += _receive(source, _mautic_bodies(known, now))
    if not Source.objects.filter(slug=FORM_SLUG).exists():
        source = source_create(kind="generic", slug=FORM_SLUG, name="Webフォーム（Zapier経由）")
        made.sources += 1
        made.inbound_events += _receive(source, _generic_bodies(known, now))
    if not Destination.objects.filter(slug=DESTINATION_SLUG).exists():
        made.outbox_messages = _sfa_webhook()
    return made


def _receive(source: Source, bodies: list[dict[str, Any]]) -> int:
    """Store each body as the intake view does, then process it as the worker does."""
    adapter = ADAPTERS[source.kind]
    for payload in bodies:
        text = json.dumps(payload, ensure_ascii=False)
        event, _created = inbound_event_receive(
            source=source,
            body=text,
            headers={"Content-Type": "application/json", "User-Agent": "demo"},
            dedup_key=adapter.dedup_key(payload, text.encode()),
        )
        inbound_event_process(inbound_event_id=event.pk)
    return len(bodies)


def _iso(when: dt.datetime) -> str:
    return when.isoformat(timespec="seconds")


def _mautic_contact(contact_id: int, lead: Lead | None, **fields: str) -> dict[str, Any]:
    core = {
        "email": lead.email if lead else fields.pop("email", ""),
        "lastname": lead.last_name if lead else fields.pop("lastname", ""),
        "firstname": lead.first_name if lead else fields.pop("firstname", ""),
        "company": lead.company.name if lead and lead.company else fields.pop("company", ""),
        **fields,
    }
    return {
        "id": contact_id,
        "points": 25,
        "fields": {"core": {alias: {"alias": alias, "value": v} for alias, v in core.items()}},
    }


def _mautic_bodies(known: list[Lead], now: dt.datetime) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []
    for offset, lead in enumerate(known[:2]):
        hit_at = now - dt.timedelta(days=2 - offset, hours=3)
        bodies.append(
            {
                "mautic.page_on_hit": [
                    {
                        "hit": {
                            "dateHit": _iso(hit_at),
                            "url": "https://www.leadflow-demo.example.jp/pricing",
                            "urlTitle": "料金プラン",
                            "code": 200,
                            "lead": _mautic_contact(4100 + offset, lead),
                        },
                        "timestamp": _iso(hit_at),
                    }
                ],
                "timestamp": _iso(hit_at),
            }
        )
    submitted = now - dt.timedelta(days=1, hours=5)
    bodies.append(
        {
            "mautic.form_on_submit": [
                {
                    "submission": {
                        "id": 9301,
                        "dateSubmitted": _iso(submitted),
                        "form": {"id": 3, "name": "資料請求フォーム", "alias": "shiryo"},
                        "referer": "https://www.leadflow-demo.example.jp/download",
                        "results": {
                            "email": "k.ito@kaede-logi.example.jp",
                            "lastname": "伊藤",
                            "firstname": "健二",
                            "company": "株式会社かえで物流",
                            "position": "物流企画部 課長",
                        },
                        "lead": {"id": 4201, "points": 0, "fields": {"core": {}}},
                    },
                    "timestamp": _iso(submitted),
                }
            ],
            "timestamp": _iso(submitted),
        }
    )
    # A typo in the form's e-mail field: stored, answered 202, and failed with the reason.
    typo_at = now - dt.timedelta(hours=20)
    bodies.append(
        {
            "mautic.form_on_submit": [
                {
                    "submission": {
                        "id": 9302,
                        "dateSubmitted": _iso(typo_at),
                        "form": {"id": 3, "name": "資料請求フォーム", "alias": "shiryo"},
                        "results": {
                            "email": "nakamura@@example.co.jp",
                            "lastname": "中村",
                            "company": "中村工業株式会社",
                        },
                        "lead": {"id": 4202, "points": 0, "fields": {"core": {}}},
                    },
                    "timestamp": _iso(typo_at),
                }
            ],
            "timestamp": _iso(typo_at),
        }
    )
    return bodies


def _generic_bodies(known: list[Lead], now: dt.datetime) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []
    lead = known[2] if len(known) > 2 else None
    if lead is not None:
        at = now - dt.timedelta(days=3, hours=2)
        bodies.append(
            {
                "id": "form-demo-0001",
                "type": "document_download",
                "occurred_at": _iso(at),
                "lead": {"email": lead.email, "utm_source": "newsletter"},
                "properties": {"document": "MA×SFA連携ホワイトペーパー.pdf"},
            }
        )
    seminar_at = now - dt.timedelta(days=2, hours=6)
    bodies.append(
        {
            "events": [
                {
                    "id": "form-demo-0002",
                    "type": "seminar_attendance",
                    "occurred_at": _iso(seminar_at),
                    "lead": {
                        "email": "m.kobayashi@hinode-foods.example.jp",
                        "name": "小林 美穂",
                        "company": "日の出食品株式会社",
                        "job_title": "経営企画部 主任",
                        "employee_count": "約300名",
                        "industry": "食品",
                        "prefecture": "静岡県",
                    },
                    "properties": {"seminar": "MQL設計入門ウェビナー"},
                },
                {
                    "id": "form-demo-0003",
                    "type": "form_submit",
                    "occurred_at": _iso(seminar_at + dt.timedelta(minutes=50)),
                    "lead": {"email": "m.kobayashi@hinode-foods.example.jp"},
                    "properties": {"form": "ウェビナーアンケート"},
                },
            ]
        }
    )
    # A business card typed into the form without an e-mail: nothing to match it by.
    card_at = now - dt.timedelta(hours=9)
    bodies.append(
        {
            "id": "form-demo-0004",
            "type": "trade_show_visit",
            "occurred_at": _iso(card_at),
            "lead": {"name": "佐々木 亮", "company": "佐々木電機株式会社"},
            "properties": {"event": "展示会2026秋"},
        }
    )
    return bodies


def _sfa_webhook() -> int:
    """The SFA destination, and recent stage changes as sent to it: delivered, one dead."""
    with transaction.atomic():
        destination = Destination.objects.create(
            kind=DestinationKind.WEBHOOK,
            slug=DESTINATION_SLUG,
            name="社内SFA（Webhook）",
            base_url=DESTINATION_URL,
            signing_secret=secrets.token_hex(32),
        )
        # The latest stage changes of each kind the SFA hears about, oldest first.
        wanted: dict[str, int] = {str(event): n for event, n in OUTBOX_MIX.items()}
        chosen = []
        for transition in StageTransition.objects.select_related("lead").order_by(
            "-occurred_at", "-pk"
        )[:2000]:
            events = events_for_transition(
                from_stage=transition.from_stage, to_stage=transition.to_stage
            )
            if events and wanted.get(events[0], 0) > 0:
                wanted[events[0]] -= 1
                chosen.append(transition)
        for transition in sorted(chosen, key=lambda t: (t.occurred_at, t.pk)):
            outbox_enqueue_for_transition(transition=transition)
        messages = OutboxMessage.objects.filter(destination=destination)
        ids = list(messages.order_by("pk").values_list("pk", flat=True))
        if not ids:
            destination.enabled = False
            destination.save(update_fields=["enabled"])
            return 0
        refused = (
            messages.filter(event=OutboundEvent.ACCEPTED).order_by("-pk").first()
            or messages.order_by("pk").first()
        )
        assert refused is not None
        refused_key = refused.idempotency_key
        # Claimed as a delivery worker claims (rows nobody else can see yet: they are not
        # committed), then sent through the real connector and recorded.
        token = uuid.uuid4()
        messages.update(
            status=MessageStatus.IN_FLIGHT,
            claim_token=token,
            lease_expires_at=timezone.now() + dt.timedelta(minutes=5),
            attempts=F("attempts") + 1,
        )
        client = httpx.Client(transport=httpx.MockTransport(_sfa_answer(refused_key)))
        stats = DeliveryStats()
        rng = random.Random(2026).random
        # httpx logs each mocked call as "HTTP Request: POST https://sfa.example.jp/…",
        # which would read as if the demo had called out.
        httpx_log = logging.getLogger("httpx")
        level = httpx_log.level
        httpx_log.setLevel(logging.WARNING)
        try:
            for message in messages.select_related("destination", "lead").order_by("pk"):
                deliver_one(message, client, rng, stats)
        finally:
            httpx_log.setLevel(level)
        destination.enabled = False
        destination.save(update_fields=["enabled"])
    return len(ids)


def _sfa_answer(refused_key: str):
    def answer(request: httpx.Request) -> httpx.Response:
        key = request.headers["Idempotency-Key"]
        if key == refused_key:
            return httpx.Response(422, json=SFA_REFUSAL)
        return httpx.Response(201, json={"id": f"00Q{zlib.crc32(key.encode()):012d}"})

    return answer
