"""Redeliveries are acknowledged and not processed twice; failures can be re-processed."""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
from django.db import connection, connections

from integrations import services
from integrations.models import InboundEvent, InboundStatus
from integrations.services import inbound_event_reprocess, inbound_events_requeue_stale
from integrations.tasks import process_inbound_event
from leadflow.models import EngagementEvent, EventKind, Lead
from tests.integrations.conftest import deliver, make_source, post

pytestmark = pytest.mark.django_db

PAGE_VIEW = {
    "id": "evt-1",
    "type": "pricing_page_view",
    "occurred_at": "2026-01-15T10:00:00+09:00",
    "lead": {"email": "taro@example.jp"},
    "properties": {"url": "https://example.jp/pricing"},
}


def test_same_event_id_is_a_duplicate_even_with_another_body(client):
    source = make_source("generic")
    first = post(client, source, PAGE_VIEW)

    again = post(client, source, {**PAGE_VIEW, "properties": {"url": "https://example.jp/x"}})

    assert first.status_code == 202
    assert again.status_code == 200
    original = InboundEvent.objects.get(pk=first.json()["id"])
    assert again.json() == {
        "status": "duplicate",
        "id": again.json()["id"],
        "duplicate_of": original.pk,
    }
    duplicate = InboundEvent.objects.get(pk=again.json()["id"])
    assert duplicate.status == InboundStatus.DUPLICATE
    assert duplicate.duplicate_of == original
    assert duplicate.reason == f"Same delivery as inbound event #{original.pk}."


def test_same_body_without_ids_is_a_duplicate(client):
    source = make_source("mautic")
    body = (
        b'{"mautic.lead_post_save_new":[{"contact":{"id":3,'
        b'"fields":{"core":{"email":{"value":"a@example.jp"}}}}}]}'
    )

    answers = [post(client, source, body).status_code for _ in range(3)]

    assert answers == [202, 200, 200]
    assert InboundEvent.objects.filter(status=InboundStatus.RECEIVED).count() == 1
    assert InboundEvent.objects.filter(status=InboundStatus.DUPLICATE).count() == 2


def test_a_hubspot_retry_with_a_higher_attempt_number_is_a_duplicate(client):
    source = make_source("hubspot")
    note = {"eventId": 1, "subscriptionType": "contact.creation", "objectId": 9, "attemptNumber": 0}

    first = post(client, source, [note])
    retry = post(client, source, [{**note, "attemptNumber": 1}])

    assert (first.status_code, retry.status_code) == (202, 200)


def test_a_duplicate_is_never_processed(client):
    source = make_source("generic")
    post(client, source, PAGE_VIEW)
    duplicate_id = post(client, source, PAGE_VIEW).json()["id"]

    process_inbound_event(duplicate_id)

    assert InboundEvent.objects.get(pk=duplicate_id).status == InboundStatus.DUPLICATE
    assert not Lead.objects.exists()


def test_processing_twice_records_the_event_once(client):
    source = make_source("generic")
    inbound = deliver(client, source, PAGE_VIEW)

    process_inbound_event(inbound.pk)

    assert inbound.status == InboundStatus.PROCESSED
    assert inbound.attempts == 1
    assert InboundEvent.objects.get(pk=inbound.pk).attempts == 1
    event = EngagementEvent.objects.get()
    assert (event.kind, event.external_id, event.source) == (
        EventKind.PRICING_PAGE_VIEW,
        "evt-1",
        "generic-test",
    )
    assert event.occurred_at == dt.datetime(2026, 1, 15, 1, 0, tzinfo=dt.UTC)


def test_the_same_event_id_in_another_delivery_is_not_recorded_twice(client):
    source = make_source("generic")
    deliver(client, source, PAGE_VIEW)

    # A batch that repeats evt-1 next to a new event: a different delivery, same event.
    batch = deliver(client, source, {"events": [PAGE_VIEW, {**PAGE_VIEW, "id": "evt-2"}]})

    assert batch.status == InboundStatus.PROCESSED
    assert batch.result["events_created"] == 1
    assert sorted(EngagementEvent.objects.values_list("external_id", flat=True)) == [
        "evt-1",
        "evt-2",
    ]


def test_reprocessing_after_a_mapping_fix_turns_a_failure_into_a_lead(client):
    source = make_source("generic")
    inbound = deliver(
        client,
        source,
        {"lead": {"mail": "hanako@example.jp", "sei": "佐藤"}, "type": "form_submit",
         "occurred_at": "2026-01-15T10:00:00+09:00"},
    )  # fmt: skip
    assert inbound.status == InboundStatus.FAILED
    assert not Lead.objects.exists()

    source.mapping["fields"].update({"mail": "email", "sei": "last_name"})
    source.save()
    queued = inbound_event_reprocess(inbound_event_id=inbound.pk)
    process_inbound_event(inbound.pk)

    inbound.refresh_from_db()
    assert queued is True
    assert inbound.status == InboundStatus.PROCESSED
    assert inbound.reason == ""
    assert inbound.attempts == 2
    lead = Lead.objects.get(email="hanako@example.jp")
    assert lead.last_name == "佐藤"
    assert EngagementEvent.objects.get().external_id == f"inbound:{inbound.pk}:0"


