"""HubSpot Webhooks API (CRM subscriptions).

Body: a JSON array of up to 100 notifications, each with `subscriptionType` (legacy:
`eventType`) such as `contact.creation` or `contact.propertyChange`, `objectId` (the
contact id), `occurredAt` (epoch ms), `eventId` (not guaranteed unique) and
`attemptNumber` (> 0 on retries). Notifications carry no e-mail: a creation alone cannot
make a lead unless LeadFlow already knows the contact id; a propertyChange of `email`
can, and changes of mapped properties update a known contact.

Signatures (checked against the raw body and the public URL):
- v3: X-HubSpot-Signature-v3 = base64(HMAC-SHA256(secret, METHOD + URI + body + ts)),
  with X-HubSpot-Request-Timestamp (epoch ms) no more than 5 minutes off;
- v2: X-HubSpot-Signature = hex(SHA-256(secret + METHOD + URI + body));
- v1: X-HubSpot-Signature = hex(SHA-256(secret + body)).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from typing import Any

from django.utils.translation import gettext as _

from integrations.base import (
    Adapter,
    Delivery,
    Item,
    ShapeError,
    SignatureError,
    parse_time,
    pointer,
)
from integrations.models import Source

MAX_AGE_MS = 5 * 60 * 1000

# HubSpot's docs: these escapes are decoded in the URI before signing (v3); the SDKs do
# not decode. Both forms are tried, so either behaviour of the sender verifies.
_DECODED = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$", "%27": "'",
    "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}  # fmt: skip
_ESCAPE = re.compile("|".join(_DECODED), re.IGNORECASE)


def decode_uri(uri: str) -> str:
    return _ESCAPE.sub(lambda m: _DECODED[m.group().upper()], uri)


def _uri_forms(uris: tuple[str, ...]) -> list[str]:
    forms: list[str] = []
    for uri in uris:
        for form in (uri, decode_uri(uri)):
            if form not in forms:
                forms.append(form)
    return forms


def signature_v1(secret: str, body: bytes) -> str:
    return hashlib.sha256(secret.encode("utf-8") + body).hexdigest()


def signature_v2(secret: str, method: str, uri: str, body: bytes) -> str:
    return hashlib.sha256((secret + method + uri).encode("utf-8") + body).hexdigest()


def signature_v3(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    message = (method + uri).encode("utf-8") + body + timestamp.encode("utf-8")
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


class HubSpotAdapter(Adapter):
    kind = "hubspot"

    def verify(self, *, source: Source, delivery: Delivery) -> None:
        headers = delivery.headers
        v3 = headers.get("X-HubSpot-Signature-v3", "").strip()
        if v3:
            self._verify_v3(source, delivery, v3)
            return
        legacy = headers.get("X-HubSpot-Signature", "").strip().lower()
        if not legacy:
            raise SignatureError(
                "The X-HubSpot-Signature-v3 (or X-HubSpot-Signature) header is missing.",
                code="missing_signature",
            )
        version = headers.get("X-HubSpot-Signature-Version", "v1").strip().lower() or "v1"
        candidates: list[str] = []
        for secret in source.secrets:
            if version == "v1":
                candidates.append(signature_v1(secret, delivery.body))
            elif version == "v2":
                candidates += [
                    signature_v2(secret, delivery.method, uri, delivery.body)
                    for uri in _uri_forms(delivery.uris)
                ]
            else:
                raise SignatureError(f"Unknown X-HubSpot-Signature-Version “{version}”.")
        if not _any_match(candidates, legacy):
            raise SignatureError(f"The HubSpot {version} signature does not match.")

    def _verify_v3(self, source: Source, delivery: Delivery, given: str) -> None:
        timestamp = delivery.headers.get("X-HubSpot-Request-Timestamp", "").strip()
        if not timestamp:
            raise SignatureError(
                "The X-HubSpot-Request-Timestamp header is missing.", code="missing_signature"
            )
        if not timestamp.isdigit():
            raise SignatureError("X-HubSpot-Request-Timestamp is not epoch milliseconds.")
        if abs(delivery.now * 1000 - int(timestamp)) > MAX_AGE_MS:
            raise SignatureError("The HubSpot request timestamp is more than 5 minutes old.")
        candidates = [
            signature_v3(secret, delivery.method, uri, delivery.body, timestamp)
            for secret in source.secrets
            for uri in _uri_forms(delivery.uris)
        ]
        if not _any_match(candidates, given):
            raise SignatureError("The HubSpot v3 signature does not match.")

    def parse(self, payload: Any, *, source: Source) -> list[Item]:
        if not isinstance(payload, list):
            raise ShapeError("", _("a HubSpot webhook body is a JSON array of notifications."))
        if not payload:
            raise ShapeError("", _("the array of notifications is empty."))
        mapped = source.mapping.get("fields", {})
        keep_unmapped = bool(source.mapping.get("keep_unmapped"))
        items: list[Item] = []
        for index, note in enumerate(payload):
            if not isinstance(note, dict):
                raise ShapeError(pointer(index), _("must be a notification object."))
            type_key = "subscriptionType" if "subscriptionType" in note else "eventType"
            kind = note.get(type_key)
            if not isinstance(kind, str) or not kind:
                raise ShapeError(
                    pointer(index, "subscriptionType"), _("must name the notification type.")
                )
            label = f"[{index}] {kind}"
            if not kind.startswith("contact."):
                items.append(
                    Item(
                        label=label, skip=_("%(kind)s notifications are not used.") % {"kind": kind}
                    )
                )
                continue
            object_id = note.get("objectId")
            if (
                isinstance(object_id, bool)
                or not isinstance(object_id, int | str)
                or (str(object_id).strip() == "")
            ):
                raise ShapeError(pointer(index, "objectId"), _("must be the contact id."))
            contact_id = str(object_id).strip()
            occurred = parse_time(note.get("occurredAt"))
            if kind == "contact.creation":
                items.append(
                    Item(
                        label=label,
                        external_id=contact_id,
                        hint=(
                            f"HubSpot sends no e-mail with contact.creation; contact "
                            f"{contact_id} becomes a lead when a propertyChange of its "
                            f"e-mail arrives or once it is linked to a lead."
                        ),
                    )
                )
            elif kind == "contact.propertyChange":
                name = note.get("propertyName")
                if not isinstance(name, str) or not name:
                    raise ShapeError(pointer(index, "propertyName"), _("must name the property."))
                if name not in mapped and not keep_unmapped:
                    items.append(
                        Item(
                            label=label,
                            skip=_("Property “%(name)s” is not mapped.") % {"name": name},
                        )
                    )
                    continue
                items.append(
                    Item(
                        label=label,
                        fields={name: note.get("propertyValue")},
                        external_id=contact_id,
                        hint=_("HubSpot contact %(id)s is not linked to a lead yet.")
                        % {"id": contact_id},
                    )
                )
            else:
                items.append(
                    Item(
                        label=label, skip=_("%(kind)s notifications are not used.") % {"kind": kind}
                    )
                )
            if occurred is None and note.get("occurredAt") is not None:
                raise ShapeError(pointer(index, "occurredAt"), _("must be epoch milliseconds."))
        return items

    def dedup_key(self, payload: Any, body: bytes) -> str:
        # A retry resends the same notifications with attemptNumber + 1: leave it out so
        # the retry is recognised as the delivery it repeats.
        canonical = sorted(
            json.dumps(
                {k: v for k, v in note.items() if k != "attemptNumber"},
                sort_keys=True,
                separators=(",", ":"),
            )
            for note in payload
        )
        return "hubspot:" + hashlib.sha256("\n".join(canonical).encode()).hexdigest()


def _any_match(candidates: list[str], given: str) -> bool:
    matched = False
    for expected in candidates:
        matched |= hmac.compare_digest(expected.encode(), given.encode())
    return matched


ADAPTER = HubSpotAdapter()
