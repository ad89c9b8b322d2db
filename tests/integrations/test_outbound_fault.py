"""Fault test: the destination is down while 500 MQLs are created; it comes back; every
message arrives exactly once, in order per lead, and nothing is lost."""

from __future__ import annotations

from collections import Counter

import pytest

from integrations.outbound.delivery import outbox_deliver_due
from integrations.outbound.models import MessageStatus, OutboxMessage
from leadflow.lifecycle import lead_transition
from leadflow.models import Stage
from tests.factories import LeadFactory
from tests.integrations.conftest import make_webhook
from tests.integrations.fakes import WebhookReceiver

MQLS = 500
ACCEPTED_EVERY = 5  # every 5th lead is also accepted while the destination is down


@pytest.mark.django_db
def test_500_mqls_during_an_outage_all_arrive_once_and_in_order(no_kick, clock):
    receiver = WebhookReceiver().start()
    make_webhook(f"{receiver.url}/hook")
    receiver.stop()  # down: connections are refused

    leads = LeadFactory.create_batch(MQLS)
    for number, lead in enumerate(leads):
        lead_transition(lead=lead, to_stage=Stage.MQL, actor="scoring")
        if number % ACCEPTED_EVERY == 0:
            lead_transition(lead=lead, to_stage=Stage.SQL, actor="rep")
        if number % 100 == 99:
            # Workers keep trying during the outage; each try fails and backs off.
            outbox_deliver_due(max_batches=50)
            clock.shift(30)
    expected = MQLS + MQLS // ACCEPTED_EVERY
    assert OutboxMessage.objects.count() == expected
    assert OutboxMessage.objects.filter(status=MessageStatus.DELIVERED).count() == 0
    failed_tries = OutboxMessage.objects.filter(attempts__gt=0).count()
    assert failed_tries >= 400

    receiver.start()  # back, on the same address
    try:
        rounds = 0
        while OutboxMessage.objects.exclude(status=MessageStatus.DELIVERED).exists():
            rounds += 1
            assert rounds < 60, "delivery did not converge"
            outbox_deliver_due(max_batches=50)
            clock.shift(60)
    finally:
        receiver.stop()

    keys = [request.json["idempotency_key"] for request in receiver.requests]
    assert len(keys) == expected
    assert Counter(keys).most_common(1)[0][1] == 1  # exactly once
    assert set(keys) == set(OutboxMessage.objects.values_list("idempotency_key", flat=True))
    per_lead: dict[int, list[str]] = {}
    for request in receiver.requests:
        per_lead.setdefault(request.json["lead"]["id"], []).append(request.json["event"])
    assert len(per_lead) == MQLS
    for number, lead in enumerate(leads):
        wanted = ["mql_created", "accepted"] if number % ACCEPTED_EVERY == 0 else ["mql_created"]
        assert per_lead[lead.pk] == wanted
    assert OutboxMessage.objects.filter(status=MessageStatus.DEAD).count() == 0
