"""The Prometheus exposition of LeadFlow's operations figures.

Every figure is read from the database or the broker at scrape time, not counted in the
process that serves the scrape: web and worker processes run on several machines, and
an in-memory counter in one web process would show a fraction of the work. Each query
runs on an index (named beside it) so a scrape stays cheap at millions of rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

from django.db.models import Count, Min, Q
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from handoff.models import HandoffTimeline
from integrations.models import InboundEvent, InboundStatus
from integrations.outbound.models import MessageStatus, OutboxMessage
from ops.queues import queue_depths
from sla.kpis import speed_metrics
from sla.models import SlaTimer

# A rate over five minutes smooths a sender's bursts the way Prometheus' own rate() would.
INTAKE_WINDOW = timedelta(minutes=5)
# Latencies are quantiles of the recent past (webhooks received, MQLs made in it); a busy
# installation has thousands of rows in it, so the newest LATENCY_SAMPLE stand for it.
LATENCY_WINDOW = timedelta(minutes=15)
LATENCY_SAMPLE = 5000
QUANTILES = (0.5, 0.9, 0.99)


def quantile(sorted_values: list[float], q: float) -> float:
    """The nearest-rank quantile (the value at rank ceil(q·n)): what a reader checks by hand."""
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


class LeadflowCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        yield from _intake(now)
        yield from _queues()
        yield from _outbox(now)
        yield from _sla(now)
        yield from _latencies(now)


def _intake(now: datetime) -> Iterable[Metric]:
    received = GaugeMetricFamily(
        "leadflow_inbound_received_per_second",
        "Inbound webhook requests stored per second over the last 5 minutes, per source.",
        labels=["source"],
    )
    # inbound_status_time_idx: one range scan of received_at per status.
    rows = (
        InboundEvent.objects.filter(
            status__in=InboundStatus.values, received_at__gte=now - INTAKE_WINDOW
        )
        .values("source__slug")
        .annotate(n=Count("id"))
        .order_by("source__slug")
    )
    for row in rows:
        received.add_metric([row["source__slug"]], row["n"] / INTAKE_WINDOW.total_seconds())
    yield received

    waiting = InboundEvent.objects.filter(status=InboundStatus.RECEIVED).aggregate(
        n=Count("id"), oldest=Min("received_at")
    )
    yield GaugeMetricFamily(
        "leadflow_inbound_unprocessed",
        "Inbound events stored and answered 202 but not processed yet.",
        value=waiting["n"],
    )
    oldest = waiting["oldest"]
    yield GaugeMetricFamily(
        "leadflow_inbound_oldest_unprocessed_age_seconds",
        "Age of the oldest inbound event not processed yet (0 when none waits).",
        value=(now - oldest).total_seconds() if oldest else 0.0,
    )


def _queues() -> Iterable[Metric]:
    depths = queue_depths()
    yield GaugeMetricFamily(
        "leadflow_celery_broker_up",
        "1 when the broker answered the scrape.",
        value=1 if depths.broker_up else 0,
    )
    waiting = GaugeMetricFamily(
        "leadflow_celery_queue_waiting",
        "Tasks in each Celery queue not yet handed to a worker.",
        labels=["queue"],
    )
    for name, count in depths.waiting.items():
        waiting.add_metric([name], count)
    yield waiting
    if depths.unacked is not None:
        yield GaugeMetricFamily(
            "leadflow_celery_unacked",
            "Tasks handed to a worker and not yet acknowledged (Redis broker).",
            value=depths.unacked,
        )


def _outbox(now: datetime) -> Iterable[Metric]:
    # outbox_pending_due_idx, outbox_in_flight_lease_idx, outbox_status_created_idx.
    counts = OutboxMessage.objects.aggregate(
        due=Count("id", filter=Q(status=MessageStatus.PENDING, next_attempt_at__lte=now)),
        retrying=Count(
            "id", filter=Q(status=MessageStatus.PENDING, next_attempt_at__gt=now, attempts__gt=0)
        ),
        in_flight=Count("id", filter=Q(status=MessageStatus.IN_FLIGHT)),
        dead=Count("id", filter=Q(status=MessageStatus.DEAD)),
    )
    family = GaugeMetricFamily(
        "leadflow_outbox_messages",
        "Outbox messages to the SFA / MA tools by state: due now, waiting to retry after a "
        "failure, being delivered, dead (need a replay).",
        labels=["state"],
    )
    for state in ("due", "retrying", "in_flight", "dead"):
        family.add_metric([state], counts[state])
    yield family


def _sla(now: datetime) -> Iterable[Metric]:
    # sla_timer_unmet_due_idx: unmet timers whose deadline has passed, breached by the
    # sweep or about to be.
    rows = (
        SlaTimer.objects.filter(met_at__isnull=True, due_at__lt=now)
        .values("kind")
        .annotate(n=Count("id"))
        .order_by("kind")
    )
    family = GaugeMetricFamily(
        "leadflow_sla_overdue_timers",
        "SLA deadlines passed and not met, per obligation (first contact, attempts, verdict).",
        labels=["kind"],
    )
    for row in rows:
        family.add_metric([row["kind"]], row["n"])
    yield family


# The hops of the speed-to-lead timeline that complete within minutes of the MQL (the
# machinery's: the MA tool's sync, intake, routing, the rep's message, the SFA); the
# reps' own hops (pickup, first contact, verdict) are the dashboard's, over days.
TIMELINE_HOPS = ("ma_sync", "intake", "qualify", "routing", "notify", "sfa")


def _latencies(now: datetime) -> Iterable[Metric]:
    since = now - LATENCY_WINDOW
    pairs: dict[str, list[tuple[datetime, datetime | None]]] = {
        # inbound_status_time_idx (status, received_at): every webhook, MQL or not.
        "received_to_processed": list(
            InboundEvent.objects.filter(
                status=InboundStatus.PROCESSED, received_at__gte=since, processed_at__isnull=False
            )
            .order_by("-received_at")
            .values_list("received_at", "processed_at")[:LATENCY_SAMPLE]
        )
    }
    hops = [hop for hop in speed_metrics.HOPS if hop.key in TIMELINE_HOPS]
    # handoff_timeline_mql_idx: the MQLs of the window, newest first, read once.
    fields = sorted({hop.start for hop in hops} | {hop.end for hop in hops})
    rows = list(
        HandoffTimeline.objects.filter(mql_at__gte=since)
        .order_by("-mql_at")
        .values(*fields)[:LATENCY_SAMPLE]
    )
    for hop in hops:
        pairs[hop.key] = [
            (row[hop.start], row[hop.end]) for row in rows if row[hop.start] is not None
        ]
    family = GaugeMetricFamily(
        "leadflow_hop_latency_seconds",
        "Quantiles of each hop's latency over the last 15 minutes (from stored timestamps).",
        labels=["hop", "quantile"],
    )
    samples = GaugeMetricFamily(
        "leadflow_hop_latency_samples",
        "How many hops of the last 15 minutes the quantiles rest on.",
        labels=["hop"],
    )
    for hop_key, hop_pairs in pairs.items():
        values = sorted(
            max(0.0, (end - start).total_seconds()) for start, end in hop_pairs if end is not None
        )
        samples.add_metric([hop_key], len(values))
        if values:
            for q in QUANTILES:
                family.add_metric([hop_key, str(q)], quantile(values, q))
    yield family
    yield samples
