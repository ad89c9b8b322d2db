"""What every vendor adapter is made of, and the shapes they hand to the services.

An adapter does three things for its kind of source: checks that a request is
authentic (`verify`), reads a parsed body into `Item`s — one thing the payload says
about one person — or says precisely where the body has the wrong shape (`parse`),
and names the delivery so a redelivery is recognised (`dedup_key`). It never writes:
`integrations.services` turns items into lead_upsert / event_record calls.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from integrations.signing import SignatureError
from leadflow.fits import FIRST_YEAR, LAST_YEAR

if TYPE_CHECKING:
    from collections.abc import Mapping

    from integrations.models import Source

__all__ = [
    "Adapter",
    "Delivery",
    "EventSpec",
    "Item",
    "ShapeError",
    "SignatureError",
    "parse_time",
    "pointer",
]


@dataclass(frozen=True)
class Delivery:
    """One request as the signature checks need it."""

    method: str
    # The URL the sender called as it may have seen it (public base URL, forwarded
    # headers, our own view of the request); vendors that sign the URL must match one.
    uris: tuple[str, ...]
    headers: Mapping[str, str]
    body: bytes
    now: float


class ShapeError(ValueError):
    """The body is JSON but not in the sender's format; `pointer` is a JSON Pointer."""

    def __init__(self, pointer: str, message: str) -> None:
        super().__init__(f"{pointer or '/'}: {message}")
        self.pointer = pointer
        self.message = message


def pointer(*parts: object) -> str:
    """RFC 6901 JSON Pointer for a path: pointer("events", 3, "lead") → /events/3/lead."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


@dataclass
class EventSpec:
    kind: str
    occurred_at: datetime | None  # None: the sender gave no time; received_at is used
    properties: dict[str, Any] = field(default_factory=dict)
    # The sender's id for the event; when empty the service derives one from the inbound
    # event and the item's position, so re-processing never records an event twice.
    external_id: str = ""


@dataclass
class Item:
    """One thing a payload says about one person."""

    label: str  # where it is in the body, for the failure report ("mautic.page_on_hit[1]")
    fields: dict[str, Any] = field(default_factory=dict)  # sender field → value, flat
    external_id: str = ""  # the person's id in the sender's system
    event: EventSpec | None = None
    skip: str = ""  # why this item changes nothing (a deletion, an object we do not track)
    hint: str = ""  # added to "no e-mail and no known id" failures
    # Where `fields` sit in the item, to name a refused field as the sender wrote it
    # ("lead" → "lead.last_name"); empty when they are the item's own fields.
    fields_at: str = ""


class Adapter:
    kind: str = ""

    def verify(self, *, source: Source, delivery: Delivery) -> None:
        raise NotImplementedError

    def parse(self, payload: Any, *, source: Source) -> list[Item]:
        raise NotImplementedError

    def dedup_key(self, payload: Any, body: bytes) -> str:
        return "sha256:" + hashlib.sha256(body).hexdigest()


def without_nul(value: Any) -> Any:
    """`value` (parsed JSON) with NUL characters removed from every string and key.

    PostgreSQL stores no NUL in text and no \\u0000 in jsonb: one in a name, an id or a
    URL made the request a 500 (intake's dedup key, feedback's lookups) or failed the
    whole inbound event. A NUL means nothing in any of them, so it is dropped."""
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, list):
        return [without_nul(item) for item in value]
    if isinstance(value, dict):
        return {without_nul(key): without_nul(item) for key, item in value.items()}
    return value


def loads_without_nul(text: str) -> Any:
    """json.loads, then without_nul. json.loads refuses a raw NUL in a string, so one can
    only come from the escape \\u0000: a body without it (nearly all) is not copied."""
    value = json.loads(text)
    return without_nul(value) if "\\u0000" in text else value


def parse_time(value: Any) -> datetime | None:
    """An aware datetime from ISO 8601, "YYYY-MM-DD HH:MM:SS" (in TIME_ZONE, as Marketo
    sends it), or epoch seconds/milliseconds; None when there is nothing usable."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 100_000_000_000 else value
        try:
            moment = datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
        return moment if FIRST_YEAR <= moment.year <= LAST_YEAR else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.isdigit():
        return parse_time(int(text))
    try:
        parsed = parse_datetime(text)
    except ValueError:
        return None
    if parsed is None:
        return None
    if not FIRST_YEAR <= parsed.year <= LAST_YEAR:
        return None
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    return parsed
