"""HubSpot CRM v3: upsert a contact by e-mail with a private-app token.

- A contact id we know (LeadExternalId "hubspot") → PATCH /crm/v3/objects/contacts/<id>;
  a 404 there means it was deleted in HubSpot, so we forget it and create again.
- Otherwise POST /crm/v3/objects/contacts → 201 {"id": ...}; a 409 "Contact already
  exists. Existing ID: N" turns into PATCH N. Either way the id is remembered, so a
  second delivery of the same message updates the same contact instead of creating one.
- 429 usually comes without Retry-After: wait the rate-limit window
  (X-HubSpot-RateLimit-Interval-Milliseconds, 10 s) before the next try.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from integrations.outbound import selectors
from integrations.outbound.base import (
    USER_AGENT,
    DeliveryError,
    DeliveryResult,
    body_excerpt,
    error_from_response,
    json_or_none,
    parse_retry_after,
)
from integrations.outbound.models import Destination, OutboxMessage

SYSTEM = "hubspot"
RATE_LIMIT_WINDOW_SECONDS = 10.0
EXISTING_ID = re.compile(r"Existing ID:\s*(\d+)")


def _retry_after(response: httpx.Response) -> float | None:
    if response.status_code != 429:
        return None
    said = parse_retry_after(response.headers.get("Retry-After"))
    if said is not None:
        return said
    interval = response.headers.get("X-HubSpot-RateLimit-Interval-Milliseconds", "")
    if interval.isdigit():
        return int(interval) / 1000
    return RATE_LIMIT_WINDOW_SECONDS


def _fail(response: httpx.Response, what: str) -> DeliveryError:
    answer = json_or_none(response)
    text = ""
    if isinstance(answer, dict):
        text = str(answer.get("message", ""))
        details = [
            str(item.get("message", ""))
            for item in answer.get("errors") or []
            if isinstance(item, dict)
        ]
        if details:
            text += " (" + "; ".join(details) + ")"
        category = answer.get("category") or answer.get("errorType")
        if category:
            text = f"{category}: {text}"
    error = error_from_response(
        response, f"{what}: {text or 'no detail'}", retry_after=_retry_after(response)
    )
    if response.status_code in (401, 403):
        # A revoked token or a missing scope is fixed on the destination; keep retrying.
        error.permanent = False
    return error


def _update(
    client: httpx.Client, base: str, headers: dict[str, str], contact_id: str, props: dict
) -> httpx.Response:
    return client.patch(
        f"{base}/crm/v3/objects/contacts/{contact_id}",
        json={"properties": props},
        headers=headers,
    )


def deliver(
    *, destination: Destination, message: OutboxMessage, client: httpx.Client
) -> DeliveryResult:
    objects: dict[str, dict[str, Any]] = (message.payload or {}).get("objects") or {}
    props = objects.get("contact") or {}
    base = destination.base_url.rstrip("/")
    headers = {
        "Authorization": f"Bearer {destination.api_token}",
        "User-Agent": USER_AGENT,
        "Content-Type": "application/json",
    }
    forget: list[str] = []

    known = selectors.external_id_for(lead_id=message.lead_id, system=SYSTEM)
    if known:
        response = _update(client, base, headers, known, props)
        if response.status_code == 200:
            return DeliveryResult(200, body_excerpt(response), remote_id=known)
        if response.status_code != 404:
            raise _fail(response, "updating the HubSpot contact failed")
        forget.append(SYSTEM)

    if not props.get("email"):
        raise DeliveryError(
            "HubSpot contacts are matched by e-mail and this message has none "
            "(map “email” to lead.email).",
            permanent=True,
        )
    response = client.post(
        f"{base}/crm/v3/objects/contacts", json={"properties": props}, headers=headers
    )
    if response.status_code == 201:
        answer = json_or_none(response)
        contact_id = str(answer.get("id", "")) if isinstance(answer, dict) else ""
        return DeliveryResult(
            201,
            body_excerpt(response),
            remote_id=contact_id,
            info={"created": True},
            external_ids=[(SYSTEM, contact_id)] if contact_id else [],
            forget_systems=forget,
        )
    if response.status_code == 409:
        answer = json_or_none(response)
        text = str(answer.get("message", "")) if isinstance(answer, dict) else ""
        found = EXISTING_ID.search(text)
        if found is None:
            raise _fail(response, "HubSpot reports a conflict without the existing contact id")
        contact_id = found.group(1)
        update = _update(client, base, headers, contact_id, props)
        if update.status_code != 200:
            raise _fail(update, f"updating existing HubSpot contact {contact_id} failed")
        return DeliveryResult(
            200,
            body_excerpt(update),
            remote_id=contact_id,
            info={"created": False, "conflict_resolved": True},
            external_ids=[(SYSTEM, contact_id)],
            forget_systems=forget,
        )
    raise _fail(response, "creating the HubSpot contact failed")
