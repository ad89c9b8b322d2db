"""Writes of the intake side: sources, the inbound inbox, and turning inbound events and
CSV rows into leads and engagement events (through leadflow.services only).

Every lead this module touches goes through `_score_changes`, which scores it in the
same transaction as the change (scoring.services.lead_score_changes).
"""

from __future__ import annotations

import logging
import re
import secrets
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from integrations.base import Item, loads_without_nul
from integrations.csv_import import CsvProblem, read_rows
from integrations.mapping import apply_mapping
from integrations.models import InboundEvent, InboundStatus, Source, SourceKind
from integrations.normalize import ValueProblem
from integrations.registry import ADAPTERS
from leadflow.errors import DomainError
from leadflow.models import EngagementEvent, EventKind, Lead
from leadflow.normalize import nfkc
from leadflow.services import UpsertResult, event_record, lead_upsert
from scoring.services import lead_score_changes

logger = logging.getLogger(__name__)


def _score_changes(result: UpsertResult, new_events: list[EngagementEvent]) -> None:
    """Score every lead intake touched, inside the transaction that touched it, so the MQL
    decision (and its handoff) follows the event at once. Only newly recorded events are
    passed: a redelivery must never count twice."""
    lead_score_changes(
        lead=result.lead,
        events=new_events,
        attributes_changed=bool(result.changed),  # lead_created implies it there
        lead_created=result.created,
    )


# --- Sources ---------------------------------------------------------------------------


def source_create(
    *,
    kind: str,
    slug: str,
    secret: str = "",
    name: str = "",
    rate_limit_per_minute: int | None = None,
) -> Source:
    """Create a source with the default mapping of its kind; a random secret if none."""
    if kind not in SourceKind.values:
        raise DomainError(
            _("“%(kind)s” is not a source kind; use one of: %(kinds)s.")
            % {"kind": kind, "kinds": ", ".join(SourceKind.values)},
            code="unknown_kind",
        )
    source = Source(kind=kind, slug=slug, name=name, secret=secret or secrets.token_hex(32))
    if rate_limit_per_minute is not None:
        source.rate_limit_per_minute = rate_limit_per_minute
    try:
        source.full_clean()
    except ValidationError as error:
        raise DomainError(
            " ".join(f"{key}: {' '.join(msgs)}" for key, msgs in error.message_dict.items()),
            code="invalid_source",
            fields=error.message_dict,
        ) from None
    source.save()
    return source


# --- Receiving -------------------------------------------------------------------------


def _enqueue(inbound_event_id: int) -> None:
    from integrations.tasks import process_inbound_event

    try:
        process_inbound_event.delay(inbound_event_id)
    except Exception:
        # The event is stored and the sender has its answer; a broker outage must not turn
        # that into an error. The requeue sweep picks up events that were never queued.
        logger.exception(
            "Could not enqueue inbound event %s; the sweep will retry", inbound_event_id
        )
        return
    # Only after the broker took it: an empty enqueued_at is what "never queued" means.
    InboundEvent.objects.filter(pk=inbound_event_id).update(enqueued_at=timezone.now())


def inbound_event_receive(
    *, source: Source, body: str, headers: dict[str, str], dedup_key: str
) -> tuple[InboundEvent, bool]:
    """Store a request durably before it is answered; enqueue processing on commit.

    Returns (event, created). A redelivery (same dedup key) is stored too, as a
    `duplicate` pointing at the original, and is not processed: the unique index decides,
    so two copies arriving at the same moment cannot both be processed.
    """
    dedup_key = dedup_key[:200]
    # One row needs no transaction of its own: in autocommit the INSERT is one round
    # trip instead of BEGIN + INSERT + COMMIT (two of the six a webhook cost; issue #17's
    # profile), and the on-commit enqueue runs right after it. Inside a caller's
    # transaction a savepoint keeps a duplicate's IntegrityError from breaking it.
    nested = transaction.atomic() if connection.in_atomic_block else nullcontext()
    try:
        with nested:
            event = InboundEvent.objects.create(
                source=source, body=body, headers=headers, dedup_key=dedup_key
            )
        transaction.on_commit(lambda: _enqueue(event.pk))
        return event, True
    except IntegrityError:
        original = (
            InboundEvent.objects.filter(source=source, dedup_key=dedup_key)
            .exclude(status=InboundStatus.DUPLICATE)
            .order_by("pk")
            .first()
        )
        duplicate = InboundEvent.objects.create(
            source=source,
            body=body,
            headers=headers,
            dedup_key=dedup_key,
            status=InboundStatus.DUPLICATE,
            duplicate_of=original,
            reason=_("Same delivery as inbound event #%(pk)s.")
            % {"pk": original.pk if original else "?"},
            processed_at=timezone.now(),
        )
        return duplicate, False


# --- Processing ------------------------------------------------------------------------


