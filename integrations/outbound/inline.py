"""Inline delivery: the worker that committed a stage change sends its messages itself."""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings
from django.db import connection
from django.db.models import F
from django.utils import timezone

from integrations.outbound.delivery import (
    DeliveryStats,
    deliver_one,
    http_client,
    kick_delivery,
    lease_for,
)
from integrations.outbound.models import (
    OPEN_STATUSES,
    Destination,
    MessageStatus,
    OutboxMessage,
)

logger = logging.getLogger(__name__)


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


inline_batch: ContextVar[_InlineBatch | None] = ContextVar("outbox_inline_batch", default=None)


def _inline_allowed(destination: Destination) -> bool:
    until = _inline_paused_until.get(destination.pk)
    return until is None or time.monotonic() >= until


def claim_for_inline(rows: list[OutboxMessage], inline: _InlineBatch) -> uuid.UUID | None:
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
        row.lease_expires_at = now + lease_for(row.destination.timeout_seconds)
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
    reset = inline_batch.set(batch)
    try:
        yield stats
    finally:
        inline_batch.reset(reset)
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
        delivered = stats.delivered
        deliver_one(message, http_client(destination.timeout_seconds), random.random, stats)
        # The destination's answer alone is timed: the rows recorded after it are this
        # worker's own database work, and counting them paused a fast SFA whenever the
        # worker was short of CPU; every MQL then cost a second task for 60 s.
        if stats.delivered == delivered or stats.last_call_seconds > INLINE_SLOW_SECONDS:
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
        kick_delivery()
    return count