def test_reprocessing_a_partly_failed_batch_does_not_double_what_succeeded(client):
    source = make_source("generic")
    body = {
        "events": [
            {"type": "page_view", "occurred_at": 1768438800, "lead": {"email": "a@example.jp"}},
            {"type": "page_view", "occurred_at": 1768438800, "lead": {"mail": "b@example.jp"}},
        ]
    }
    inbound = deliver(client, source, body)
    assert (inbound.status, EngagementEvent.objects.count()) == (InboundStatus.FAILED, 1)

    source.mapping["fields"]["mail"] = "email"
    source.save()
    inbound_event_reprocess(inbound_event_id=inbound.pk)
    process_inbound_event(inbound.pk)

    inbound.refresh_from_db()
    assert inbound.status == InboundStatus.PROCESSED
    assert EngagementEvent.objects.count() == 2


def test_only_failed_events_can_be_reprocessed(client):
    source = make_source("generic")
    inbound = deliver(client, source, PAGE_VIEW)

    assert inbound_event_reprocess(inbound_event_id=inbound.pk) is False
    assert InboundEvent.objects.get(pk=inbound.pk).status == InboundStatus.PROCESSED


def test_receiving_enqueues_processing_on_commit(
    client, django_capture_on_commit_callbacks, monkeypatch
):
    enqueued: list[int] = []
    monkeypatch.setattr(services, "_wake_for", enqueued.append)
    source = make_source("generic")

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post(client, source, PAGE_VIEW)

    assert len(callbacks) == 1
    assert enqueued == [response.json()["id"]]


def test_a_broker_outage_does_not_fail_the_request(
    client, django_capture_on_commit_callbacks, monkeypatch
):
    from integrations.tasks import drain_inbound_events as task

    def broken(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(task, "apply_async", broken)
    source = make_source("generic")

    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, source, PAGE_VIEW)

    assert response.status_code == 202
    # Stored, and not marked as queued (the INSERT's mark is taken back): the sweep's
    # "never queued" events, taken after the lease whatever the queue holds.
    assert InboundEvent.objects.values_list("status", "enqueued_at").get() == (
        InboundStatus.RECEIVED,
        None,
    )


def test_the_sweep_requeues_events_left_received(client, monkeypatch):
    enqueued: list[int] = []
    monkeypatch.setattr(services, "_enqueue", enqueued.append)
    source = make_source("generic")
    old = InboundEvent.objects.create(source=source, body="{}", dedup_key="a")
    InboundEvent.objects.filter(pk=old.pk).update(
        received_at=old.received_at - dt.timedelta(hours=1)
    )
    InboundEvent.objects.create(source=source, body="{}", dedup_key="b")  # fresh: left alone

    assert inbound_events_requeue_stale() == 1
    assert enqueued == [old.pk]


def test_an_unexpected_error_marks_the_event_failed_instead_of_leaving_it(client, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("scoring exploded")

    monkeypatch.setattr(services, "lead_score_changes", broken)
    source = make_source("generic")
    response = post(client, source, PAGE_VIEW)

    process_inbound_event(response.json()["id"])

    inbound = InboundEvent.objects.get()
    assert inbound.status == InboundStatus.FAILED
    assert inbound.reason == "Internal error: RuntimeError('scoring exploded')"
    assert not Lead.objects.exists()  # the transaction was rolled back


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_same_delivery_stored_by_two_requests_at_once_is_processed_once():
    source = make_source("generic")
    body = json.dumps(PAGE_VIEW)
    start = threading.Barrier(2)
    created: list[bool] = []

    def receive() -> None:
        try:
            start.wait()
            _event, was_created = services.inbound_event_receive(
                source=source, body=body, headers={}, dedup_key="id:evt-1"
            )
            created.append(was_created)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=receive) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert connection.vendor == "postgresql"
    assert sorted(created) == [False, True]
    assert InboundEvent.objects.filter(status=InboundStatus.RECEIVED).count() == 1
    duplicate = InboundEvent.objects.get(status=InboundStatus.DUPLICATE)
    assert duplicate.duplicate_of == InboundEvent.objects.get(status=InboundStatus.RECEIVED)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_processing_one_event_record_it_once(client):
    source = make_source("generic")
    response = post(client, source, PAGE_VIEW)
    inbound_id = response.json()["id"]
    start = threading.Barrier(2)

    def work() -> None:
        try:
            start.wait()
            process_inbound_event(inbound_id)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    inbound = InboundEvent.objects.get(pk=inbound_id)
    assert (inbound.status, inbound.attempts) == (InboundStatus.PROCESSED, 1)
    assert EngagementEvent.objects.count() == 1
    assert Lead.objects.count() == 1