@dataclass
class _Outcome:
    items: int = 0
    applied: int = 0
    skipped: int = 0
    failed: int = 0
    events_created: int = 0
    leads: list[int] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    notes: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "applied": self.applied,
            "skipped": self.skipped,
            "failed": self.failed,
            "events_created": self.events_created,
            "leads": self.leads[:100],
            "errors": self.errors[:100],
            "notes": self.notes[:20],
        }

    def reason(self) -> str:
        shown = "; ".join(f"{e['item']}: {e['reason']}" for e in self.errors[:5])
        more = len(self.errors) - 5
        return shown + (f" (+{more} more)" if more > 0 else "")


def _apply_item(
    inbound: InboundEvent, source: Source, index: int, item: Item
) -> tuple[UpsertResult, bool]:
    data = apply_mapping(source.mapping, item.fields)
    person_id = item.external_id or data.external_id
    result = lead_upsert(
        email=data.email,
        attributes=data.attributes,
        company=data.company or None,
        source=source.slug,
        external_ids={source.external_id_system: person_id} if person_id else None,
    )
    new_events: list[EngagementEvent] = []
    if item.event is not None:
        event, created = event_record(
            lead=result.lead,
            kind=item.event.kind,
            occurred_at=item.event.occurred_at or inbound.received_at,
            properties=item.event.properties,
            source=source.slug,
            # Without the sender's id, the inbound event and position name the event, so
            # re-processing the same inbound event records nothing twice.
            external_id=(item.event.external_id or f"inbound:{inbound.pk}:{index}")[:255],
        )
        if created:
            new_events.append(event)
    _score_changes(result, new_events)
    return result, bool(new_events)


def _process_locked(inbound: InboundEvent) -> None:
    source = inbound.source
    adapter = ADAPTERS[source.kind]
    outcome = _Outcome()
    try:
        # The body is stored as received; NULs go here, as at the door (see without_nul).
        items = adapter.parse(loads_without_nul(inbound.body), source=source)
    except ValueError as error:  # JSONDecodeError and ShapeError both are
        inbound.status = InboundStatus.FAILED
        inbound.reason = str(error)
        return
    outcome.items = len(items)
    for index, item in enumerate(items):
        if item.skip:
            outcome.skipped += 1
            outcome.notes.append({"item": item.label, "note": item.skip})
            continue
        try:
            # A savepoint per item: one person without an e-mail does not undo the others.
            with transaction.atomic():
                result, created_event = _apply_item(inbound, source, index, item)
        except (DomainError, ValueProblem) as error:
            message = getattr(error, "message", str(error))
            if getattr(error, "code", "") == "no_identity" and item.hint:
                message = f"{message} {item.hint}"
            outcome.failed += 1
            outcome.errors.append({"item": item.label, "reason": message})
            continue
        outcome.applied += 1
        outcome.events_created += int(created_event)
        if result.lead.pk not in outcome.leads:
            outcome.leads.append(result.lead.pk)
    inbound.result = outcome.as_dict()
    if outcome.failed:
        inbound.status = InboundStatus.FAILED
        inbound.reason = outcome.reason()
    else:
        inbound.status = InboundStatus.PROCESSED
        inbound.reason = ""


def _process_once(inbound_event_id: int) -> InboundEvent | None:
    with transaction.atomic():
        # The row lock makes a second worker with the same task wait, then see the final
        # status and do nothing. Only this row: a lock on the joined source would make
        # every worker and every intake request of that source (its INSERT checks the
        # foreign key) wait for this whole transaction. NO KEY: rows that refer to it
        # may still be written meanwhile.
        inbound = (
            InboundEvent.objects.select_for_update(of=("self",), no_key=True)
            .select_related("source")
            .filter(pk=inbound_event_id)
            .first()
        )
        if inbound is None or inbound.status != InboundStatus.RECEIVED:
            return inbound
        inbound.attempts += 1
        _process_locked(inbound)
        inbound.processed_at = timezone.now()
        inbound.save(update_fields=["status", "reason", "result", "attempts", "processed_at"])
        return inbound


def _mark_failed(inbound_event_id: int, reason: str) -> None:
    InboundEvent.objects.filter(pk=inbound_event_id, status=InboundStatus.RECEIVED).update(
        status=InboundStatus.FAILED, reason=reason[:2000], processed_at=timezone.now()
    )


def inbound_event_process(*, inbound_event_id: int) -> InboundEvent | None:
    """Turn a received inbound event into leads and events; safe to run twice.

    Items that cannot become a lead (no e-mail and no known id, a value that is not
    valid) are listed in `result["errors"]` and leave the event `failed` with the
    reason; the other items of the same body are applied. Lock conflicts between two
    batches touching the same leads are retried; any other error marks it failed too,
    so nothing stays silently in `received`.
    """
    for attempt in range(3):
        try:
            return _process_once(inbound_event_id)
        except OperationalError as error:  # deadlock between two batches: try again
            if attempt == 2:
                logger.exception("Inbound event %s failed after retries", inbound_event_id)
                _mark_failed(inbound_event_id, f"Database error: {error}")
        except Exception as error:
            logger.exception("Inbound event %s could not be processed", inbound_event_id)
            _mark_failed(inbound_event_id, f"Internal error: {error!r}")
            break
    return InboundEvent.objects.filter(pk=inbound_event_id).first()


