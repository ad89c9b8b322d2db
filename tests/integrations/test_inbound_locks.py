"""A worker busy with one inbound event holds up nobody else of the same source."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from integrations import services
from integrations.models import InboundEvent, InboundStatus
from integrations.tasks import process_inbound_event
from leadflow.models import Lead
from tests.integrations.conftest import make_source, post


def page_view(n: int) -> dict:
    return {
        "id": f"evt-{n}",
        "type": "page_view",
        "occurred_at": "2026-01-15T10:00:00+09:00",
        "lead": {"email": f"lead-{n}@example.jp"},
    }


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_worker_mid_event_blocks_neither_intake_nor_another_worker(client, monkeypatch):
    source = make_source("generic")
    first = post(client, source, page_view(1)).json()["id"]
    second = post(client, source, page_view(2)).json()["id"]
    inside, release = threading.Event(), threading.Event()
    original = services._process_locked

    def slow_first(inbound: InboundEvent) -> None:
        if inbound.pk == first:
            inside.set()  # its transaction holds its lock now
            release.wait(timeout=30)
        original(inbound)

    monkeypatch.setattr(services, "_process_locked", slow_first)

    def work() -> None:
        try:
            process_inbound_event(first)
        finally:
            connections.close_all()

    busy = threading.Thread(target=work)
    busy.start()
    try:
        assert inside.wait(timeout=30)
        # Waiting for the busy worker's lock would fail here instead of hanging the run.
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")
        third = post(client, source, page_view(3))
        process_inbound_event(second)
        assert third.status_code == 202
        assert InboundEvent.objects.get(pk=second).status == InboundStatus.PROCESSED
        assert InboundEvent.objects.get(pk=first).status == InboundStatus.RECEIVED
    finally:
        release.set()
        busy.join(timeout=30)

    assert InboundEvent.objects.get(pk=first).status == InboundStatus.PROCESSED
    assert sorted(Lead.objects.values_list("email", flat=True)) == [
        "lead-1@example.jp",
        "lead-2@example.jp",
    ]
