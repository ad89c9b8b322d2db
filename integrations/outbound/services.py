"""Writes of the outbound side: enqueue with the stage change, claim, deliver, record,
replay; and SFA feedback moving leads through the lifecycle.

Delivery is three steps so that no transaction is open while we wait on a vendor:
1. claim (short transaction): due rows → in_flight with a lease and a claim token;
2. call the connector (no transaction, bounded by the destination's timeout);
3. record (short transaction): delivered, or pending with a backoff, or dead.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import httpx
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from handoff.timeline import timeline_mark_sfa_delivered
from integrations.outbound import selectors
from integrations.outbound.connectors.base import (
    DeliveryError,
    DeliveryResult,
    error_from_transport,
    excerpt,
)
from integrations.outbound.mapping import build_payload, scores_of, transition_facts
from integrations.outbound.models import (
    OPEN_STATUSES,
    Destination,
    FeedbackEvent,
    FeedbackOutcome,
    FeedbackResult,
    MessageStatus,
    OutboundEvent,
    OutboxMessage,
)
from leadflow.errors import DomainError, InvalidTransition, NotFound
from leadflow.japan import join_words
from leadflow.lifecycle import lead_mark_lost, lead_mark_opportunity, lead_mark_won, lead_transition
from leadflow.models import Lead, LeadExternalId, Stage, StageTransition

logger = logging.getLogger(__name__)

# Cap for a vendor's Retry-After, so a misconfigured proxy cannot park a message for weeks.
MAX_RETRY_AFTER_SECONDS = 24 * 3600


# --- Enqueue --------------------------------------------------------------------------


def events_for_transition(*, from_stage: str, to_stage: str) -> list[str]:
    """The outbound events a stage move produces (empty for moves nobody outside cares about).

    Recycled means "back to marketing": it also produces a `recycled` event, which only
    marketing-side destinations receive, so the MA tool can re-nurture the lead.
    """
    if to_stage == Stage.MQL:
        return [OutboundEvent.MQL_CREATED]
    if from_stage == Stage.MQL and to_stage == Stage.SQL:
        return [OutboundEvent.ACCEPTED]
    if to_stage == Stage.RECYCLED:
        if from_stage == Stage.MQL:
            return [OutboundEvent.REJECTED, OutboundEvent.RECYCLED]
        if from_stage in (Stage.SQL, Stage.OPPORTUNITY):
            return [OutboundEvent.LOST, OutboundEvent.RECYCLED]
        return [OutboundEvent.RECYCLED]
    if to_stage == Stage.CUSTOMER and from_stage in (Stage.SQL, Stage.OPPORTUNITY):
        return [OutboundEvent.WON]
    return []


def _kick_delivery() -> None:
    """Ask a worker to deliver now. Only a latency hint: any one run delivers everything
    due, and beat sweeps every OUTBOX_SWEEP_SECONDS. So a kick that waited longer than
    a sweep expires and is dropped unrun, which keeps the queue bounded when commits
    come faster than a busy worker runs tasks."""
    # Imported here: tasks import this module.
    from integrations.outbound.tasks import deliver_outbox_task

    deliver_outbox_task.apply_async(expires=float(settings.OUTBOX_SWEEP_SECONDS * 2))


def outbox_enqueue_for_transition(*, transition: StageTransition) -> list[OutboxMessage]:
    """Write the outbox rows for a stage change, inside the caller's transaction.

    Called from STAGE_CHANGED (leadflow.reactions) while `lead_transition` still holds the
    lead's row lock: the rows commit or roll back with the change, and a lead's messages
    get ids in the order of its changes (which delivery relies on for ordering).
    """
    events = events_for_transition(from_stage=transition.from_stage, to_stage=transition.to_stage)
    if not events:
        return []
    destinations = selectors.destinations_enabled()
    if not destinations:
        return []
    lead = transition.lead
    facts = transition_facts(transition)
    scores = scores_of(transition)
    # Feedback from an SFA must not be echoed back to the SFA that reported it.
    origin = (transition.context or {}).get("feedback_destination_id")
    rows = []
    for destination in destinations:
        for event in events:
            if not destination.receives(event):
                continue
            if destination.pk == origin and event != OutboundEvent.RECYCLED:
                continue
            key = f"{event}:{transition.pk}"
            rows.append(
                OutboxMessage(
                    destination=destination,
                    lead=lead,
                    transition=transition,
                    event=event,
                    idempotency_key=key,
                    payload=build_payload(
                        mapping=destination.field_mapping,
                        lead=lead,
                        event=event,
                        idempotency_key=key,
                        transition=facts,
                        scores=scores,
                    ),
                    next_attempt_at=transition.occurred_at,
                    created_at=timezone.now(),
                )
            )
    if not rows:
        return []
    inline = _inline_batch.get()
    claimed_token = _claim_for_inline(rows, inline) if inline is not None else None
    # ignore_conflicts: a repeated signal for the same transition must not fail the
    # stage change; the unique key already makes the second copy a no-op.
    created = OutboxMessage.objects.bulk_create(rows, ignore_conflicts=True)
    if inline is not None and claimed_token is not None:
        claimed = [row for row in rows if row.claim_token == claimed_token]
        transaction.on_commit(partial(inline.committed, claimed_token, claimed), robust=True)
    if any(row.status == MessageStatus.PENDING for row in rows):
        # Low latency: a worker starts as soon as the change is committed. If the broker is
        # down the beat sweep picks the rows up (robust: the commit never fails for it).
        transaction.on_commit(_kick_delivery, robust=True)
    return created


# --- Inline delivery ------------------------------------------------------------------
# A worker that has just committed a stage change can deliver its messages itself,
# instead of a second task round trip through the broker (half the worker time of a
# webhook → MQL → SFA at the time of writing). The outbox semantics stay: the rows are
# written in the stage change's transaction, already claimed (in flight, with a lease
# and a token) for this process, and sent after the commit, outside any transaction. A
# process that dies before sending leaves the rows in flight; when the lease expires
# the beat sweep delivers them, as for any claimed row.

# A destination that failed, or answered slower than this, is left to the delivery
# queue for a while: the intake worker waits for the call, so a slow SFA (hundreds of
# milliseconds a call is common) would cut intake throughput; one call a minute probes.
INLINE_SLOW_SECONDS = 0.25
INLINE_PAUSE_SECONDS = 60.0
_inline_paused_until: dict[int, float] = {}


class _InlineBatch:
    """The claims of one `outbox_delivery_inline` block, filled as its transactions commit."""

    def __init__(self) -> None:
        # The claimed rows as written, with their destination and lead: sending them
        # needs no query to load them again, only their ids.
        self.claimed: dict[uuid.UUID, list[OutboxMessage]] = {}
        self.open = True

    def committed(self, token: uuid.UUID, rows: list[OutboxMessage]) -> None:
        if self.open:
            self.claimed[token] = rows
        else:
            # Committed after the block ended (cannot happen when the block is entered
            # outside a transaction, which is the only way it claims): nobody is going to
            # send these rows, so give the claim back to the delivery queue now.
            outbox_release_claim(token=token)


_inline_batch: ContextVar[_InlineBatch | None] = ContextVar("outbox_inline_batch", default=None)


def _inline_allowed(destination: Destination) -> bool:
    until = _inline_paused_until.get(destination.pk)
    return until is None or time.monotonic() >= until


def _claim_for_inline(rows: list[OutboxMessage], inline: _InlineBatch) -> uuid.UUID | None:
    """Mark the rows this process will send after the commit as claimed by it.

    Not a row whose lead already has an open message for the same destination: that one
    goes first (delivery order per lead), so the new row waits as pending like any other.
    The caller holds the lead's row lock, so no other change of this lead adds rows now.
    """
    candidates = [row for row in rows if _inline_allowed(row.destination)]
    if not candidates:
        return None
    busy = set(
        OutboxMessage.objects.filter(lead=candidates[0].lead, status__in=OPEN_STATUSES).values_list(
            "destination_id", flat=True
        )
    )
    token = uuid.uuid4()
    now = timezone.now()
    claimed = False
    for row in candidates:
        if row.destination_id in busy:
            continue
        row.status = MessageStatus.IN_FLIGHT
        row.claim_token = token
        row.attempts = 1
        row.lease_expires_at = now + _lease(row.destination.timeout_seconds)
        claimed = True
    return token if claimed else None


@contextmanager
def outbox_delivery_inline() -> Iterator[DeliveryStats]:
    """Deliver, right after the block, the outbox rows that stage changes committed in it.

    For workers only (the inbound task): a web request must not wait on an SFA. Entered
    inside a transaction it does nothing special (the commit would come after the block,
    and nothing may be sent inside a transaction): rows stay pending for the delivery
    queue. Errors while sending are logged, never raised: the block's work is committed.
    """
    stats = DeliveryStats()
    if connection.in_atomic_block or not settings.OUTBOX_DELIVER_INLINE:
        yield stats
        return
    batch = _InlineBatch()
    reset = _inline_batch.set(batch)
    try:
        yield stats
    finally:
        _inline_batch.reset(reset)
        batch.open = False
    if batch.claimed:
        try:
            _deliver_claimed(batch.claimed, stats)
        except Exception:
            # The rows stay in flight until their lease expires; then the sweep sends them.
            logger.exception("Inline delivery failed; the outbox sweep will retry")


def _deliver_claimed(claimed: dict[uuid.UUID, list[OutboxMessage]], stats: DeliveryStats) -> None:
    # bulk_create(ignore_conflicts=True) does not return ids (PostgreSQL), and a row that
    # conflicted was not written at all: the committed rows say which ids are ours. Found
    # through the transition (indexed); our token on a row means our claim still holds.
    transition_ids = {row.transition_id for rows in claimed.values() for row in rows}
    ids = {
        (token, destination_id, event): pk
        for pk, token, destination_id, event in OutboxMessage.objects.filter(
            transition_id__in=transition_ids, claim_token__in=list(claimed)
        ).values_list("pk", "claim_token", "destination_id", "event")
    }
    messages = []
    for token, rows in claimed.items():
        for row in rows:
            row.pk = ids.get((token, row.destination_id, row.event))
            if row.pk is not None:
                messages.append(row)
    messages.sort(key=lambda message: message.pk)
    stats.claimed += len(messages)
    for message in messages:
        destination = message.destination
        started = time.monotonic()
        delivered = stats.delivered
        _deliver_one(message, _http_client(destination.timeout_seconds), random.random, stats)
        if stats.delivered == delivered or time.monotonic() - started > INLINE_SLOW_SECONDS:
            _inline_paused_until[destination.pk] = time.monotonic() + INLINE_PAUSE_SECONDS


def outbox_release_claim(*, token: uuid.UUID) -> int:
    """Hand claimed, unsent rows back to the delivery queue (pending, due now)."""
    count = OutboxMessage.objects.filter(claim_token=token, status=MessageStatus.IN_FLIGHT).update(
        status=MessageStatus.PENDING,
        claim_token=None,
        lease_expires_at=None,
        attempts=F("attempts") - 1,
        next_attempt_at=timezone.now(),
    )
    if count:
        _kick_delivery()
    return count


# --- Claim ----------------------------------------------------------------------------


def _lease(destination_timeout: float) -> timedelta:
    # Long enough for the most calls one message makes (token, upsert, token refresh,
    # upsert, converted-lead lookup, contact, opportunity), each bounded by the timeout.
    return timedelta(seconds=destination_timeout * 8 + 30)


def outbox_claim_due(*, limit: int, now: datetime | None = None) -> list[OutboxMessage]:
    """Take up to `limit` due messages for this worker; no two workers get the same row.

    PostgreSQL: SELECT ... FOR UPDATE SKIP LOCKED, so concurrent workers each take
    different rows without waiting on one another. SQLite has no row locks: the claim
    is a conditional UPDATE (still pending/expired) inside an IMMEDIATE transaction,
    which already serialises writers.
    """
    now = now or timezone.now()
    token = uuid.uuid4()
    max_timeout = max(
        (d.timeout_seconds for d in Destination.objects.filter(enabled=True)), default=10.0
    )
    lease_until = now + _lease(max_timeout)
    due = selectors.outbox_due(now=now)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # of=("self",): lock only the message rows, never the joined destination row.
            ids = list(
                due.select_for_update(skip_locked=True, of=("self",)).values_list("id", flat=True)[
                    :limit
                ]
            )
            still_due = Q(pk__in=ids)
        else:
            ids = list(due.values_list("id", flat=True)[:limit])
            still_due = Q(pk__in=ids) & (
                Q(status=MessageStatus.PENDING, next_attempt_at__lte=now)
                | Q(status=MessageStatus.IN_FLIGHT, lease_expires_at__lt=now)
            )
        if not ids:
            return []
        OutboxMessage.objects.filter(still_due).update(
            status=MessageStatus.IN_FLIGHT,
            claim_token=token,
            lease_expires_at=lease_until,
            attempts=F("attempts") + 1,
            updated_at=now,
        )
    return list(
        OutboxMessage.objects.filter(claim_token=token, status=MessageStatus.IN_FLIGHT)
        .select_related("destination", "lead")
        .order_by("id")
    )


# --- Record ---------------------------------------------------------------------------


def retry_delay(*, attempts: int, rng: Callable[[], float] = random.random) -> timedelta:
    """Exponential backoff with jitter: base·2^(n−1), capped, then a random 50–100 % of it.

    Never less than half the step, so the schedule stays exponential; the random half
    spreads out messages that failed together (an outage) so they do not retry in a herd.
    """
    base = settings.OUTBOX_RETRY_BASE_SECONDS
    cap = settings.OUTBOX_RETRY_MAX_SECONDS
    step = min(cap, base * 2 ** max(0, attempts - 1))
    return timedelta(seconds=step * (0.5 + 0.5 * rng()))


def _remember_external_ids(lead_id: int, result: DeliveryResult) -> list[str]:
    notes = []
    if result.forget_systems:
        LeadExternalId.objects.filter(lead_id=lead_id, system__in=result.forget_systems).delete()
    for system, external_id in result.external_ids:
        if not external_id:
            continue
        owner = (
            LeadExternalId.objects.filter(system=system, external_id=external_id)
            .values_list("lead_id", flat=True)
            .first()
        )
        if owner == lead_id:
            continue
        if owner is not None:
            # The remote record already belongs to another lead (a merge on their side):
            # keep the existing link and say so on the message.
            notes.append(f"{system} id {external_id} already belongs to lead {owner}")
            continue
        # One current id per system and lead: a converted lead's new contact replaces
        # nothing else, but a re-created HubSpot contact replaces the stale id.
        LeadExternalId.objects.filter(lead_id=lead_id, system=system).delete()
        LeadExternalId.objects.create(lead_id=lead_id, system=system, external_id=external_id)
    return notes


def _record_success(message: OutboxMessage, result: DeliveryResult, now: datetime) -> bool:
    info = {**message.info, **result.info}
    limit = result.info.get("limit_info")

    def mark_delivered() -> int:
        return OutboxMessage.objects.filter(
            pk=message.pk, claim_token=message.claim_token, status=MessageStatus.IN_FLIGHT
        ).update(
            status=MessageStatus.DELIVERED,
            delivered_at=now,
            response_status=result.status_code,
            response_body=excerpt(result.body),
            remote_id=result.remote_id[:255],
            last_error="",
            info=info,
            lease_expires_at=None,
            claim_token=None,
            updated_at=now,
        )

    if not (result.external_ids or result.forget_systems or limit):
        # Nothing to keep consistent with the one UPDATE (a plain webhook): no transaction.
        # 0 rows: the lease ran out and another worker owns the row now; its result counts.
        return bool(mark_delivered())
    with transaction.atomic():
        notes = _remember_external_ids(message.lead_id, result)
        if notes:
            info["notes"] = notes
        if not mark_delivered():
            # The lease ran out and another worker owns the row now; its result counts.
            transaction.set_rollback(True)
            return False
        if limit:
            Destination.objects.filter(pk=message.destination_id).update(last_limit_info=limit)
    return True


def _record_failure(
    message: OutboxMessage,
    error: DeliveryError,
    now: datetime,
    rng: Callable[[], float],
) -> str:
    max_attempts = message.destination.max_attempts
    if error.permanent:
        status, next_at = MessageStatus.DEAD, message.next_attempt_at
        text = error.message
    elif message.attempts >= max_attempts:
        status, next_at = MessageStatus.DEAD, message.next_attempt_at
        text = _("Gave up after %(n)d attempts. Last error: %(error)s") % {
            "n": message.attempts,
            "error": error.message,
        }
    else:
        status = MessageStatus.PENDING
        if error.retry_after is not None:
            wait = timedelta(seconds=min(max(error.retry_after, 0), MAX_RETRY_AFTER_SECONDS))
        else:
            wait = retry_delay(attempts=message.attempts, rng=rng)
        next_at = now + wait
        text = error.message
    info = {**message.info, **error.info}
    if error.retry_after is not None:
        info["retry_after"] = error.retry_after
    with transaction.atomic():
        updated = OutboxMessage.objects.filter(
            pk=message.pk, claim_token=message.claim_token, status=MessageStatus.IN_FLIGHT
        ).update(
            status=status,
            next_attempt_at=next_at,
            last_error=excerpt(text),
            response_status=error.status_code,
            response_body=excerpt(error.body),
            info=info,
            lease_expires_at=None,
            claim_token=None,
            updated_at=now,
        )
        limit = error.info.get("limit_info")
        if updated and limit:
            Destination.objects.filter(pk=message.destination_id).update(last_limit_info=limit)
    if status == MessageStatus.DEAD:
        logger.warning("outbox message %s is dead: %s", message.pk, text)
    return status


def destination_token_store(*, destination: Destination, token: str, at: datetime) -> None:
    """Cache a fresh OAuth token on the destination (one UPDATE, no long transaction)."""
    Destination.objects.filter(pk=destination.pk).update(access_token=token, access_token_at=at)
    destination.access_token = token
    destination.access_token_at = at


# --- Deliver --------------------------------------------------------------------------


@dataclass
class DeliveryStats:
    claimed: int = 0
    delivered: int = 0
    retrying: int = 0
    dead: int = 0
    lost_lease: int = 0


def _deliver_one(
    message: OutboxMessage,
    client: httpx.Client,
    rng: Callable[[], float],
    stats: DeliveryStats,
) -> None:
    from integrations.outbound.connectors import CONNECTORS

    destination = message.destination
    connector = CONNECTORS.get(destination.kind)
    try:
        if connector is None:
            raise DeliveryError(f"No connector for kind {destination.kind!r}.", permanent=True)
        result = connector(destination=destination, message=message, client=client)
    except DeliveryError as error:
        outcome = _record_failure(message, error, timezone.now(), rng)
        if outcome == MessageStatus.DEAD:
            stats.dead += 1
        else:
            stats.retrying += 1
        return
    except httpx.HTTPError as exc:
        outcome = _record_failure(message, error_from_transport(exc), timezone.now(), rng)
        if outcome == MessageStatus.DEAD:
            stats.dead += 1
        else:
            stats.retrying += 1
        return
    delivered_at = timezone.now()
    if _record_success(message, result, delivered_at):
        stats.delivered += 1
        if (
            message.event == OutboundEvent.MQL_CREATED
            and message.transition_id is not None
            and not message.destination.marketing_side
        ):
            # Speed to lead: the MQL is in the SFA (the first destination's is the instant).
            timeline_mark_sfa_delivered(mql_transition_id=message.transition_id, at=delivered_at)
    else:
        stats.lost_lease += 1


def outbox_deliver_due(
    *,
    batch_size: int | None = None,
    max_batches: int = 20,
    rng: Callable[[], float] = random.random,
) -> DeliveryStats:
    """Claim due messages in bounded batches, call out, record; until none is due.

    Must not run inside a transaction: the calls would hold it open for seconds, and a
    rollback after a successful call would make us send the message again.
    """
    batch_size = batch_size or settings.OUTBOX_BATCH_SIZE
    stats = DeliveryStats()
    for _batch in range(max_batches):
        batch = outbox_claim_due(limit=batch_size)
        if not batch:
            break
        stats.claimed += len(batch)
        for message in batch:
            _deliver_one(message, _http_client(message.destination.timeout_seconds), rng, stats)
    return stats


# One client per timeout for the life of the worker process: building one loads the CA
# bundle (milliseconds of CPU per delivery otherwise), and it keeps connections alive
# to the SFA between deliveries.
_CLIENTS: dict[float, httpx.Client] = {}


def _http_client(timeout: float) -> httpx.Client:
    client = _CLIENTS.get(timeout)
    if client is None:
        client = _CLIENTS[timeout] = httpx.Client(timeout=timeout, follow_redirects=False)
    return client


# --- Operator actions -----------------------------------------------------------------


def outbox_replay(*, message_ids: Iterable[int], actor: str) -> int:
    """Send dead messages again, with the payload rebuilt from the current mapping.

    The event and the facts of the stage change stay as they were; the lead's data and
    the mapping are read now, so a fixed mapping (or a fixed lead) is what goes out.
    """
    now = timezone.now()
    count = 0
    with transaction.atomic():
        messages = (
            OutboxMessage.objects.select_for_update(of=("self",))
            .filter(pk__in=list(message_ids), status=MessageStatus.DEAD)
            .select_related("destination", "lead", "lead__company", "lead__owner")
            .order_by("pk")
        )
        for message in messages:
            old = message.payload or {}
            history = list(message.info.get("replays", []))
            history.append(
                {
                    "at": now.isoformat(),
                    "by": actor,
                    "attempts": message.attempts,
                    "error": message.last_error[:500],
                }
            )
            message.payload = build_payload(
                mapping=message.destination.field_mapping,
                lead=message.lead,
                event=message.event,
                idempotency_key=message.idempotency_key,
                transition=old.get("transition") or {},
                scores=old.get("scores") or {},
            )
            message.status = MessageStatus.PENDING
            message.attempts = 0
            message.next_attempt_at = now
            message.last_error = ""
            message.info = {"replays": history}
            message.save(
                update_fields=[
                    "payload",
                    "status",
                    "attempts",
                    "next_attempt_at",
                    "last_error",
                    "info",
                    "updated_at",
                ]
            )
            count += 1
        if count:
            transaction.on_commit(_kick_delivery, robust=True)
    return count


def outbox_retry_now(*, message_ids: Iterable[int]) -> int:
    """Bring waiting messages forward (e.g. once an outage is over)."""
    with transaction.atomic():
        count = OutboxMessage.objects.filter(
            pk__in=list(message_ids), status=MessageStatus.PENDING
        ).update(next_attempt_at=timezone.now())
        if count:
            transaction.on_commit(_kick_delivery, robust=True)
    return count


# --- Feedback -------------------------------------------------------------------------

# outcome → (stage it moves the lead to, stages it may come from; None = the lifecycle's
# own table decides). "lost" is a sales verdict on a lead sales worked, so an MQL nobody
# accepted cannot be lost (a rep rejects it in LeadFlow instead).
OUTCOME_MOVES: dict[str, tuple[str, frozenset[str] | None]] = {
    FeedbackOutcome.OPPORTUNITY_CREATED: (Stage.OPPORTUNITY, frozenset({Stage.SQL})),
    FeedbackOutcome.WON: (Stage.CUSTOMER, frozenset({Stage.SQL, Stage.OPPORTUNITY})),
    FeedbackOutcome.LOST: (Stage.RECYCLED, frozenset({Stage.SQL, Stage.OPPORTUNITY})),
    FeedbackOutcome.DISQUALIFIED: (Stage.DISQUALIFIED, None),
}


def _apply_outcome(
    *, lead: Lead, outcome: str, actor: str, reason: str, context: dict[str, Any]
) -> None:
    """Move the lead the way a rep's own after-SQL action would (handoff's services), so an
    SFA-reported loss carries its reason to marketing exactly like one logged in LeadFlow."""
    if outcome == FeedbackOutcome.OPPORTUNITY_CREATED:
        lead_mark_opportunity(lead=lead, actor=actor, reason=reason, context=context)
    elif outcome == FeedbackOutcome.WON:
        lead_mark_won(lead=lead, actor=actor, reason=reason, context=context)
    elif outcome == FeedbackOutcome.LOST:
        reason = reason or _("Lost (reported by the SFA).")
        lead_mark_lost(lead=lead, actor=actor, reason=reason, context=context)
    else:
        lead_transition(
            lead=lead,
            to_stage=Stage.DISQUALIFIED,
            actor=actor,
            reason=reason,
            context=context,
            expected_from=lead.stage,
        )


@dataclass
class FeedbackReceipt:
    event: FeedbackEvent
    duplicate: bool


def feedback_record(
    *,
    destination: Destination,
    event_id: str,
    lead_ref: str,
    outcome: str,
    reason: str,
    occurred_at: datetime,
    payload: dict[str, Any],
) -> FeedbackReceipt:
    """Apply an SFA-reported outcome to the lead once per (destination, event id).

    Raises NotFound (unknown lead) or InvalidTransition (the outcome does not fit where
    the lead is, e.g. "won" for a lead nobody accepted).
    """
    existing = FeedbackEvent.objects.filter(destination=destination, event_id=event_id).first()
    if existing is not None:
        return FeedbackReceipt(existing, duplicate=True)
    lead = selectors.lead_for_feedback(destination=destination, ref=lead_ref)
    if lead is None:
        raise NotFound(
            _("No lead matches “%(ref)s”.") % {"ref": lead_ref[:100]}, code="lead_not_found"
        )
    if outcome not in OUTCOME_MOVES:
        raise DomainError(_("Unknown outcome “%(o)s”.") % {"o": outcome}, code="bad_outcome")
    to_stage, from_stages = OUTCOME_MOVES[outcome]
    current = lead.stage
    try:
        with transaction.atomic():
            if current == to_stage:
                result = FeedbackResult.UNCHANGED
            else:
                if from_stages is not None and current not in from_stages:
                    raise InvalidTransition(
                        _(
                            "The lead is %(current)s; “%(outcome)s” is only possible for a "
                            "lead in %(allowed)s."
                        )
                        % {
                            "current": Stage(current).label,
                            "outcome": outcome,
                            "allowed": join_words(Stage(s).label for s in sorted(from_stages)),
                        }
                    )
                _apply_outcome(
                    lead=lead,
                    outcome=outcome,
                    actor=f"sfa:{destination.slug}",
                    reason=reason,
                    context={
                        "source": "sfa_feedback",
                        "feedback_destination_id": destination.pk,
                        "outcome": outcome,
                        "event_id": event_id,
                    },
                )
                result = FeedbackResult.APPLIED
            event = FeedbackEvent.objects.create(
                destination=destination,
                event_id=event_id,
                lead=lead,
                outcome=outcome,
                reason=reason,
                occurred_at=occurred_at,
                result=result,
                from_stage=current,
                to_stage=to_stage,
                payload=payload,
            )
    except (IntegrityError, InvalidTransition):
        # The same event id arriving twice at once: the loser sees either the unique key
        # or a lead the winner already moved. Either way the winner's row is the answer.
        already = FeedbackEvent.objects.filter(destination=destination, event_id=event_id).first()
        if already is None:
            raise
        return FeedbackReceipt(already, duplicate=True)
    return FeedbackReceipt(event, duplicate=False)
