"""Marketo "Call Webhook" flow steps.

Marketo cannot sign. The admin adds a Custom Header `X-LeadFlow-Token: <source secret>`
to the webhook, and the Payload Template decides the body: a JSON object whose values
are Marketo tokens (`{{lead.Email Address}}`, `{{company.Company Name}}`, …). Nested
objects are read as dotted paths (`lead.email_address`), which is what the source's
field mapping names; `campaign_kinds` can turn the calling campaign into an engagement
event (e.g. a "seminar attended" campaign → seminar_attendance).
"""

from __future__ import annotations

import hmac
from typing import Any

from django.utils.translation import gettext as _

from integrations.base import (
    Adapter,
    Delivery,
    EventSpec,
    Item,
    ShapeError,
    SignatureError,
    parse_time,
    pointer,
)
from integrations.mapping import kind_for_name
from integrations.models import Source

TOKEN_HEADER = "X-LeadFlow-Token"


def flatten(value: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, inner in value.items():
        path = f"{prefix}{key}"
        if isinstance(inner, dict):
            flat.update(flatten(inner, path + "."))
        else:
            flat[path] = inner
    return flat


class MarketoAdapter(Adapter):
    kind = "marketo"

    def verify(self, *, source: Source, delivery: Delivery) -> None:
        given = delivery.headers.get(TOKEN_HEADER, "").strip()
        if not given:
            raise SignatureError(f"The {TOKEN_HEADER} header is missing.", code="missing_signature")
        matched = False
        for secret in source.secrets:
            matched |= hmac.compare_digest(secret.encode("utf-8"), given.encode("utf-8"))
        if not matched:
            raise SignatureError(f"The {TOKEN_HEADER} is not this source's token.")

    def parse(self, payload: Any, *, source: Source) -> list[Item]:
        if isinstance(payload, dict):
            bodies = [("", payload)]
        elif isinstance(payload, list) and payload:
            bodies = [(str(i), body) for i, body in enumerate(payload)]
        else:
            raise ShapeError("", _("a Marketo webhook body is the JSON object of its template."))
        items = []
        for index, body in bodies:
            if not isinstance(body, dict):
                raise ShapeError(pointer(index), _("must be an object."))
            items.append(self._item(body, index, source))
        return items

    def _item(self, body: dict[str, Any], index: str, source: Source) -> Item:
        fields = flatten(body)
        item = Item(
            label=f"[{index}]" if index else "webhook",
            fields=fields,
            hint=_(
                "Check that the payload template sends {{lead.Email Address}} under a field "
                "the source's mapping sends to “email”."
            ),
        )
        rules = source.mapping.get("campaign_kinds", {})
        found = body.get("campaign")
        campaign: dict[str, Any] = found if isinstance(found, dict) else {}
        kind = kind_for_name(rules, campaign.get("id"), campaign.get("name"))
        if kind:
            when = body.get("datetime")
            person = fields.get("lead.id") or fields.get("lead.email_address") or ""
            item.event = EventSpec(
                kind=kind,
                occurred_at=parse_time(when),
                properties={"campaign_id": campaign.get("id"), "campaign": campaign.get("name")},
                external_id=f"campaign:{campaign.get('id')}:{person}:{when}" if when else "",
            )
        return item


ADAPTER = MarketoAdapter()
