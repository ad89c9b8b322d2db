"""Generic webhook: POST the message as JSON, signed with X-LeadFlow-Signature.

The body and headers are documented for receivers in docs/outbound-webhook.md.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from integrations.outbound.base import (
    USER_AGENT,
    DeliveryError,
    DeliveryResult,
    body_excerpt,
    error_from_response,
    json_or_none,
)
from integrations.outbound.models import Destination, OutboxMessage
from integrations.signing import HEADER, sign


def webhook_body(message: OutboxMessage) -> bytes:
    payload = message.payload
    transition = payload.get("transition") or {}
    document: dict[str, Any] = {
        "idempotency_key": message.idempotency_key,
        "event": message.event,
        "occurred_at": payload.get("occurred_at"),
        "lead": (payload.get("objects") or {}).get("lead", {}),
        "transition": {
            key: transition.get(key, "")
            for key in ("from", "to", "reason", "reason_code", "comment", "actor")
        },
    }
    # Compact and UTF-8 as is: the receiver verifies these exact bytes.
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def deliver(
    *, destination: Destination, message: OutboxMessage, client: httpx.Client
) -> DeliveryResult:
    body = webhook_body(message)
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        HEADER: sign(destination.signing_secret, body),
        "X-LeadFlow-Event": message.event,
        "Idempotency-Key": message.idempotency_key,
    }
    response = client.post(destination.base_url, content=body, headers=headers)
    status = response.status_code
    if 200 <= status < 300:
        answer = json_or_none(response)
        remote_id = str(answer.get("id", "")) if isinstance(answer, dict) else ""
        return DeliveryResult(status, body_excerpt(response), remote_id=remote_id[:255])
    if 300 <= status < 400:
        # Redirects are not followed: a signed POST should not wander to another host.
        location = response.headers.get("Location", "")
        raise DeliveryError(
            f"HTTP {status}: the receiver redirects to {location!r}; update the URL.",
            permanent=True,
            status_code=status,
            body=body_excerpt(response),
        )
    if status == 410:
        raise error_from_response(response, "the receiver says this webhook is gone.")
    raise error_from_response(response, "the receiver did not accept the message.")
