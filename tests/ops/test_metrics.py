"""/metrics: what Prometheus reads, worked out by hand on a pinned clock, and who may read it."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from prometheus_client.parser import text_string_to_metric_families

from handoff.models import HandoffTimeline
from integrations.models import InboundEvent, InboundStatus
from integrations.outbound.models import (
    Destination,
    DestinationKind,
    MessageStatus,
    OutboundEvent,
    OutboxMessage,
)
from integrations.services import source_create
from ops.metrics import quantile
from sla.models import SlaTimer, TimerKind
from tests.factories import LeadFactory
from tests.handoff.helpers import make_mql, make_team

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 12, 7, 10, 0, tzinfo=dt.UTC)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def inbound(source, *, received, status=InboundStatus.RECEIVED, processed=None, key):
    return InboundEvent.objects.create(
        source=source,
        received_at=received,
        body="{}",
        dedup_key=key,
        status=status,
        processed_at=processed,
    )


def message(destination, lead, *, status, key, **fields):
    return OutboxMessage.objects.create(
        destination=destination,
        lead=lead,
        event=fields.pop("event", OutboundEvent.MQL_CREATED),
        idempotency_key=key,
        status=status,
        **fields,
    )


def test_quantile_is_the_nearest_rank():
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    assert quantile(values, 0.5) == 5.0
    assert quantile(values, 0.9) == 9.0
    assert quantile(values, 0.99) == 10.0
    assert quantile([4.0], 0.5) == 4.0


@time_machine.travel(NOW, tick=False)
def test_metrics_report_intake_outbox_sla_and_hop_latencies(client):
    zapier = source_create(kind="generic", slug="zapier")
    mautic = source_create(kind="mautic", slug="mautic-prod")
    minute = dt.timedelta(minutes=1)
    # Intake in the last five minutes: 3 from zapier (2 processed after 2 s and 6 s, one
    # waiting since 4 minutes ago), 1 from mautic; one older zapier event still waiting.
    inbound(
        zapier,
        received=NOW - minute,
        status=InboundStatus.PROCESSED,
        processed=NOW - minute + dt.timedelta(seconds=2),
        key="a",
    )
    inbound(
        zapier,
        received=NOW - 2 * minute,
        status=InboundStatus.PROCESSED,
        processed=NOW - 2 * minute + dt.timedelta(seconds=6),
        key="b",
    )
    inbound(zapier, received=NOW - 4 * minute, key="c")
    inbound(mautic, received=NOW - 3 * minute, status=InboundStatus.FAILED, key="d")
    inbound(zapier, received=NOW - 10 * minute, key="e")  # outside the rate's window

    make_team("Kanto", reps=1, default=True)
    handoff = make_mql()
    SlaTimer.objects.filter(handoff=handoff).delete()
    SlaTimer.objects.create(
        handoff=handoff,
        kind=TimerKind.FIRST_CONTACT,
        started_at=NOW - 30 * minute,
        due_at=NOW - minute,
    )
    SlaTimer.objects.create(
        handoff=handoff, kind=TimerKind.VERDICT, started_at=NOW - 30 * minute, due_at=NOW + minute
    )
    other = make_mql()
    SlaTimer.objects.filter(handoff=other).delete()
    SlaTimer.objects.create(
        handoff=other,
        kind=TimerKind.FIRST_CONTACT,
        status="breached",
        started_at=NOW - 90 * minute,
        due_at=NOW - 60 * minute,
    )
    SlaTimer.objects.create(
        handoff=other,
        kind=TimerKind.VERDICT,  # met: not overdue
        started_at=NOW - 90 * minute,
        due_at=NOW - 60 * minute,
        met_at=NOW - 70 * minute,
    )

    for mql, (routed, delivered) in {
        handoff: (30, 3),
        other: (90, 1),
        make_mql(): (5, 60),
    }.items():
        mql_at = NOW - minute * (20 if delivered == 60 else 4)
        HandoffTimeline.objects.filter(handoff=mql).update(
            mql_at=mql_at,
            assigned_at=mql_at + dt.timedelta(seconds=routed),
            sfa_delivered_at=mql_at + dt.timedelta(seconds=delivered),
        )

    # Destinations are created after the MQLs so that no outbox row is written for them.
    sfa = Destination.objects.create(
        kind=DestinationKind.WEBHOOK, slug="sfa", name="SFA", base_url="http://127.0.0.1:9/"
    )
    lead = LeadFactory()
    message(sfa, lead, status=MessageStatus.PENDING, key="1", next_attempt_at=NOW - minute)
    message(
        sfa, lead, status=MessageStatus.PENDING, key="2", next_attempt_at=NOW + minute, attempts=2
    )
    message(sfa, lead, status=MessageStatus.PENDING, key="3", next_attempt_at=NOW + minute)
    message(sfa, lead, status=MessageStatus.IN_FLIGHT, key="4")
    message(sfa, lead, status=MessageStatus.DEAD, key="5")
    message(sfa, lead, status=MessageStatus.DEAD, key="6")
    message(
        sfa,
        lead,
        status=MessageStatus.DELIVERED,
        key="7",
        created_at=NOW - 5 * minute,
        delivered_at=NOW - 5 * minute + dt.timedelta(seconds=3),
    )
    message(
        sfa,
        lead,
        status=MessageStatus.DELIVERED,
        key="8",
        created_at=NOW - 4 * minute,
        delivered_at=NOW - 4 * minute + dt.timedelta(seconds=1),
    )
    message(
        sfa,
        lead,
        status=MessageStatus.DELIVERED,
        key="9",
        event=OutboundEvent.ACCEPTED,
        created_at=NOW - 4 * minute,
        delivered_at=NOW,
    )  # not an MQL push
    message(
        sfa,
        lead,
        status=MessageStatus.DELIVERED,
        key="10",  # before the window
        created_at=NOW - 20 * minute,
        delivered_at=NOW - 19 * minute,
    )

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    found = samples(response.content.decode())
    assert found[("leadflow_inbound_received_per_second", (("source", "zapier"),))] == 3 / 300
    assert found[("leadflow_inbound_received_per_second", (("source", "mautic-prod"),))] == (
        1 / 300
    )
    assert found[("leadflow_inbound_unprocessed", ())] == 2
    assert found[("leadflow_inbound_oldest_unprocessed_age_seconds", ())] == 600
    for state, count in {"due": 1, "retrying": 1, "in_flight": 1, "dead": 2}.items():
        assert found[("leadflow_outbox_messages", (("state", state),))] == count
    assert found[("leadflow_sla_overdue_timers", (("kind", "first_contact"),))] == 2
    assert ("leadflow_sla_overdue_timers", (("kind", "verdict"),)) not in found
    hop = "received_to_processed"
    assert found[("leadflow_hop_latency_samples", (("hop", hop),))] == 2
    assert found[("leadflow_hop_latency_seconds", (("hop", hop), ("quantile", "0.5")))] == 2
    assert found[("leadflow_hop_latency_seconds", (("hop", hop), ("quantile", "0.9")))] == 6
    # The MQLs of the window (the third MQL, 20 minutes ago, is outside it): MQL → SFA
    # [1, 3] s, MQL → assigned [30, 90] s; nothing notified yet.
    hop = "sfa"
    assert found[("leadflow_hop_latency_samples", (("hop", hop),))] == 2
    assert found[("leadflow_hop_latency_seconds", (("hop", hop), ("quantile", "0.5")))] == 1
    assert found[("leadflow_hop_latency_seconds", (("hop", hop), ("quantile", "0.99")))] == 3
    hop = "routing"
    assert found[("leadflow_hop_latency_seconds", (("hop", hop), ("quantile", "0.5")))] == 30
    assert found[("leadflow_hop_latency_seconds", (("hop", hop), ("quantile", "0.9")))] == 90
    assert found[("leadflow_hop_latency_samples", (("hop", "notify"),))] == 0
    assert found[("leadflow_celery_broker_up", ())] == 1


@time_machine.travel(NOW, tick=False)
def test_metrics_with_nothing_to_report_are_zero_not_missing(client):
    found = samples(client.get("/metrics").content.decode())

    assert found[("leadflow_inbound_unprocessed", ())] == 0
    assert found[("leadflow_inbound_oldest_unprocessed_age_seconds", ())] == 0
    assert found[("leadflow_outbox_messages", (("state", "dead"),))] == 0
    assert found[("leadflow_hop_latency_samples", (("hop", "received_to_processed"),))] == 0


def test_metrics_refuse_other_networks_without_the_token(client, settings):
    settings.METRICS_TOKEN = ""

    response = client.get("/metrics", REMOTE_ADDR="203.0.113.7")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert b"leadflow_" not in response.content


def test_metrics_refuse_a_wrong_token_even_from_an_allowed_network(client, settings):
    settings.METRICS_TOKEN = "scrape-token-0123"

    response = client.get("/metrics", headers={"Authorization": "Bearer guess"})

    assert response.status_code == 403


def test_metrics_with_the_token_from_anywhere(client, settings):
    settings.METRICS_TOKEN = "scrape-token-0123"

    response = client.get(
        "/metrics",
        REMOTE_ADDR="203.0.113.7",
        headers={"Authorization": "Bearer scrape-token-0123"},
    )

    assert response.status_code == 200
    assert b"leadflow_inbound_unprocessed 0.0" in response.content


def test_metrics_admit_a_listed_network(client, settings):
    import ipaddress

    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network("10.0.0.0/8")]

    assert client.get("/metrics", REMOTE_ADDR="10.20.30.40").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403


def test_queue_depths_of_the_filesystem_broker(client, settings, tmp_path):
    # What `make run` uses: kombu names each message "<ms>_<uuid>.<queue>.msg".
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(tmp_path)}
    for name in ("1_a.intake.msg", "2_b.intake.msg", "3_c.delivery.msg", "4_d.other.msg"):
        (tmp_path / name).write_bytes(b"{}")

    found = samples(client.get("/metrics").content.decode())

    waiting = {
        dict(labels)["queue"]: value
        for (name, labels), value in found.items()
        if name == "leadflow_celery_queue_waiting"
    }
    assert waiting == {"celery": 0, "intake": 2, "scoring": 0, "delivery": 1, "sla": 0}
    assert found[("leadflow_celery_broker_up", ())] == 1


@pytest.mark.redis
def test_queue_depths_of_the_redis_broker(client, settings):
    import redis
    from kombu import Queue

    # Queues of this test's own, so a worker of another test never takes the messages.
    settings.CELERY_TASK_QUEUES = [Queue("metrics-test-a"), Queue("metrics-test-b")]
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    # kombu's keys carry the transport's prefix (each pytest-xdist process has its own).
    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")
    a, b = f"{prefix}metrics-test-a", f"{prefix}metrics-test-b"
    broker.delete(a, b)
    broker.rpush(a, b"1", b"2", b"3")
    broker.rpush(b + "\x06\x163", b"4")  # a priority-3 message of queue b
    try:
        found = samples(client.get("/metrics").content.decode())
    finally:
        broker.delete(a, b, b + "\x06\x163")

    assert found[("leadflow_celery_queue_waiting", (("queue", "metrics-test-a"),))] == 3
    assert found[("leadflow_celery_queue_waiting", (("queue", "metrics-test-b"),))] == 1
    # Other workers may hold tasks meanwhile: only that it is reported.
    assert found[("leadflow_celery_unacked", ())] >= 0


def test_metrics_report_the_broker_down(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1

    found = samples(client.get("/metrics").content.decode())

    assert found[("leadflow_celery_broker_up", ())] == 0


def test_metrics_answer_only_reads(client):
    assert client.post("/metrics").status_code == 405
    assert client.head("/metrics").status_code == 200
