"""Generic JSON: Zapier, Make, n8n or a script of your own (schema in docs/intake.md).

    {"id": "evt-1", "type": "pricing_page_view", "occurred_at": "2026-01-15T10:00:00+09:00",
     "lead": {"email": "taro@example.co.jp", "company": "株式会社サンプル", ...},
     "properties": {"url": "https://example.co.jp/pricing"}}

or a batch: {"events": [ … ]} or a bare array of such objects. `type` and `occurred_at`
are optional together (a lead update without an event). Signed with
X-LeadFlow-Signature (see integrations.signing).
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.utils.translation import gettext as _

from integrations import signing
from integrations.base import Adapter, Delivery, EventSpec, Item, ShapeError, parse_time, pointer
from integrations.models import Source
from leadflow.models import EventKind

MAX_BATCH = 5000


def _events_of(payload: Any) -> tuple[list[tuple[tuple[Any, ...], Any]], bool]:
    """[(pointer parts, item)], and whether it is a batch."""
    if isinstance(payload, list):
        return [((i,), item) for i, item in enumerate(payload)], True
    if isinstance(payload, dict) and "events" in payload:
        events = payload["events"]
        if not isinstance(events, list):
            raise ShapeError(pointer("events"), _("must be an array of events."))
        return [(("events", i), item) for i, item in enumerate(events)], True
    if isinstance(payload, dict):
        return [((), payload)], False
    raise ShapeError("", _('the body must be an event object, {"events": [...]} or an array.'))


class GenericAdapter(Adapter):
    kind = "generic"

    def verify(self, *, source: Source, delivery: Delivery) -> None:
        signing.verify(
            source.secrets, delivery.body, delivery.headers.get(signing.HEADER), now=delivery.now
        )

    def parse(self, payload: Any, *, source: Source) -> list[Item]:
        events, is_batch = _events_of(payload)
        if is_batch and not events:
            raise ShapeError(pointer("events") if isinstance(payload, dict) else "", _("is empty."))
        if len(events) > MAX_BATCH:
            raise ShapeError("", _("a batch holds at most %(n)d events.") % {"n": MAX_BATCH})
        return [self._item(where, raw) for where, raw in events]

    def _item(self, where: tuple[Any, ...], raw: Any) -> Item:
        if not isinstance(raw, dict):
            raise ShapeError(pointer(*where), _("must be an event object."))
        lead = raw.get("lead")
        if not isinstance(lead, dict):
            raise ShapeError(
                pointer(*where, "lead"), _("must be an object with the lead's fields.")
            )
        for key, value in lead.items():
            if isinstance(value, list | dict):
                raise ShapeError(pointer(*where, "lead", key), _("must be a single value."))
        event_id = raw.get("id")
        if event_id is not None and (
            isinstance(event_id, bool)
            or not isinstance(event_id, str | int)
            or len(str(event_id)) > 200
        ):
            raise ShapeError(pointer(*where, "id"), _("must be a string (≤ 200) or a number."))
        label = pointer(*where) or "event"
        item = Item(label=label, fields=dict(lead), fields_at="lead")
        kind = raw.get("type")
        if kind is None:
            return item
        if kind not in EventKind.values:
            raise ShapeError(
                pointer(*where, "type"),
                _("must be one of: %(kinds)s.") % {"kinds": ", ".join(EventKind.values)},
            )
        occurred_at = parse_time(raw.get("occurred_at"))
        if occurred_at is None:
            raise ShapeError(
                pointer(*where, "occurred_at"),
                _("must be an ISO 8601 time with its offset, or unix seconds."),
            )
        properties = raw.get("properties", {})
        if not isinstance(properties, dict):
            raise ShapeError(pointer(*where, "properties"), _("must be an object."))
        item.event = EventSpec(
            kind=kind,
            occurred_at=occurred_at,
            properties=properties,
            external_id=str(event_id) if event_id not in (None, "") else "",
        )
        return item

    def dedup_key(self, payload: Any, body: bytes) -> str:
        events, is_batch = _events_of(payload)
        ids = [str(raw.get("id")) for _where, raw in events if raw.get("id") not in (None, "")]
        if not is_batch and ids:
            return f"id:{ids[0]}"[:200]
        if is_batch and ids and len(ids) == len(events):
            return "ids:" + hashlib.sha256("\n".join(ids).encode()).hexdigest()
        return super().dedup_key(payload, body)


ADAPTER = GenericAdapter()
