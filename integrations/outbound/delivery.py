"""Delivery of due outbox rows: claim, call the connector, record.

Three steps so that no transaction is open while we wait on a vendor:
1. claim (short transaction): due rows → in_flight with a lease and a claim token;
2. call the connector (no transaction, bounded by the destination's timeout);
3. record (short transaction): delivered, or pending with a backoff, or dead.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from handoff.timeline import timeline_mark_sfa_delivered
from integrations.outbound import selectors
from integrations.outbound.base import (
    DeliveryError,
    DeliveryResult,
    error_from_transport,
    excerpt,
)
from integrations.outbound.models import (
    Destination,
    MessageStatus,
    OutboundEvent,
    OutboxMessage,
)
from leadflow.models import LeadExternalId
from leadflow.transactions import enqueue_on_commit

logger = logging.getLogger(__name__)

# Cap for a vendor's Retry-After, so a misconfigured proxy cannot park a message for weeks.
MAX_RETRY_AFTER_SECONDS = 24 * 3600


def _kick_expires() -> float:
    # A kick that waited longer than two sweeps is dropped unrun (see kick_delivery).
    return float(settings.OUTBOX_SWEEP_SECONDS * 2)


def kick_delivery() -> None:
    """Ask a worker to deliver now. Only a latency hint: any one run delivers everything
    due, and beat sweeps every OUTBOX_SWEEP_SECONDS. So a kick that waited longer than
    a sweep expires and is dropped unrun, which keeps the queue bounded when commits
    come faster than a busy worker runs tasks."""
    # Imported here: tasks import this module.
    from integrations.outbound.tasks import deliver_outbox_task

    deliver_outbox_task.apply_async(expires=_kick_expires())


def kick_delivery_on_commit() -> None:
    """kick_delivery once the caller's transaction commits. Robust: if the broker is down
    the beat sweep picks the rows up, so the commit's caller never fails for it."""
    from integrations.outbound.tasks import deliver_outbox_task

    enqueue_on_commit(deliver_outbox_task, robust=True, expires=_kick_expires())


# --- Claim ----------------------------------------------------------------------------


def lease_for(destination_timeout: float) -> timedelta:
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
    lease_until = now + lease_for(max_timeout)
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


# --- Deliver --------------------------------------------------------------------------


@dataclass
class DeliveryStats:
    claimed: int = 0
    delivered: int = 0
    retrying: int = 0
    dead: int = 0
    lost_lease: int = 0
    # How long the last connector call took (the destination's answer alone, not the
    # recording after it): inline delivery pauses a destination that answers slowly.
    last_call_seconds: float = 0.0


def deliver_one(
    message: OutboxMessage,
    client: httpx.Client,
    rng: Callable[[], float],
    stats: DeliveryStats,
) -> None:
    from integrations.registry import CONNECTORS

    destination = message.destination
    connector = CONNECTORS.get(destination.kind)
    started = time.monotonic()
    try:
        try:
            if connector is None:
                raise DeliveryError(f"No connector for kind {destination.kind!r}.", permanent=True)
            result = connector(destination=destination, message=message, client=client)
        finally:
            # The destination's answer alone, before anything is recorded.
            stats.last_call_seconds = time.monotonic() - started
    except (DeliveryError, httpx.HTTPError) as exc:
        error = exc if isinstance(exc, DeliveryError) else error_from_transport(exc)
        outcome = _record_failure(message, error, timezone.now(), rng)
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
            deliver_one(message, http_client(message.destination.timeout_seconds), rng, stats)
    return stats


# One client per timeout for the life of the worker process: building one loads the CA
# bundle (milliseconds of CPU per delivery otherwise), and it keeps connections alive
# to the SFA between deliveries.
_CLIENTS: dict[float, httpx.Client] = {}


def http_client(timeout: float) -> httpx.Client:
    client = _CLIENTS.get(timeout)
    if client is None:
        client = _CLIENTS[timeout] = httpx.Client(timeout=timeout, follow_redirects=False)
    return client
