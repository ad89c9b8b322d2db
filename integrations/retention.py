"""Retention of raw inbound payloads: bodies and headers go after INBOUND_RETENTION_DAYS.

The rows stay (their status, source and times are the intake counts, and their
deduplication key keeps recognising a sender's late redelivery). An erasure request
redacts the same way, for one person and at once (privacy/integrations.py).
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from integrations.models import InboundEvent, InboundItemResult, InboundStatus

logger = logging.getLogger(__name__)

EXPIRED_BODY = json.dumps({"redacted": "retention period"})


def result_without_quotes(result: dict[str, Any]) -> dict[str, Any]:
    """An inbound event's processing result without its errors and notes, which quote the
    items' values; the counts stay for the intake figures."""
    return {key: value for key, value in (result or {}).items() if key not in ("errors", "notes")}


def inbound_payloads_prune(*, days: int | None = None, batch_size: int = 1000) -> int:
    """Replace bodies and headers of inbound events older than the retention period.

    Only events that are finished with (processed, failed, duplicate): one still waiting
    to be processed after that long is an operations problem to look at, not data to
    drop, and is logged instead. Returns how many rows were pruned; bounded batches, so
    the caller re-runs while a full batch came back.
    """
    days = settings.INBOUND_RETENTION_DAYS if days is None else days
    cutoff = timezone.now() - timedelta(days=days)
    old = InboundEvent.objects.filter(received_at__lt=cutoff, redacted_at__isnull=True)
    now = timezone.now()
    with transaction.atomic():
        rows = list(
            old.exclude(status=InboundStatus.RECEIVED)
            .select_for_update()
            .order_by("received_at")
            .only("pk", "result")[:batch_size]
        )
        for row in rows:
            row.body, row.headers, row.reason = EXPIRED_BODY, {}, ""
            row.result = result_without_quotes(row.result)
            row.redacted_at = now
        InboundEvent.objects.bulk_update(
            rows, ["body", "headers", "reason", "result", "redacted_at"], batch_size=200
        )
        InboundItemResult.objects.filter(inbound_event__in=rows).exclude(reason="").update(
            reason=""
        )
        pruned = len(rows)
    stuck = old.filter(status=InboundStatus.RECEIVED).count()
    if stuck:
        logger.warning(
            "%d inbound event(s) older than %d days were never processed; kept as they are",
            stuck,
            days,
        )
    return pruned
