"""Writes of the intake side: sources, the inbound inbox, and turning inbound events and
CSV rows into leads and engagement events (through leadflow.services only).

Every lead this module touches goes through `_score_changes`, which scores it in the
same transaction as the change (scoring.services.lead_score_changes).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import secrets
import socket
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cache
from time import monotonic, sleep
from typing import Any
from zoneinfo import ZoneInfo

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Count, F, Field, Q, QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from integrations.base import Item, loads_without_nul
from integrations.csv_import import CsvProblem, read_rows
from integrations.mapping import lead_data_from_fields
from integrations.models import (
    ImportedLead,
    InboundEvent,
    InboundItemResult,
    InboundStatus,
    ItemOutcome,
    LeadImport,
    Source,
    SourceKind,
)
from integrations.normalize import ValueProblem
from integrations.registry import ADAPTERS
from leadflow.celery import broker_queue_length
from leadflow.errors import DomainError
from leadflow.fits import InvalidValue, printable
from leadflow.models import EngagementEvent, EventKind, Heartbeat, Lead, User
from leadflow.normalize import nfkc
from leadflow.services import UpsertResult, event_record, heartbeat_record, lead_upsert
from scoring import policy
from scoring.engine import CompiledModel
from scoring.models import LeadScore
from scoring.services import (
    IMPORT_WAVE_MIN,
    lead_score_changes,
    leads_hand_off_imported,
    published_model,
)

logger = logging.getLogger(__name__)


def _score_changes(
    result: UpsertResult, new_events: list[EngagementEvent], *, apply_policy: bool = True
) -> None:
    """Score every lead intake touched, inside the transaction that touched it, so the MQL
    decision (and its handoff) follows the event at once. Only newly recorded events are
    passed: a redelivery must never count twice. `apply_policy=False`: a large CSV
    import, whose MQLs go on together after its rows (leads_hand_off_imported)."""
    lead_score_changes(
        lead=result.lead,
        events=new_events,
        attributes_changed=bool(result.changed),  # lead_created implies it there
        lead_created=result.created,
        apply_policy=apply_policy,
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
    """Queue processing of one event (a re-process, a hand-over, the sweep), then record
    that the broker took it. Scheduled with a plain `transaction.on_commit`, not
    `leadflow.transactions.enqueue_on_commit`: that one only sends, and the requeue sweep
    needs `enqueued_at` written after a successful send."""
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


# --- Waking the workers ----------------------------------------------------------------
#
# A webhook is not one broker message: workers claim stored events from the table (the
# drain, below), and a webhook only makes sure a drain will look after its commit. Each
# web process sends a drain at most once every WAKE_SECONDS; a drain, once started, keeps
# looking until it has found nothing for DRAIN_LINGER_SECONDS (longer than WAKE_SECONDS
# plus a poll). So a webhook that sends nothing committed within WAKE_SECONDS of its
# process's last wake, whose drain started after that wake and looks at least until
# DRAIN_LINGER_SECONDS after starting: it sees the webhook's row. Under load that is no
# broker or Redis round trip for nearly every webhook (the bare view's two round trips,
# the connection check and the INSERT; issue #17's profile: each costs a webhook a
# context switch on a busy machine). A drain message that never runs (lost with a Redis
# restart, expired in a long queue) is covered by the requeue sweep, which sends a task
# for any event left `received` past its lease: every 202 is processed.

WAKE_SECONDS = 0.5
DRAIN_LINGER_SECONDS = 1.5
DRAIN_POLL_SECONDS = 0.05
# A drain that has waited this long in the queue is dropped unstarted: the ones behind it
# (or the sweep) look instead, and a burst does not leave workers lingering for minutes.
DRAIN_EXPIRES_SECONDS = 30.0
# A drain task claims events for about this long, then hands over to a fresh one.
DRAIN_BUDGET_SECONDS = 60.0
_last_wake = -math.inf  # this process's last drain sent (monotonic seconds)
# The drains' heartbeat (leadflow.Heartbeat, in the database: web, workers and beat are
# other processes, and the local run's cache is per process): when a drain last committed
# work. The requeue sweep reads it to tell a backlog being worked through from drains that
# died. Written at most every DRAIN_BEAT_SECONDS per process (and at least four times a
# lease): one UPDATE every few seconds, not one per event.
DRAIN_HEARTBEAT = "intake-drain"
DRAIN_BEAT_SECONDS = 5.0
_last_drain_beat = -math.inf  # this process's last heartbeat written (monotonic seconds)


def _drain_beat() -> None:
    global _last_drain_beat
    now = monotonic()
    every = min(DRAIN_BEAT_SECONDS, settings.INBOUND_REQUEUE_LEASE_SECONDS / 4)
    if now - _last_drain_beat < every:
        return
    heartbeat_record(name=DRAIN_HEARTBEAT)
    _last_drain_beat = now


def inbound_workers_wake(*, force: bool = False) -> bool:
    """Make sure a drain task looks for received events after this moment.

    False when one could not be sent (the broker is down): the caller's events are left
    to the requeue sweep. `force` sends one even if this process sent one just now."""
    global _last_wake
    from integrations.tasks import drain_inbound_events

    now = monotonic()
    if not force and now - _last_wake < WAKE_SECONDS:
        return True  # the drain sent then looks until after this webhook's commit
    try:
        drain_inbound_events.apply_async(expires=DRAIN_EXPIRES_SECONDS)
    except Exception:
        logger.exception("Could not wake the intake workers; the sweep will")
        return False
    _last_wake = now  # only a sent drain counts: after a failure the next one tries again
    return True


def _wake_for(inbound_event_id: int) -> None:
    if not inbound_workers_wake():
        # Back to "never queued", so the sweep takes it after the lease without waiting
        # for the queue to run short. Should this UPDATE fail too, the sweep still takes it
        # as "queued and lost" (its mark is as old as the request).
        InboundEvent.objects.filter(pk=inbound_event_id).update(enqueued_at=None)


def inbound_events_drain(
    *,
    time_budget: float | None = None,
    linger: float | None = None,
    each: Callable[[], AbstractContextManager[Any]] = nullcontext,
) -> int:
    """Process received events, oldest first, until none has come for `linger` seconds
    (DRAIN_LINGER_SECONDS) or `time_budget` (DRAIN_BUDGET_SECONDS) is spent, when a fresh
    drain is woken for the rest. Returns how many events it claimed. Each event is
    processed inside `each()` (the task's inline outbox delivery, which sends an event's
    SFA messages when its block ends: per event, not per drain).

    Any number of drains (and per-event tasks) may run at once: each claim skips the rows
    other workers hold, and processing checks the status under the row lock, so each
    event is processed once. A drain that finds work wakes one more, so a backlog spreads
    over the free worker processes. Each chunk a drain commits beats DRAIN_HEARTBEAT (at
    most every DRAIN_BEAT_SECONDS), which tells the requeue sweep the backlog is moving."""
    budget = DRAIN_BUDGET_SECONDS if time_budget is None else time_budget
    linger = DRAIN_LINGER_SECONDS if linger is None else linger
    started = idle_since = monotonic()
    claimed = 0
    while True:
        now = monotonic()
        if now - started >= budget:
            inbound_workers_wake(force=True)
            return claimed
        with each():
            inbound = inbound_event_process(
                inbound_event_id=None, time_budget=budget - (now - started), progress=_drain_beat
            )
        if inbound is None:
            if monotonic() - idle_since >= linger:
                return claimed
            sleep(DRAIN_POLL_SECONDS)
            continue
        claimed += 1
        idle_since = monotonic()
        if claimed == 1:
            inbound_workers_wake(force=True)  # there was work: recruit another process


# The fields a new event's INSERT names (see _insert_received); the others are nullable
# and NULL on a new event.
_RECEIVED_FIELDS = (
    "source",
    "received_at",
    "body",
    "headers",
    "dedup_key",
    "status",
    "reason",
    "result",
    "attempts",
    "items_done",
    "claimed_by",
    "enqueued_at",
)


@cache
def _received_insert() -> tuple[str, tuple[Field, ...]]:
    meta = InboundEvent._meta
    by_name = {f.name: f for f in meta.concrete_fields}
    fields = tuple(by_name[name] for name in _RECEIVED_FIELDS)
    quote = connection.ops.quote_name
    # Names from the model's own metadata (a concrete field always has its column);
    # every value is a parameter.
    columns = ", ".join(quote(str(f.column)) for f in fields)
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({columns})"  # noqa: S608
        f" VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {quote(str(meta.pk.column))}"
    )
    return sql, fields


def _insert_received(*, source: Source, **given: Any) -> InboundEvent:
    """INSERT one received event with a statement built once per process.

    `InboundEvent.objects.create()` compiled the INSERT and prepared seventeen fields on
    every request: a sixth of a webhook's Python time (0.68 → 0.57 ms in issue #17's
    profile). Each value is still prepared by its own field (JSON, datetimes on each
    database) and defaults are the model's; a test holds the row to the one create()
    writes, field by field.
    """
    sql, fields = _received_insert()
    given["source"] = source.pk
    values = {f.name: given[f.name] if f.name in given else f.get_default() for f in fields}
    with connection.cursor() as cursor:
        cursor.execute(sql, [f.get_db_prep_save(values[f.name], connection) for f in fields])
        (pk,) = cursor.fetchone()
    values["source"] = source
    event = InboundEvent(pk=pk, **values)
    event._state.adding = False  # as if read back: saving it again is an UPDATE
    return event


def inbound_event_receive(
    *, source: Source, body: str, headers: dict[str, str], dedup_key: str
) -> tuple[InboundEvent, bool]:
    """Store a request durably before it is answered; enqueue processing on commit.

    Returns (event, created). A redelivery (same dedup key) is stored too, as a
    `duplicate` pointing at the original, and is not processed: the unique index decides,
    so two copies arriving at the same moment cannot both be processed.
    """
    dedup_key = dedup_key[:200]
    if printable(dedup_key) != dedup_key:
        # A sender's id with a lone surrogate ("\ud800") cannot be stored as text: the
        # key becomes its hash, so the request is stored and answered, not a 500.
        digest = hashlib.sha256(dedup_key.encode("utf-8", "surrogatepass")).hexdigest()
        dedup_key = f"sha256-id:{digest}"
    # One row needs no transaction of its own: in autocommit the INSERT is one round
    # trip instead of BEGIN + INSERT + COMMIT (two of the six a webhook cost; issue #17's
    # profile), and the on-commit enqueue runs right after it. Inside a caller's
    # transaction a savepoint keeps a duplicate's IntegrityError from breaking it.
    nested = transaction.atomic() if connection.in_atomic_block else nullcontext()
    try:
        with nested:
            # Marked as queued in the INSERT itself: the wake-up follows right after the
            # commit, and a second UPDATE (its own commit, a WAL flush) after the send cost
            # a webhook a third of its time (issue #17's profile). A failed wake-up clears
            # the mark; a process killed between commit and wake-up leaves a mark that the
            # requeue sweep treats as a lost message (see _wake_for).
            event = _insert_received(
                source=source,
                body=body,
                headers=headers,
                dedup_key=dedup_key,
                enqueued_at=timezone.now(),
            )
        transaction.on_commit(lambda: _wake_for(event.pk))
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
#
# A body is processed in chunks of CHUNK_SIZE items, each chunk one transaction that also
# writes each item's InboundItemResult and moves the event's cursor (`items_done`). So a
# batch commits as it goes (a 5,000-event body no longer holds its leads' locks and its
# teams' routing locks for minutes, nor meets the task's time limit), and whatever stops
# it — a crash, a killed worker, the time limit — loses at most the chunk in progress,
# which rolled back whole: the next run continues after the last committed chunk and no
# item is applied twice.
#
# Runs of the same event do not interleave: each chunk locks the event's row, and the
# worker running the chunks leaves a lease on it between them. A task for an event whose
# lease another worker holds does nothing (that worker finishes it); a worker that died
# between chunks is taken over once its lease ran out. A worker killed inside a chunk
# leaves no lease: the lease is written by the chunk, so it rolled back with it.

CHUNK_SIZE = 100
# Renewed by every chunk (a chunk takes seconds); only a worker that died between two
# chunks leaves one that has to run out.
LEASE = timedelta(seconds=60)
# A task run processes chunks for about this long, then hands the rest to a fresh task
# (as the bulk rescore does), far inside the soft time limit.
TIME_BUDGET_SECONDS = 60.0
_NO_BUDGET = -1.0


@dataclass
class _Run:
    """One processing run of one event: its parsed body (read by its first chunk, not
    again by each) and the name under which it holds the lease."""

    worker: str
    # The event this run works on: given, or the one its first chunk claimed.
    event_id: int | None = None
    source: Source | None = None
    items: list[Item] | None = None
    problem: str = ""  # why the body could not be read (then items stays None)
    chunks: int = 0
    # Item rows this run wrote, for the counts when the run did the whole event.
    rows: list[InboundItemResult] = field(default_factory=list)


def _item_problem(error: DomainError | ValueProblem, item: Item) -> tuple[str, str]:
    """(sender field, message) of an item that could not be applied."""
    message = getattr(error, "message", str(error))
    if getattr(error, "code", "") == "no_identity" and item.hint:
        message = f"{message} {item.hint}"
    return getattr(error, "field", ""), message


def _sender_field(item: Item, name: str) -> str:
    return f"{item.fields_at}.{name}" if item.fields_at and name else name


def _apply_item(
    inbound: InboundEvent, source: Source, index: int, item: Item
) -> tuple[UpsertResult, bool]:
    try:
        data = lead_data_from_fields(source.mapping, item.fields)
    except ValueProblem as problem:
        raise ValueProblem(str(problem), field=_sender_field(item, problem.field)) from None
    person_id = item.external_id or data.external_id
    try:
        result = lead_upsert(
            email=data.email,
            attributes=data.attributes,
            company=data.company or None,
            source=source.slug,
            external_ids={source.external_id_system: person_id} if person_id else None,
        )
    except InvalidValue as invalid:
        field = "" if invalid.field == "source" else data.origin(invalid.field)
        raise ValueProblem(invalid.message, field=_sender_field(item, field)) from None
    new_events: list[EngagementEvent] = []
    if item.event is not None:
        try:
            event, created = event_record(
                lead=result.lead,
                kind=item.event.kind,
                occurred_at=item.event.occurred_at or inbound.received_at,
                properties=item.event.properties,
                source=source.slug,
                # Without the sender's id, the inbound event and position name the event,
                # so re-processing the same inbound event records nothing twice.
                external_id=item.event.external_id or f"inbound:{inbound.pk}:{index}",
                received_at=inbound.received_at,
            )
        except InvalidValue as invalid:
            raise ValueProblem(invalid.message, field=invalid.field) from None
        if created:
            new_events.append(event)
    _score_changes(result, new_events)
    return result, bool(new_events)


def _item_result(
    inbound: InboundEvent, source: Source, index: int, item: Item
) -> InboundItemResult:
    row = InboundItemResult(inbound_event=inbound, index=index, label=printable(item.label)[:200])
    if item.skip:
        row.outcome, row.reason = ItemOutcome.SKIPPED, printable(item.skip)
        return row
    try:
        # A savepoint per item: one person without an e-mail does not undo the others.
        with transaction.atomic():
            result, created_event = _apply_item(inbound, source, index, item)
    except (DomainError, ValueProblem) as error:
        field, message = _item_problem(error, item)
        row.outcome, row.field = ItemOutcome.FAILED, printable(field)[:200]
        row.reason = printable(message)
        return row
    row.outcome, row.lead, row.event_created = ItemOutcome.APPLIED, result.lead, created_event
    return row


def _error_text(label: str, field: str, reason: str) -> str:
    return f"{label}: {field}: {reason}" if field else f"{label}: {reason}"


def _finish(inbound: InboundEvent, run: _Run) -> None:
    """Counts, the first errors and notes, and the final status, from the item rows."""
    if len(run.rows) == inbound.items_total:
        # This run wrote every row (nearly always so: one chunk, a single event). They
        # are in memory, in order: no query.
        mine = run.rows
        counts = {
            "applied": sum(r.outcome == ItemOutcome.APPLIED for r in mine),
            "skipped": sum(r.outcome == ItemOutcome.SKIPPED for r in mine),
            "failed": sum(r.outcome == ItemOutcome.FAILED for r in mine),
            "events_created": sum(r.event_created for r in mine),
        }
        failed = [r for r in mine if r.outcome == ItemOutcome.FAILED]
        errors = [(r.label, r.field, r.reason) for r in failed[:100]]
        notes = [(r.label, r.reason) for r in mine if r.outcome == ItemOutcome.SKIPPED][:20]
        leads: Any = [r.lead_id for r in mine if r.lead_id is not None]
    else:
        rows = InboundItemResult.objects.filter(inbound_event=inbound).order_by()
        counts = rows.aggregate(
            applied=Count("pk", filter=Q(outcome=ItemOutcome.APPLIED)),
            skipped=Count("pk", filter=Q(outcome=ItemOutcome.SKIPPED)),
            failed=Count("pk", filter=Q(outcome=ItemOutcome.FAILED)),
            events_created=Count("pk", filter=Q(event_created=True)),
        )
        errors = list(
            rows.filter(outcome=ItemOutcome.FAILED)
            .order_by("index")
            .values_list("label", "field", "reason")[:100]
        )
        notes = list(
            rows.filter(outcome=ItemOutcome.SKIPPED)
            .order_by("index")
            .values_list("label", "reason")[:20]
        )
        leads = rows.filter(lead__isnull=False).order_by("index").values_list("lead_id", flat=True)
    inbound.result = {
        "items": inbound.items_total or 0,
        **counts,
        "leads": list(dict.fromkeys(leads))[:100],
        # "field" only where a value was refused (not for "no e-mail and no known id").
        "errors": [{"item": i, **({"field": f} if f else {}), "reason": r} for i, f, r in errors],
        "notes": [{"item": i, "note": n} for i, n in notes],
    }
    if counts["failed"]:
        shown = "; ".join(_error_text(*error) for error in errors[:5])
        more = counts["failed"] - 5
        inbound.status = InboundStatus.FAILED
        inbound.reason = shown + (f" (+{more} more)" if more > 0 else "")
    else:
        inbound.status = InboundStatus.PROCESSED
        inbound.reason = ""


def _parse(inbound: InboundEvent, run: _Run) -> None:
    source = run.source = inbound.source
    try:
        # The body is stored as received; NULs go here, as at the door (see without_nul).
        run.items = ADAPTERS[source.kind].parse(loads_without_nul(inbound.body), source=source)
    except ValueError as error:  # JSONDecodeError and ShapeError both are
        run.problem = str(error)


def _process_locked(inbound: InboundEvent) -> None:
    """Apply the next chunk of the event, whose row the caller's transaction has locked,
    and finish the event after its last chunk. The run comes with the instance."""
    run: _Run = inbound._run  # type: ignore[attr-defined]
    if run.source is None:
        _parse(inbound, run)
    if run.items is None or run.source is None:
        inbound.status = InboundStatus.FAILED
        inbound.reason = printable(run.problem)
        return
    total = inbound.items_total = len(run.items)
    start = inbound.items_done
    stop = min(start + CHUNK_SIZE, total)
    kept: set[int] = set()
    if start or inbound.attempts > 1:
        # Items with a row were applied (or skipped) by an earlier run and are passed over:
        # after a re-process the cursor starts again at 0 and only the failed items' rows
        # were removed. (The first chunk of a first run has nothing to look for.)
        kept = set(
            InboundItemResult.objects.filter(
                inbound_event=inbound, index__gte=start, index__lt=stop
            ).values_list("index", flat=True)
        )
    rows = [
        _item_result(inbound, run.source, index, run.items[index])
        for index in range(start, stop)
        if index not in kept
    ]
    InboundItemResult.objects.bulk_create(rows)
    run.rows += rows
    inbound.items_done = stop
    if stop >= total:
        _finish(inbound, run)


_MORE, _DONE, _HELD = "more", "done", "held"


def _process_chunk(run: _Run) -> tuple[str, InboundEvent | None]:
    """One chunk of `run.event_id`; without an event yet, of the next one to claim."""
    with transaction.atomic():
        # The row lock makes a second worker wait for this chunk's commit, then see the
        # new cursor and lease. Only this row: a lock on the joined source would make
        # every worker and every intake request of that source (its INSERT checks the
        # foreign key) wait. NO KEY: the item rows that refer to it may still be written.
        event_id = run.event_id
        # A claim skips the rows other workers hold: each takes a different event
        # instead of queueing behind one (PostgreSQL; SQLite has no row locks).
        locked = InboundEvent.objects.select_for_update(
            of=("self",), no_key=True, skip_locked=event_id is None
        )
        if run.source is None:
            locked = locked.select_related("source").defer("headers")  # the first reads the body
        else:
            locked = locked.defer("body", "headers")
        now = timezone.now()
        if event_id is None:
            # The oldest received event whose lease (a worker between two chunks of it)
            # is not running: the (status, received_at) index.
            inbound = (
                locked.filter(status=InboundStatus.RECEIVED)
                .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
                .order_by("received_at", "pk")
                .first()
            )
            if inbound is None:
                return _DONE, None
            run.event_id = inbound.pk
        else:
            inbound = locked.filter(pk=event_id).first()
        if inbound is None or inbound.status != InboundStatus.RECEIVED:
            return _DONE, inbound
        if (
            inbound.claimed_by not in ("", run.worker)
            and inbound.lease_until is not None
            and inbound.lease_until > now
        ):
            return _HELD, inbound
        if inbound.claimed_by != run.worker:
            inbound.claimed_by = run.worker
            inbound.attempts += 1
        inbound.lease_until = now + LEASE
        if run.source is not None:
            inbound.source = run.source
        inbound._run = run  # type: ignore[attr-defined]
        _process_locked(inbound)
        fields = ["items_total", "items_done", "claimed_by", "lease_until", "attempts"]
        if inbound.status != InboundStatus.RECEIVED:
            inbound.processed_at = timezone.now()
            inbound.claimed_by, inbound.lease_until = "", None
            fields += ["status", "reason", "result", "processed_at"]
        inbound.save(update_fields=fields)
        run.chunks += 1
        return (_MORE if inbound.status == InboundStatus.RECEIVED else _DONE), inbound


class _GaveUp(Exception):
    """A chunk met lock conflicts three times."""


def _process_chunk_retrying(run: _Run) -> tuple[str, InboundEvent | None]:
    for attempt in range(3):
        try:
            # A claim whose chunk rolled back retries the event it claimed (run.event_id).
            return _process_chunk(run)
        except OperationalError as error:  # deadlock between two batches: try again
            if attempt == 2:
                raise _GaveUp() from error
    raise AssertionError("unreachable")


def _release(inbound_event_id: int, worker: str, **changes: Any) -> None:
    InboundEvent.objects.filter(
        Q(claimed_by__in=("", worker)) | Q(lease_until__lt=timezone.now()),
        pk=inbound_event_id,
        status=InboundStatus.RECEIVED,
    ).update(claimed_by="", lease_until=None, **changes)


def _mark_failed(inbound_event_id: int, worker: str, reason: str) -> None:
    _release(
        inbound_event_id,
        worker,
        status=InboundStatus.FAILED,
        reason=printable(reason[:2000]),
        processed_at=timezone.now(),
    )


def inbound_event_process(
    *,
    inbound_event_id: int | None,
    time_budget: float | None = _NO_BUDGET,
    progress: Callable[[], None] | None = None,
) -> InboundEvent | None:
    """Turn a received inbound event into leads and events, chunk by chunk; safe to run
    twice, and at once (see the section's comment). With `inbound_event_id=None` the
    oldest received event no other worker holds is claimed (None when there is none).

    Items that cannot become a lead (no e-mail and no known id, a value that does not fit
    its column) get an item result with the field and the reason, and leave the event
    `failed` with the reason; the other items of the same body are applied. After
    `time_budget` seconds (default TIME_BUDGET_SECONDS; None: no limit) the rest is
    handed to a fresh task. Lock conflicts between two batches touching the same leads
    are retried; any other error marks the event failed, keeping the chunks that
    committed (a re-process continues from them), so nothing stays silently `received`.
    `progress` is called after each chunk committed (the drain's heartbeat).
    """
    budget = TIME_BUDGET_SECONDS if time_budget == _NO_BUDGET else time_budget
    started = monotonic()
    worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:100]
    run = _Run(worker=worker, event_id=inbound_event_id)
    try:
        while True:
            chunks = run.chunks
            state, inbound = _process_chunk_retrying(run)
            if progress is not None and run.chunks > chunks:
                progress()
            if state != _MORE or inbound is None:
                return inbound
            if budget is not None and monotonic() - started >= budget:
                _release(inbound.pk, worker)
                _enqueue(inbound.pk)
                return inbound
    except SoftTimeLimitExceeded:
        if run.event_id is None:
            return None  # stopped before it claimed anything: nothing to hand over
        # The chunk in progress rolled back. With chunks committed in this run the rest is
        # handed over; a single chunk that outlasts the time limit would do so forever.
        if run.chunks:
            _release(run.event_id, worker)
            _enqueue(run.event_id)
        else:
            _mark_failed(
                run.event_id,
                worker,
                f"Internal error: {CHUNK_SIZE} items took longer than the task's time limit.",
            )
    except _GaveUp as error:
        logger.exception("Inbound event %s failed after retries", run.event_id)
        if run.event_id is not None:
            _mark_failed(run.event_id, worker, f"Database error: {error.__cause__}")
    except Exception as error:
        logger.exception("Inbound event %s could not be processed", run.event_id)
        if run.event_id is None:
            raise  # no event to blame (the claim's own query failed): the task's error
        _mark_failed(run.event_id, worker, f"Internal error: {error!r}")
    if run.event_id is None:
        return None
    return InboundEvent.objects.filter(pk=run.event_id).first()


def inbound_event_reprocess(*, inbound_event_id: int) -> bool:
    """Put a failed event back to `received` and enqueue it (after a mapping fix).

    Only its failed items are tried again: the applied ones keep their rows, which the
    processing passes over. A conditional UPDATE is the claim: clicking twice, or a worker
    racing the admin, re-queues it once. Returns False when the event was not failed.
    """
    with transaction.atomic():
        # An event whose body was removed (erasure, retention) has nothing to re-process.
        claimed = InboundEvent.objects.filter(
            pk=inbound_event_id, status=InboundStatus.FAILED, redacted_at__isnull=True
        ).update(
            status=InboundStatus.RECEIVED,
            reason="",
            processed_at=None,
            items_done=0,
            claimed_by="",
            lease_until=None,
        )
        if claimed:
            InboundItemResult.objects.filter(
                inbound_event_id=inbound_event_id, outcome=ItemOutcome.FAILED
            ).delete()
            transaction.on_commit(lambda: _enqueue(inbound_event_id))
    return bool(claimed)


def _unlocked_ids(events: QuerySet[InboundEvent], order: str, limit: int) -> list[int]:
    events = events.order_by(order)
    if connection.vendor == "postgresql":
        # A worker processing an event holds its row lock until it commits: that event is
        # neither lost nor to be queued twice (the copy would only wait on the lock, holding
        # a worker process). SQLite has no row locks; there a copy finds it processed.
        events = events.select_for_update(skip_locked=True, of=("self",))
    return list(events.values_list("pk", flat=True)[:limit])


def _drains_last_beat() -> datetime | None:
    return Heartbeat.objects.filter(name=DRAIN_HEARTBEAT).values_list("beat_at", flat=True).first()


def inbound_events_requeue_stale(
    *,
    lease: timedelta | None = None,
    limit: int = 500,
    queue_length: Callable[[str], int | None] = broker_queue_length,
) -> int:
    """Enqueue again the events still `received` that no task is going to come for.

    Run by beat every INBOUND_REQUEUE_SWEEP_SECONDS. An event is overdue once its last
    enqueue is older than the lease (INBOUND_REQUEUE_LEASE_SECONDS): never handed to the
    broker (it was down when the webhook came; the sender had its 202 and the row is all
    there is), or handed over and lost since (a drain lost with a Redis restarted without
    persistence, expired in a long queue; a worker killed holding it unacknowledged, which
    Redis gives back only after the visibility timeout, an hour).

    A slow backlog is not a loss. Webhooks send no message of their own: drains claim
    stored events oldest first, one drain message covering many events, so the length of
    the intake queue says nothing about them. What does is the drains' heartbeat
    (DRAIN_HEARTBEAT), beaten by every chunk a drain commits: while a drain committed work
    within the lease, every overdue event is in the backlog they are working through, oldest
    first (a claim takes the oldest one nobody holds, whatever its enqueue), and nothing is
    sent, so the catch-up after an outage is not multiplied by the sweep exactly when the
    workers are loaded, nor are the drains pushed out of the queue until they expire.

    Only when no drain committed anything for a lease (none runs: all lost, expired, or
    their workers killed) is work sent: one drain, which recruits more as it finds work and
    also takes events not yet overdue, and, for the overdue events themselves, a task each
    (oldest first, `limit` a run), which does not expire in a long queue. Those per-event
    tasks are left out while the intake queue still holds at least as many messages as
    there are overdue events (every one of them may be in it: a worker down, the previous
    sweep's tasks waiting). A copy is harmless (processing takes the row lock and skips
    events no longer `received`), and each event is queued again at most once a lease, so
    there is no storm. Returns how many per-event tasks were sent.
    """
    lease = timedelta(seconds=settings.INBOUND_REQUEUE_LEASE_SECONDS) if lease is None else lease
    cutoff = timezone.now() - lease
    received = InboundEvent.objects.filter(status=InboundStatus.RECEIVED)
    overdue = received.filter(enqueued_at__lt=cutoff)
    with transaction.atomic():  # the locks only decide what to skip; released before sending
        never_queued = _unlocked_ids(
            received.filter(enqueued_at__isnull=True, received_at__lt=cutoff), "received_at", limit
        )
        lost = _unlocked_ids(overdue, "enqueued_at", limit - len(never_queued))
    if not (never_queued or lost):
        return 0
    beat_at = _drains_last_beat()
    if beat_at is not None and beat_at >= cutoff:
        logger.info(
            "%d inbound event(s) past their lease while the drains work through the "
            "backlog (last commit %.0f s ago): not re-enqueued",
            len(never_queued) + len(lost),
            (timezone.now() - beat_at).total_seconds(),
        )
        return 0
    logger.warning(
        "No drain committed anything since %s, with inbound events waiting: waking one",
        beat_at.isoformat() if beat_at else "ever",
    )
    if lost:
        # Outside the transaction: the broker is a network call. A full batch may hide more
        # overdue events; count them all (those being processed included: fewer skips).
        overdue_count = len(lost) if len(lost) < limit - len(never_queued) else overdue.count()
        waiting = queue_length("intake")
        if waiting is not None and waiting >= overdue_count:
            logger.info(
                "%d inbound event(s) past their lease, %d message(s) still in the intake "
                "queue: a backlog, not re-enqueued",
                overdue_count,
                waiting,
            )
            lost = []
    if never_queued:
        logger.warning("Enqueueing %d inbound event(s) never queued", len(never_queued))
    if lost:
        logger.warning(
            "Re-enqueueing %d inbound event(s) queued over %d s ago and still not processed",
            len(lost),
            lease.total_seconds(),
        )
    for pk in never_queued + lost:
        _enqueue(pk)
    # The drain last: woken first, it would claim the oldest of these events and hold its
    # row while `_enqueue` above waits to mark that row queued.
    inbound_workers_wake(force=True)
    return len(never_queued) + len(lost)


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
    # A large import's record: its MQLs are handed on by a task after it (one wave).
    lead_import_id: int | None = None

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
    *,
    data: bytes,
    source: str = "csv",
    dry_run: bool = False,
    event: str = "",
    started_by: User | None = None,
) -> ImportReport:
    """Create or update one lead per CSV row, by e-mail (re-importing changes nothing).

    With `event` (a trade show's name, e.g. business cards from 展示会), every row also
    records a trade-show visit on the lead, dated by the card's exchange date when the
    export has one; re-importing records it once (the e-mail and day are its id).

    Each row is its own transaction: a bad row is reported with its line number and
    the others are imported. With `dry_run` every row is read and checked, and whether
    it would create or update a lead is reported, but nothing is written.

    A large import (IMPORT_WAVE_MIN rows or more) scores its rows without the MQL policy:
    each row's transaction records its lead on the import's LeadImport, and the task
    `hand_off_lead_import` applies the policy to them after the last row, their MQLs one
    wave (`started_by` its user). Not in this call: a request must not wait for it, nor
    lose it to its worker's timeout. The task is sent when the import starts (it waits
    while rows keep coming, and hands on the committed ones of an import that went silent)
    and again when it ends, with an error too.
    """
    report = ImportReport(dry_run=dry_run)
    received_at = timezone.now()  # the upload: each card's visit is "received" with it
    try:
        sheet = read_rows(data)
    except CsvProblem as problem:
        report.errors.append((0, str(problem)))
        return report
    report.encoding = sheet.encoding
    report.columns = sheet.columns
    report.ignored_columns = sheet.ignored
    mapping = {"fields": {header: target for header, target in sheet.columns.items()}}
    # A large import's MQLs are one wave, handed on together after its rows (a publish's
    # are the same): its leads are scored row by row, the policy applied at the end.
    lead_import = None
    if len(sheet.rows) >= IMPORT_WAVE_MIN and not dry_run:
        lead_import = _lead_import_start(source=source, started_by=started_by)
        report.lead_import_id = lead_import.pk
    progressed = monotonic()
    try:
        for line, row in sheet.rows:
            report.rows += 1
            _import_row(report, lead_import, line, row, mapping, source, event, received_at)
            if lead_import is not None and monotonic() - progressed >= IMPORT_PROGRESS_SECONDS:
                progressed = monotonic()
                LeadImport.objects.filter(pk=lead_import.pk).update(
                    rows=report.rows, progressed_at=timezone.now()
                )
    finally:
        if lead_import is not None:
            # With an error too: the rows committed so far are handed on now.
            _lead_import_finish(lead_import, rows=report.rows)
    return report


def _import_row(
    report: ImportReport,
    lead_import: LeadImport | None,
    line: int,
    row: dict[str, str],
    mapping: dict[str, Any],
    source: str,
    event: str,
    received_at: datetime,
) -> None:
    try:
        lead_data = lead_data_from_fields(mapping, row)
    except ValueProblem as problem:
        report.errors.append((line, str(problem)))
        return
    if not lead_data.email:
        report.errors.append((line, _("No e-mail address.")))
        return
    if report.dry_run:
        if Lead.objects.with_email(lead_data.email).exists():
            report.updated += 1
        else:
            report.created += 1
        return
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
                    received_at=received_at,
                )
                if created:
                    new_events.append(visit)
            _score_changes(result, new_events, apply_policy=lead_import is None)
            if lead_import is not None:
                # In the row's transaction: a row that committed is a row handed on.
                ImportedLead.objects.bulk_create(
                    [ImportedLead(lead_import=lead_import, lead=result.lead)],
                    ignore_conflicts=True,  # the same e-mail on two rows
                )
    except InvalidValue as error:
        report.errors.append((line, f"{lead_data.origin(error.field)}: {error.message}"))
        return
    except DomainError as error:
        report.errors.append((line, error.message))
        return
    if result.created:
        report.created += 1
    elif result.changed:
        report.updated += 1
    else:
        report.unchanged += 1


# --- A large import's hand-off ---------------------------------------------------------
#
# The import's rows commit one by one; its MQLs go on together after it, in the task
# `hand_off_lead_import` (idempotent: the policy is re-checked under each lead's lock, and
# a lead already MQL no longer qualifies). The task is sent when the import starts, with a
# countdown: while rows keep coming it waits; an import silent for IMPORT_STALL_SECONDS
# has stopped without reaching its end (the web worker killed at its timeout) and its
# committed rows are handed on. It is sent again at the end, to run at once.

# An import marks its progress at most this often (one UPDATE, not one per row).
IMPORT_PROGRESS_SECONDS = 5.0
# Longer than any web worker's timeout; far below the broker's visibility timeout (1 h),
# which a countdown must stay under.
IMPORT_STALL_SECONDS = 300.0
# A lead that still qualifies after a hand-off was busy (a rep or an event held it, SKIP
# LOCKED): it is tried again this much later, up to IMPORT_HAND_OFF_RUNS runs in all.
IMPORT_RETRY_SECONDS = 60.0
IMPORT_HAND_OFF_RUNS = 5


def _send_hand_off(lead_import_id: int, countdown: float = 0.0) -> None:
    from integrations.tasks import hand_off_lead_import

    try:
        hand_off_lead_import.apply_async((lead_import_id,), countdown=countdown)
    except Exception:
        # The rows are committed; an import must not fail on the broker. The other send
        # (at the start or at the end) and the sweep of imports left over hand them on.
        logger.exception("Could not enqueue the hand-off of lead import %s", lead_import_id)


def _lead_import_start(*, source: str, started_by: User | None) -> LeadImport:
    lead_import = LeadImport.objects.create(source=source, started_by=started_by)
    transaction.on_commit(lambda: _send_hand_off(lead_import.pk, IMPORT_STALL_SECONDS))
    return lead_import


def _lead_import_finish(lead_import: LeadImport, *, rows: int) -> None:
    now = timezone.now()
    LeadImport.objects.filter(pk=lead_import.pk).update(
        rows=rows, progressed_at=now, finished_at=now
    )
    transaction.on_commit(lambda: _send_hand_off(lead_import.pk))


def _still_qualifying(lead_import: LeadImport, model: CompiledModel) -> list[int]:
    """The import's pending leads that the MQL policy would move now (scoring.policy's own
    SQL): after a hand-off, those it skipped because another transaction held them."""
    recycled, recycled_params = policy.last_recycled_sql()
    reason, reason_params = policy.mql_reason_sql(
        model,
        stage="l.stage",
        fit="s.fit",
        engagement="s.engagement",
        hand_raised_at="s.hand_raised_at",
        recycled_at="r.recycled_at",
        now=timezone.now(),
    )
    quote = connection.ops.quote_name
    # Table names from the models' metadata, fragments from scoring.policy, values bound.
    sql = (
        f"SELECT i.lead_id FROM {quote(ImportedLead._meta.db_table)} i"  # noqa: S608
        f" JOIN {quote(Lead._meta.db_table)} l ON l.id = i.lead_id"
        f" JOIN {quote(LeadScore._meta.db_table)} s ON s.lead_id = i.lead_id"
        f" LEFT JOIN {recycled} r ON r.lead_id = i.lead_id"
        f" WHERE i.lead_import_id = %s AND i.pending = %s AND s.model_id = %s"
        f" AND {reason} IS NOT NULL ORDER BY i.lead_id"
    )
    params = [*recycled_params, lead_import.pk, True, model.id, *reason_params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def lead_import_hand_off(*, lead_import_id: int) -> float | None:
    """Apply the MQL policy to the leads a large import's committed rows touched, its MQLs
    one wave (leads_hand_off_imported; its hand-raisers first and outside it). Returns the
    seconds after which to run again (the import still going; leads that were busy), or
    None when there is nothing more to do. Safe to run twice, and at once: a lead handed on
    no longer qualifies.

    Waits while the import is still going (a row within IMPORT_STALL_SECONDS); one that
    went silent stopped half-way, and what it committed is handed on. A lead that still
    qualifies afterwards was held by another transaction and is tried again
    IMPORT_RETRY_SECONDS later, IMPORT_HAND_OFF_RUNS runs in all (after that the next
    event or rescore of the lead applies the policy)."""
    lead_import = LeadImport.objects.select_related("started_by").filter(pk=lead_import_id).first()
    if lead_import is None:
        return None
    now = timezone.now()
    if lead_import.finished_at is None:
        silent = (now - lead_import.progressed_at).total_seconds()
        if silent < IMPORT_STALL_SECONDS:
            return IMPORT_STALL_SECONDS - silent
    pending = ImportedLead.objects.filter(lead_import=lead_import, pending=True)
    rows = list(pending.order_by("pk").values_list("pk", "lead_id"))
    lead_ids = [lead_id for _pk, lead_id in rows]
    if not lead_ids:
        if lead_import.handed_off_at is None:
            LeadImport.objects.filter(pk=lead_import.pk).update(handed_off_at=now)
        return None
    with translation.override(settings.LANGUAGE_CODE):  # the wave's name, for everyone
        label = _("Import of %(rows)s rows (%(source)s)") % {
            "rows": lead_import.rows,
            "source": lead_import.source,
        }
    # Counted before the work, in its own commit: a run that keeps failing (not only one
    # that keeps finding busy leads) uses up the runs, and the stale sweep stops sending.
    runs = lead_import.hand_off_runs + 1
    LeadImport.objects.filter(pk=lead_import.pk).update(hand_off_runs=F("hand_off_runs") + 1)
    moved = leads_hand_off_imported(
        lead_ids=lead_ids,
        key=f"import:{lead_import.pk}",
        label=label,
        started_by=lead_import.started_by,
    )
    model = published_model()
    busy = _still_qualifying(lead_import, model) if model is not None else []
    if runs >= IMPORT_HAND_OFF_RUNS:
        if busy:
            logger.warning(
                "Lead import %s: %d lead(s) still busy after %d hand-off runs; their next "
                "event or rescore applies the policy",
                lead_import.pk,
                len(busy),
                runs,
            )
        busy = []
    with transaction.atomic():
        # Up to the last row read (not an IN list of every lead): rows an import still
        # going commits meanwhile stay pending for its end's run.
        pending.filter(pk__lte=rows[-1][0]).exclude(lead_id__in=busy).update(pending=False)
        LeadImport.objects.filter(pk=lead_import.pk).update(
            mqls=F("mqls") + moved,
            handed_off_at=None if busy else timezone.now(),
        )
    return IMPORT_RETRY_SECONDS if busy else None


def lead_imports_hand_off_stale() -> int:
    """Send the hand-off again for large imports not handed on whose task was lost (the
    broker down at both its start and its end): finished, or silent for longer than
    IMPORT_STALL_SECONDS, and not handed on for IMPORT_STALL_SECONDS more, with hand-off
    runs left (one that failed IMPORT_HAND_OFF_RUNS times stays as it is, its runs shown
    in the admin's list of imports). Run by beat; the task is safe to run twice. Returns
    how many were sent."""
    cutoff = timezone.now() - timedelta(seconds=2 * IMPORT_STALL_SECONDS)
    ids = list(
        LeadImport.objects.filter(
            handed_off_at__isnull=True,
            progressed_at__lt=cutoff,
            hand_off_runs__lt=IMPORT_HAND_OFF_RUNS,
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:100]
    )
    for lead_import_id in ids:
        _send_hand_off(lead_import_id)
    return len(ids)
