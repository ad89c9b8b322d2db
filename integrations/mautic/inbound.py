"""Mautic webhooks.

Body: {"mautic.<event>": [ {<item>, "timestamp": …}, … ], …, "timestamp": …}. Test
payloads and Mautic 1.x send an object instead of the list, and `lead` instead of
`contact`; one body may carry several event types and several items of each.
Signature: Webhook-Signature = base64(HMAC-SHA256(secret, raw body)); no timestamp, so
no replay window (Mautic has none to offer), duplicates are caught by content.
"""

from __future__ import annotations

import base64
import hashlib
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
from integrations.mapping import kind_for_name, kind_for_url
from integrations.models import Source
from leadflow.models import EventKind

SIGNATURE_HEADER = "Webhook-Signature"

# event → the key of the object inside each item that holds the contact and event data
_CONTAINERS = {
    "mautic.form_on_submit": "submission",
    "mautic.email_on_open": "stat",
    "mautic.page_on_hit": "hit",
}
_CONTACT_EVENTS = {
    "mautic.lead_post_save_new",
    "mautic.lead_post_save_update",
    "mautic.lead_points_change",
    "mautic.lead_channel_subscription_changed",
    "mautic.lead_company_change",
    "mautic.lead_list_change",
}
_IGNORED = {
    "mautic.lead_post_delete": "LeadFlow keeps leads that Mautic deletes.",
    "mautic.email_on_send": "Sent e-mails are not engagement; opens and clicks are.",
    "mautic.company_post_save": "Companies come with their contacts.",
    "mautic.company_post_delete": "LeadFlow keeps companies that Mautic deletes.",
}


def flatten_contact_fields(contact: dict[str, Any]) -> dict[str, Any]:
    """{"core": {"email": {"value": …}}, "social": …} (or {"all": {"email": …}}) → flat."""
    flat: dict[str, Any] = {}
    groups = contact.get("fields")
    if not isinstance(groups, dict):
        return flat
    for group in groups.values():
        if not isinstance(group, dict):
            continue  # "personal": [] — PHP's empty array
        for alias, spec in group.items():
            value = spec.get("value") if isinstance(spec, dict) else spec
            if value not in (None, "") and alias not in flat:
                flat[alias] = value
    return flat


def _items_of(value: Any, where: str) -> list[tuple[str, dict[str, Any]]]:
    if isinstance(value, list):
        items = list(enumerate(value))
    elif isinstance(value, dict):
        if (
            value
            and all(str(k).isdigit() for k in value)
            and all(isinstance(v, dict) for v in value.values())
        ):
            items = list(value.items())  # PHP list with holes, encoded as an object
        else:
            return [("", value)]  # test payload / Mautic 1.x: the item itself
    else:
        raise ShapeError(pointer(where), _("must be a list of event objects or one event object."))
    for index, item in items:
        if not isinstance(item, dict):
            raise ShapeError(pointer(where, index), _("must be an object."))
    return [(str(index), item) for index, item in items]


