"""What every connector returns or raises, and the HTTP rules they share.

A connector makes the calls for one message and either returns a `DeliveryResult` or
raises `DeliveryError`. It never writes delivery state: integrations/outbound/delivery.py
records the result, so a connector can be called again for the same message without harm.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Protocol

import httpx
from django.utils import timezone

if TYPE_CHECKING:
    from integrations.outbound.models import Destination, OutboxMessage

EXCERPT_CHARS = 2000
USER_AGENT = "LeadFlow/1 (+outbox)"


@dataclass
class DeliveryResult:
    status_code: int | None
    body: str = ""
    remote_id: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    # Ids the destination gave this lead, to remember as LeadExternalId (system, id).
    external_ids: list[tuple[str, str]] = field(default_factory=list)
    # Systems whose stored id turned out to be stale (the record was deleted remotely).
    forget_systems: list[str] = field(default_factory=list)


class DeliveryError(Exception):
    """The call did not succeed. `permanent` errors go to the dead letter at once;
    the others are retried with backoff (after `retry_after` seconds if the vendor said)."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        status_code: int | None = None,
        body: str = "",
        retry_after: float | None = None,
        info: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.status_code = status_code
        self.body = body
        self.retry_after = retry_after
        self.info = info or {}


class Connector(Protocol):
    def __call__(
        self, *, destination: Destination, message: OutboxMessage, client: httpx.Client
    ) -> DeliveryResult: ...


def excerpt(text: str) -> str:
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "…"


def body_excerpt(response: httpx.Response) -> str:
    try:
        return excerpt(response.text)
    except (UnicodeDecodeError, LookupError):
        return excerpt(repr(response.content[:EXCERPT_CHARS]))


def json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - (now or timezone.now())).total_seconds())


def is_retryable_status(status: int) -> bool:
    # 408 timeout, 425 too early, 429 rate limited, 5xx the vendor's own trouble.
    return status in (408, 425, 429) or status >= 500


def error_from_response(
    response: httpx.Response,
    message: str,
    *,
    retry_after: float | None = None,
    info: dict[str, Any] | None = None,
) -> DeliveryError:
    status = response.status_code
    return DeliveryError(
        f"HTTP {status}: {message}",
        permanent=not is_retryable_status(status),
        status_code=status,
        body=body_excerpt(response),
        retry_after=retry_after
        if retry_after is not None
        else parse_retry_after(response.headers.get("Retry-After")),
        info=info,
    )


def error_from_transport(exc: httpx.HTTPError, info: dict[str, Any] | None = None) -> DeliveryError:
    """Network trouble (refused, reset, DNS, timeout) is always worth another try."""
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "network error"
    return DeliveryError(f"{kind}: {exc.__class__.__name__}: {exc}", permanent=False, info=info)
