"""Batches: processed in chunks that commit as they go, each item's result recorded, one
odd value an item error naming its field (issue #14, findings 2 and 3)."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
import time_machine
from celery.exceptions import SoftTimeLimitExceeded
from django.db import connections
from django.utils import timezone

from integrations import services
from integrations.models import InboundEvent, InboundItemResult, InboundStatus, ItemOutcome
from integrations.services import inbound_event_process, inbound_event_reprocess, leads_import_csv
from integrations.tasks import process_inbound_event
from leadflow.models import EngagementEvent, Lead, Stage, StageTransition
from tests.integrations.conftest import ensure_default_scoring_model, make_source, post


def _event(n: int, **lead) -> dict:
    return {
        "id": f"evt-{n}",
        "type": "page_view",
        "occurred_at": "2026-01-15T10:00:00+09:00",
        "lead": {"email": f"lead-{n}@example.jp", "last_name": "山田", **lead},
    }


def _consultation(n: int) -> dict:
    # Fit 20+ with a hand-raiser: each of these leads becomes an MQL (one StageTransition).
    event = _event(n, job_title="部長", company=f"株式会社テスト{n}", employee_count=500)
    return {**event, "type": "consultation"}


def _store(client, source, body: dict | list) -> int:
    # ensure_ascii: a lone surrogate is sent as the escape "\ud800", as a sender's JSON
    # encoder writes it; allow_nan (the default) writes Infinity as JavaScript does.
    response = post(client, source, json.dumps(body).encode())
    assert response.status_code == 202, response.content
    return response.json()["id"]


ODD_VALUES = [
    pytest.param(
        {"lead": {"email": "odd@example.jp", "last_name": "長" * 101}},
        "lead.last_name",
        "at most 100 characters (this one has 101).",
        id="last_name-101-chars",
    ),
    pytest.param(
        {"lead": {"email": "odd@example.jp", "employee_count": float("inf")}},
        "lead.employee_count",
        "“inf” is not a number.",
        id="employee_count-Infinity",
    ),
    pytest.param(
        {"lead": {"email": "odd@example.jp", "last_name": "\ud800"}},
        "lead.last_name",
        "contains an invalid character (a lone UTF-16 surrogate such as \\ud800).",
        id="lone-surrogate",
    ),
    pytest.param(
        {"lead": {"email": "odd@example.jp", "id": "x" * 256}},
        "lead.id",
        "at most 255 characters (this one has 256).",
        id="lead-id-256-chars",
    ),
    pytest.param(
        {"occurred_at": "2026-12-01T10:00:00+20:00"},
        "occurred_at",
        "the UTC offset +2000 is outside -14:00 … +14:00.",
        id="offset-plus-20",
    ),
    pytest.param(
        {"properties": {"score": float("nan")}},
        "properties.score",
        "must be a finite number (not Infinity or NaN).",
        id="properties-NaN",
    ),
    pytest.param(
        {"lead": {"email": "odd@example.jp", "company": "社" * 201}},
        "lead.company",
        "at most 200 characters (this one has 201).",
        id="company-name-201-chars",
    ),
]


def _odd(n: int, change: dict) -> dict:
    event = _event(n)
    for key, value in change.items():
        event[key] = {**event[key], **value} if key == "lead" else value
    return event


@pytest.mark.django_db
@pytest.mark.parametrize(("change", "field", "reason"), ODD_VALUES)
def test_one_odd_value_in_a_batch_of_ten_is_an_item_error_and_the_nine_others_apply(
    client, change, field, reason
):
    source = make_source("generic")
    events = [_event(n) for n in range(10)]
    events[3] = _odd(3, change)

    inbound_id = _store(client, source, {"events": events})
    process_inbound_event(inbound_id)

    inbound = InboundEvent.objects.get(pk=inbound_id)
    assert inbound.status == InboundStatus.FAILED
    assert inbound.reason == f"/events/3: {field}: {reason}"
    assert (inbound.result["applied"], inbound.result["failed"]) == (9, 1)
    assert inbound.result["errors"] == [{"item": "/events/3", "field": field, "reason": reason}]
    assert EngagementEvent.objects.count() == 9
    assert sorted(Lead.objects.values_list("email", flat=True)) == sorted(
        f"lead-{n}@example.jp" for n in range(10) if n != 3
    )
    refused = InboundItemResult.objects.get(inbound_event_id=inbound_id, index=3)
    assert (refused.outcome, refused.field, refused.reason) == (ItemOutcome.FAILED, field, reason)


@pytest.mark.django_db
@pytest.mark.parametrize(("change", "field", "reason"), ODD_VALUES)
def test_the_same_odd_value_as_a_single_event_fails_it_with_the_field_named(
    client, change, field, reason
):
    source = make_source("generic")

    inbound_id = _store(client, source, _odd(1, change))
    process_inbound_event(inbound_id)

    inbound = InboundEvent.objects.get(pk=inbound_id)
    assert (inbound.status, inbound.reason) == (InboundStatus.FAILED, f"event: {field}: {reason}")
    assert not Lead.objects.exists()
    assert not EngagementEvent.objects.exists()


@pytest.mark.django_db
def test_an_offset_of_fourteen_hours_is_a_real_one_and_applies(client):
    source = make_source("generic")
    event = {**_event(1), "occurred_at": "2026-01-15T10:00:00+14:00"}  # Pacific/Kiritimati

    inbound_id = _store(client, source, event)
    process_inbound_event(inbound_id)

    assert InboundEvent.objects.get(pk=inbound_id).status == InboundStatus.PROCESSED
    assert EngagementEvent.objects.get().occurred_at.isoformat() == "2026-01-14T20:00:00+00:00"


@pytest.mark.django_db
def test_an_event_id_with_a_lone_surrogate_is_stored_not_a_500(client):
    source = make_source("generic")
    event = {**_event(1), "id": "evt-\ud800"}

    inbound_id = _store(client, source, event)

    inbound = InboundEvent.objects.get(pk=inbound_id)
    assert inbound.dedup_key.startswith("sha256-id:")
    process_inbound_event(inbound_id)
    inbound.refresh_from_db()
    assert (inbound.status, inbound.reason) == (
        InboundStatus.FAILED,
        "event: id: contains an invalid character (a lone UTF-16 surrogate such as \\ud800).",
    )


@pytest.mark.django_db
def test_the_admin_shows_a_body_with_a_lone_surrogate_and_the_item_errors(
    client, admin_client, admin_pages
):
    source = make_source("generic")
    events = [_event(0), _odd(1, {"lead": {"email": "odd@example.jp", "last_name": "\ud800"}})]
    inbound_id = _store(client, source, {"events": events})
    process_inbound_event(inbound_id)

    page = admin_client.get(f"/admin/integrations/inboundevent/{inbound_id}/change/")

    assert page.status_code == 200
    text = page.content.decode()
    assert "\ufffd" in text  # the surrogate, shown as the replacement character
    assert "lead.last_name" in text
    assert "contains an invalid character" in text


@pytest.mark.django_db
def test_a_csv_row_with_a_value_too_long_names_its_column():
    text = "メールアドレス,姓\r\nok@example.jp,山田\r\nlong@example.jp," + "長" * 101 + "\r\n"
    data = text.encode("cp932")

    report = leads_import_csv(data=data)

    assert report.errors == [(3, "姓: at most 100 characters (this one has 101).")]
    assert list(Lead.objects.values_list("email", flat=True)) == ["ok@example.jp"]


# --- chunks, cursor, lease -------------------------------------------------------------


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(services, "CHUNK_SIZE", 10)


def _interrupt_at(monkeypatch, index: int, error: BaseException) -> None:
    """The item at `index` raises `error` (once), as a worker stopped mid-chunk would."""
    original = services._item_result
    raised = []

    def stopping(inbound, source, at, item):
        if at == index and not raised:
            raised.append(at)
            raise error
        return original(inbound, source, at, item)

    monkeypatch.setattr(services, "_item_result", stopping)


def _assert_applied_once(inbound_id: int, count: int) -> None:
    inbound = InboundEvent.objects.get(pk=inbound_id)
    assert inbound.status == InboundStatus.PROCESSED, inbound.reason
    assert (inbound.items_total, inbound.items_done) == (count, count)
    assert (inbound.result["applied"], inbound.result["events_created"]) == (count, count)
    assert EngagementEvent.objects.count() == count
    assert StageTransition.objects.filter(to_stage=Stage.MQL).count() == count
    assert Lead.objects.filter(stage=Stage.MQL).count() == count
    results = InboundItemResult.objects.filter(inbound_event_id=inbound_id)
    assert sorted(results.values_list("index", flat=True)) == list(range(count))
    assert (inbound.claimed_by, inbound.lease_until) == ("", None)


@pytest.mark.django_db
def test_a_batch_stopped_by_the_time_limit_after_a_chunk_continues_and_applies_each_once(
    client, small_chunks, monkeypatch
):
    source = make_source("generic")
    inbound_id = _store(client, source, {"events": [_consultation(n) for n in range(25)]})
    _interrupt_at(monkeypatch, 13, SoftTimeLimitExceeded())
    enqueued = []
    monkeypatch.setattr(services, "_enqueue", enqueued.append)

    process_inbound_event(inbound_id)

    # The first chunk committed; the second rolled back whole; the rest is handed over.
    inbound = InboundEvent.objects.get(pk=inbound_id)
    assert (inbound.status, inbound.items_done, inbound.claimed_by) == (
        InboundStatus.RECEIVED,
        10,
        "",
    )
    assert EngagementEvent.objects.count() == 10
    assert enqueued == [inbound_id]

    process_inbound_event(inbound_id)  # the handed-over task

    _assert_applied_once(inbound_id, 25)
    assert InboundEvent.objects.get(pk=inbound_id).attempts == 2


@pytest.mark.django_db
def test_a_batch_that_crashed_after_a_chunk_is_re_processed_without_applying_twice(
    client, small_chunks, monkeypatch
):
    source = make_source("generic")
    inbound_id = _store(client, source, {"events": [_consultation(n) for n in range(25)]})
    _interrupt_at(monkeypatch, 21, RuntimeError("worker crashed"))

    process_inbound_event(inbound_id)

    inbound = InboundEvent.objects.get(pk=inbound_id)
    assert (inbound.status, inbound.reason) == (
        InboundStatus.FAILED,
        "Internal error: RuntimeError('worker crashed')",
    )
    assert (inbound.items_done, EngagementEvent.objects.count()) == (20, 20)

    assert inbound_event_reprocess(inbound_event_id=inbound_id)
    process_inbound_event(inbound_id)

    _assert_applied_once(inbound_id, 25)


@pytest.mark.django_db
def test_a_re_process_after_a_fix_retries_only_the_failed_items(client, small_chunks):
    source = make_source("generic")
    events = [_event(n) for n in range(25)]
    events[4]["lead"]["last_name"] = "長" * 101
    events[17]["lead"]["last_name"] = "長" * 101
    inbound_id = _store(client, source, {"events": events})
    process_inbound_event(inbound_id)
    inbound = InboundEvent.objects.get(pk=inbound_id)
    assert (inbound.status, inbound.result["applied"], inbound.result["failed"]) == (
        InboundStatus.FAILED,
        23,
        2,
    )
    applied_before = dict(
        InboundItemResult.objects.filter(outcome=ItemOutcome.APPLIED).values_list("index", "pk")
    )

    # The mapping fix: the sender's last_name is kept as a custom attribute instead.
    source.mapping["fields"]["last_name"] = "attributes.long_last_name"
    source.save()
    assert inbound_event_reprocess(inbound_event_id=inbound_id)
    process_inbound_event(inbound_id)

    inbound.refresh_from_db()
    assert inbound.status == InboundStatus.PROCESSED
    assert (inbound.result["applied"], inbound.result["failed"]) == (25, 0)
    assert EngagementEvent.objects.count() == 25
    # The 23 applied items were passed over (their rows are the same rows), not redone.
    still = InboundItemResult.objects.filter(index__in=applied_before).values_list("index", "pk")
    assert dict(still) == applied_before
    assert Lead.objects.get(email="lead-4@example.jp").attributes["long_last_name"] == "長" * 101


@pytest.mark.django_db
def test_a_run_hands_over_after_its_time_budget(client, small_chunks, monkeypatch):
    source = make_source("generic")
    inbound_id = _store(client, source, {"events": [_event(n) for n in range(25)]})
    enqueued = []
    monkeypatch.setattr(services, "_enqueue", enqueued.append)

    inbound_event_process(inbound_event_id=inbound_id, time_budget=0)

    inbound = InboundEvent.objects.get(pk=inbound_id)
    assert (inbound.status, inbound.items_done, inbound.claimed_by, inbound.lease_until) == (
        InboundStatus.RECEIVED,
        10,
        "",
        None,
    )
    assert enqueued == [inbound_id]
    inbound_event_process(inbound_event_id=inbound_id, time_budget=None)
    assert InboundEvent.objects.get(pk=inbound_id).status == InboundStatus.PROCESSED
    assert EngagementEvent.objects.count() == 25


@pytest.mark.django_db
def test_a_task_for_an_event_another_worker_holds_does_nothing_until_its_lease_ends(client):
    source = make_source("generic")
    inbound_id = _store(client, source, _event(1))
    lease_end = timezone.now() + timedelta(seconds=60)
    InboundEvent.objects.filter(pk=inbound_id).update(
        claimed_by="other-host:123:abcd", lease_until=lease_end, attempts=1
    )

    process_inbound_event(inbound_id)

    inbound = InboundEvent.objects.get(pk=inbound_id)
    assert (inbound.status, inbound.attempts, inbound.claimed_by) == (
        InboundStatus.RECEIVED,
        1,
        "other-host:123:abcd",
    )
    assert not Lead.objects.exists()

    # That worker died between two chunks: once its lease has run out, the event is taken.
    with time_machine.travel(lease_end + timedelta(seconds=1)):
        process_inbound_event(inbound_id)

    inbound.refresh_from_db()
    assert (inbound.status, inbound.attempts, inbound.claimed_by) == (
        InboundStatus.PROCESSED,
        2,
        "",
    )
    assert EngagementEvent.objects.count() == 1


@pytest.mark.django_db
def test_a_redelivered_task_of_a_finished_event_changes_nothing(client, small_chunks):
    source = make_source("generic")
    inbound_id = _store(client, source, {"events": [_event(n) for n in range(25)]})
    process_inbound_event(inbound_id)
    before = InboundEvent.objects.values().get(pk=inbound_id)

    process_inbound_event(inbound_id)

    assert InboundEvent.objects.values().get(pk=inbound_id) == before
    assert before["status"] == InboundStatus.PROCESSED
    assert InboundItemResult.objects.count() == 25
    assert EngagementEvent.objects.count() == 25


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_one_batch_apply_each_item_once(client, small_chunks):
    ensure_default_scoring_model()
    source = make_source("generic")
    inbound_id = _store(client, source, {"events": [_consultation(n) for n in range(40)]})
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def worker() -> None:
        try:
            start.wait(timeout=30)
            # No time budget: each keeps going until the event is done or held by the other.
            inbound_event_process(inbound_event_id=inbound_id, time_budget=None)
        except BaseException as error:  # reported below, not lost in the thread
            failures.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    # The loser waited for the winner's chunk, then saw its lease and stepped aside (or
    # found the event finished); the winner did every chunk.
    assert failures == []
    _assert_applied_once(inbound_id, 40)
    assert InboundEvent.objects.get(pk=inbound_id).attempts == 1