def inbound_event_reprocess(*, inbound_event_id: int) -> bool:
    """Put a failed event back to `received` and enqueue it (after a mapping fix).

    A conditional UPDATE is the claim: clicking twice, or a worker racing the admin,
    re-queues it once. Returns False when the event was not failed.
    """
    with transaction.atomic():
        # An event whose body was removed (erasure, retention) has nothing to re-process.
        claimed = InboundEvent.objects.filter(
            pk=inbound_event_id, status=InboundStatus.FAILED, redacted_at__isnull=True
        ).update(status=InboundStatus.RECEIVED, reason="", processed_at=None)
        if claimed:
            transaction.on_commit(lambda: _enqueue(inbound_event_id))
    return bool(claimed)


def inbound_events_requeue_stale(
    *,
    never_queued_after: timedelta = timedelta(minutes=1),
    lost_after: timedelta = timedelta(minutes=30),
    limit: int = 500,
) -> int:
    """Enqueue events still `received` that no task will come for.

    Two cases: never handed to the broker (it was down when the webhook arrived: the
    sender had its 202 and the row is all there is), taken after a minute; and queued
    long ago but still not processed (a broker that lost its queue), after `lost_after`.
    A backlog that is merely slow is left alone, so an outage's catch-up is not doubled
    by the sweep. Re-enqueueing is harmless anyway: processing takes a row lock and
    skips events no longer `received`.
    """
    now = timezone.now()
    ids = list(
        InboundEvent.objects.filter(status=InboundStatus.RECEIVED)
        .filter(
            Q(enqueued_at__isnull=True, received_at__lt=now - never_queued_after)
            | Q(enqueued_at__lt=now - lost_after)
        )
        .order_by("received_at")
        .values_list("pk", flat=True)[:limit]
    )
    if ids:
        logger.warning("Re-enqueueing %d inbound event(s) that no task was queued for", len(ids))
    for pk in ids:
        _enqueue(pk)
    return len(ids)


# --- CSV import ------------------------------------------------------------------------


@dataclass
class ImportReport:
    encoding: str = ""
    columns: dict[str, str] = field(default_factory=dict)  # header → target
    ignored_columns: list[str] = field(default_factory=list)
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line, message)
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors


def _exchange_time(text: str) -> datetime | None:
    """`2026/11/05`, `2026-11-05`, `2026年11月5日` → noon that day in Tokyo; None if unreadable."""
    match = re.search(r"(\d{4})\D{1,2}(\d{1,2})\D{1,2}(\d{1,2})", nfkc(text))
    if match is None:
        return None
    try:
        day = date(*(int(part) for part in match.groups()))
    except ValueError:
        return None
    return datetime.combine(day, time(12), tzinfo=ZoneInfo(settings.TIME_ZONE))


def leads_import_csv(
    *, data: bytes, source: str = "csv", dry_run: bool = False, event: str = ""
) -> ImportReport:
    """Create or update one lead per CSV row, by e-mail (re-importing changes nothing).

    With `event` (a trade show's name, e.g. business cards from 展示会), every row also
    records a trade-show visit on the lead, dated by the card's exchange date when the
    export has one; re-importing records it once (the e-mail and day are its id).

    Each row is its own transaction: a bad row is reported with its line number and
    the others are imported. With `dry_run` every row is read and checked, and whether
    it would create or update a lead is reported, but nothing is written.
    """
    report = ImportReport(dry_run=dry_run)
    try:
        sheet = read_rows(data)
    except CsvProblem as problem:
        report.errors.append((0, str(problem)))
        return report
    report.encoding = sheet.encoding
    report.columns = sheet.columns
    report.ignored_columns = sheet.ignored
    mapping = {"fields": {header: target for header, target in sheet.columns.items()}}
    for line, row in sheet.rows:
        report.rows += 1
        try:
            lead_data = apply_mapping(mapping, row)
        except ValueProblem as problem:
            report.errors.append((line, str(problem)))
            continue
        if not lead_data.email:
            report.errors.append((line, _("No e-mail address.")))
            continue
        if dry_run:
            if Lead.objects.with_email(lead_data.email).exists():
                report.updated += 1
            else:
                report.created += 1
            continue
        try:
            with transaction.atomic():
                result = lead_upsert(
                    email=lead_data.email,
                    attributes=lead_data.attributes,
                    company=lead_data.company or None,
                    source=source,
                )
                new_events = []
                if event:
                    met_at = _exchange_time(lead_data.card_exchanged_on) or timezone.now()
                    visit, created = event_record(
                        lead=result.lead,
                        kind=EventKind.TRADE_SHOW_VISIT,
                        occurred_at=met_at,
                        properties={"event": event},
                        source=f"csv:{event}",
                        external_id=f"{lead_data.email}:{met_at.date().isoformat()}",
                    )
                    if created:
                        new_events.append(visit)
                _score_changes(result, new_events)
        except DomainError as error:
            report.errors.append((line, error.message))
            continue
        if result.created:
            report.created += 1
        elif result.changed:
            report.updated += 1
        else:
            report.unchanged += 1
    return report
