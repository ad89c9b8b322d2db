"""A webhook is stored by one autocommitted INSERT, not BEGIN + INSERT + COMMIT, and
marked as queued by that INSERT, not by an UPDATE after the send.

Profiling the intake bench (issue #17) showed intake's time is its network round trips
and commits, not its checks; a transaction around one INSERT cost two of its six, the
UPDATE of `enqueued_at` one more commit.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from integrations import services
from integrations.models import InboundEvent, InboundStatus
from tests.integrations.conftest import make_source, post

EVENT = {
    "id": "evt-rt-1",
    "type": "page_view",
    "occurred_at": "2026-01-15T10:00:00+09:00",
    "lead": {"email": "taro@example.jp"},
}


@pytest.fixture
def transactions(monkeypatch):
    """Every change of autocommit on the connection: (False, True) per transaction."""
    seen: list[bool] = []
    original = connection.set_autocommit

    def spy(autocommit, *args, **kwargs):
        seen.append(autocommit)
        return original(autocommit, *args, **kwargs)

    monkeypatch.setattr(connection, "set_autocommit", spy)
    return seen


@pytest.fixture
def sent(monkeypatch):
    """The drain tasks handed to the broker (their options): one per wake-up."""
    wakes: list[dict] = []
    monkeypatch.setattr(
        "integrations.tasks.drain_inbound_events.apply_async",
        lambda args=(), **options: wakes.append(options),
    )
    return wakes


@pytest.mark.django_db(transaction=True)
def test_a_webhook_is_stored_and_wakes_a_worker_without_opening_a_transaction(
    client, transactions, sent
):
    source = make_source("generic")
    transactions.clear()

    with CaptureQueriesContext(connection) as queries:
        response = post(client, source, EVENT)

    assert response.status_code == 202
    event = InboundEvent.objects.get(pk=response.json()["id"])
    assert event.status == InboundStatus.RECEIVED
    assert sent == [{"expires": 30.0}]  # the on-commit wake-up ran (autocommit: at once)
    assert event.enqueued_at is not None
    assert transactions == []
    # The source (first read since make_source saved it, which clears the selector's
    # cache), then one INSERT; no UPDATE of enqueued_at after the send.
    assert [q["sql"].split()[0] for q in queries.captured_queries] == ["SELECT", "INSERT"]


@pytest.mark.django_db(transaction=True)
def test_a_redelivery_is_stored_as_a_duplicate_without_a_transaction(client, transactions):
    source = make_source("generic")
    first = post(client, source, EVENT)
    transactions.clear()

    again = post(client, source, EVENT)

    assert again.status_code == 200
    assert again.json()["duplicate_of"] == first.json()["id"]
    assert InboundEvent.objects.filter(status=InboundStatus.DUPLICATE).count() == 1
    assert transactions == []


@pytest.mark.django_db(transaction=True)
def test_in_a_callers_transaction_a_duplicate_does_not_break_it_and_wakes_on_commit(
    monkeypatch,
):
    woken: list[int] = []
    monkeypatch.setattr(services, "_wake_for", woken.append)
    source = make_source("generic")
    first, _ = services.inbound_event_receive(source=source, body="{}", headers={}, dedup_key="k")

    with transaction.atomic():
        duplicate, created = services.inbound_event_receive(
            source=source, body="{}", headers={}, dedup_key="k"
        )
        fresh, fresh_created = services.inbound_event_receive(
            source=source, body="{}", headers={}, dedup_key="k2"
        )
        # Still usable after the IntegrityError (a savepoint took it), not yet woken for.
        assert InboundEvent.objects.filter(source=source).count() == 3
        assert woken == [first.pk]  # none for the duplicate, nor yet for the fresh one

    assert (created, fresh_created) == (False, True)
    assert duplicate.status == InboundStatus.DUPLICATE
    assert woken == [first.pk, fresh.pk]
    assert InboundEvent.objects.get(pk=fresh.pk).enqueued_at is not None


@pytest.mark.django_db
def test_the_hand_built_insert_writes_the_row_the_orms_create_writes():
    source = make_source("generic")
    now = timezone.now()
    headers = {"Content-Type": "application/json", "X-Request-Id": "abc"}
    body = '{"id": "evt-1", "name": "山田"}'

    event = services._insert_received(
        source=source, body=body, headers=headers, dedup_key="k1", enqueued_at=now
    )
    orm = InboundEvent.objects.create(
        source=source, body=body, headers=headers, dedup_key="k2", enqueued_at=now
    )

    stored = InboundEvent.objects.get(pk=event.pk)
    orm.refresh_from_db()
    differing = {"id", "dedup_key", "received_at"}
    fields = [f.attname for f in InboundEvent._meta.concrete_fields if f.attname not in differing]
    assert {f: getattr(stored, f) for f in fields} == {f: getattr(orm, f) for f in fields}
    assert {f: getattr(event, f) for f in fields} == {f: getattr(orm, f) for f in fields}
    assert stored.dedup_key == "k1"
    assert stored.headers == headers
    assert stored.enqueued_at == now
    assert abs(stored.received_at - orm.received_at) < timedelta(seconds=5)
    assert event._state.adding is False