class MauticAdapter(Adapter):
    kind = "mautic"

    def verify(self, *, source: Source, delivery: Delivery) -> None:
        given = delivery.headers.get(SIGNATURE_HEADER, "").strip()
        if not given:
            raise SignatureError(
                f"The {SIGNATURE_HEADER} header is missing.", code="missing_signature"
            )
        matched = False
        for secret in source.secrets:
            digest = hmac.new(secret.encode("utf-8"), delivery.body, hashlib.sha256).digest()
            expected = base64.b64encode(digest).decode("ascii")
            matched |= hmac.compare_digest(expected, given)
        if not matched:
            raise SignatureError(f"The {SIGNATURE_HEADER} does not match the body.")

    def parse(self, payload: Any, *, source: Source) -> list[Item]:
        if not isinstance(payload, dict):
            raise ShapeError("", _("a Mautic webhook body is a JSON object keyed by event type."))
        events = [key for key in payload if isinstance(key, str) and key.startswith("mautic.")]
        if not events:
            raise ShapeError("", _("no Mautic event (a key starting with “mautic.”) in the body."))
        fallback_time = parse_time(payload.get("timestamp"))
        items: list[Item] = []
        for event in events:
            for index, raw in _items_of(payload[event], event):
                label = f"{event}[{index}]" if index else event
                where = (event, index) if index else (event,)
                items.append(self._item(event, raw, label, where, fallback_time, source))
        return items

    def _item(self, event, raw, label, where, fallback_time, source) -> Item:
        if event in _IGNORED:
            return Item(label=label, skip=_IGNORED[event])
        mapping = source.mapping
        when = parse_time(raw.get("timestamp")) or fallback_time
        container_key = _CONTAINERS.get(event)
        container = raw
        if container_key is not None:
            container = raw.get(container_key)
            if not isinstance(container, dict):
                raise ShapeError(pointer(*where, container_key), _("must be an object."))
        contact = container.get("contact", container.get("lead"))
        if contact is None and event not in _CONTACT_EVENTS and container_key is None:
            return Item(
                label=label, skip=_("%(event)s is not used by LeadFlow.") % {"event": event}
            )
        if not isinstance(contact, dict):
            # Form submits of people Mautic does not know yet still name their e-mail.
            if container_key == "submission" and isinstance(container.get("results"), dict):
                contact = {}
            else:
                key = "lead" if container_key else "contact"
                raise ShapeError(pointer(*where, key), _("must be the contact object."))
        fields = flatten_contact_fields(contact)
        contact_id = contact.get("id")
        external_id = str(contact_id) if contact_id not in (None, "") else ""
        item = Item(label=label, fields=fields, external_id=external_id)
        if isinstance(contact.get("points"), int):
            # The contact's own integer, not the "points" field's string copy, so the
            # attribute does not flip between "0" and 0 from one event to the next.
            fields["points"] = contact["points"]

        if event == "mautic.lead_points_change":
            points = raw.get("points")
            if isinstance(points, dict) and points.get("new_points") is not None:
                fields["points"] = points["new_points"]
        elif event == "mautic.lead_channel_subscription_changed":
            new_status = str(raw.get("new_status") or "")
            if new_status and new_status != "contactable":
                item.event = EventSpec(
                    kind=EventKind.UNSUBSCRIBE,
                    occurred_at=when,
                    properties={
                        "channel": raw.get("channel"),
                        "old_status": raw.get("old_status"),
                        "new_status": new_status,
                    },
                    external_id=f"dnc:{external_id}:{raw.get('timestamp') or ''}:{new_status}",
                )
        elif event == "mautic.form_on_submit":
            results = container.get("results")
            if isinstance(results, dict):
                # What the person just typed is fresher than the stored contact.
                fields.update({k: v for k, v in results.items() if v not in (None, "")})
            form = container.get("form") if isinstance(container.get("form"), dict) else {}
            kind = (
                kind_for_name(
                    mapping.get("form_kinds", {}),
                    form.get("alias"),
                    form.get("name"),
                    form.get("id"),
                )
                or EventKind.FORM_SUBMIT
            )
            item.event = EventSpec(
                kind=kind,
                occurred_at=parse_time(container.get("dateSubmitted")) or when,
                properties={
                    "form_id": form.get("id"),
                    "form_name": form.get("name"),
                    "form_alias": form.get("alias"),
                    "referer": container.get("referer"),
                },
                external_id=f"form_submission:{container.get('id')}"
                if container.get("id") is not None
                else "",
            )
        elif event == "mautic.email_on_open":
            if container.get("emailAddress") and not fields.get("email"):
                fields["email"] = container["emailAddress"]
            email = container.get("email") if isinstance(container.get("email"), dict) else {}
            opened = container.get("lastOpened") or container.get("dateRead")
            item.event = EventSpec(
                kind=EventKind.EMAIL_OPEN,
                occurred_at=parse_time(opened) or when,
                properties={
                    "email_id": email.get("id"),
                    "email_name": email.get("name"),
                    "subject": email.get("subject"),
                },
                external_id=f"email_open:{container.get('id')}:{opened}"
                if container.get("id") is not None
                else "",
            )
        elif event == "mautic.page_on_hit":
            url = str(container.get("url") or "")
            page = container.get("page") if isinstance(container.get("page"), dict) else {}
            hit_time = container.get("dateHit")
            item.event = EventSpec(
                kind=kind_for_url(mapping, url, EventKind.PAGE_VIEW),
                occurred_at=parse_time(hit_time) or when,
                properties={
                    "url": url,
                    "title": container.get("urlTitle") or page.get("title"),
                    "referer": container.get("referer"),
                    "status_code": container.get("code"),
                },
                # Mautic gives hits no id in the webhook; who, when and where is unique.
                external_id=f"page_hit:{external_id}:{hit_time}:{url}"[:255] if hit_time else "",
            )
        return item


ADAPTER = MauticAdapter()
