"""NUL characters and times at the ends of Python's calendar, at both webhook doors.

PostgreSQL stores no NUL in text and no \\u0000 in jsonb: a NUL in an event id made the
intake request a 500, one in a name or a property failed the whole inbound event, and one
in a feedback event id or lead reference made the feedback request a 500. Times such as
0001-01-01T00:00+09:00 parse but overflow on their way to UTC. NULs are dropped (they
mean nothing in an id, a name or a URL); such times are refused like any bad time.
"""

from __future__ import annotations

import json

import pytest

from integrations.models import InboundEvent, InboundStatus
from integrations.outbound.models import FeedbackEvent
from integrations.signing import sign
from leadflow.models import EngagementEvent, Lead, Stage
from tests.factories import LeadFactory
from tests.integrations.conftest import assert_error, deliver, make_salesforce, make_source, post

pytestmark = pytest.mark.django_db

FAR_TIMES = ["0001-01-01T00:00:00+09:00", "9999-12-31T23:59:59-09:00", 7258118400000]


def test_nul_characters_in_an_intake_body_are_dropped_not_a_500(client):
    source = make_source("generic")
    body = {
        "id": "evt-\u00001",
        "type": "page_view",
        "occurred_at": "2026-01-15T10:00:00+09:00",
        "lead": {"email": "ta\u0000ro@example.jp", "last_name": "山\u0000田", "memo\u0000": "x"},
        "properties": {"url": "https://example.jp/\u0000pricing"},
    }

    inbound = deliver(client, source, body)

    assert (inbound.status, inbound.reason) == (InboundStatus.PROCESSED, "")
    assert "\x00" not in inbound.dedup_key
    lead = Lead.objects.get()
    assert (lead.email, lead.last_name, lead.attributes) == (
        "taro@example.jp",
        "山田",
        {"memo": "x"},
    )
    event = EngagementEvent.objects.get()
    assert (event.external_id, event.properties) == (
        "evt-1",
        {"url": "https://example.jp/pricing"},
    )
    # The same delivery again (the NUL still in it) is recognised as the same one.
    again = post(client, source, body)
    assert again.status_code == 200
    assert again.json()["duplicate_of"] == inbound.pk


@pytest.mark.parametrize("when", FAR_TIMES)
def test_an_intake_time_at_the_end_of_the_calendar_is_refused(client, when):
    source = make_source("generic")
    body = {
        "id": "evt-far",
        "type": "page_view",
        "occurred_at": when,
        "lead": {"email": "taro@example.jp"},
    }

    error = assert_error(post(client, source, body), 400, "invalid_payload")

    assert list(error["fields"]) == ["/occurred_at"]
    assert not InboundEvent.objects.exists()


def _feedback(client, destination, document):
    body = json.dumps(document).encode()
    return client.post(
        f"/api/v1/feedback/{destination.slug}/",
        data=body,
        content_type="application/json",
        headers={"X-LeadFlow-Signature": sign("fb-secret", body)},
    )


def test_nul_characters_in_feedback_are_dropped_not_a_500(client):
    sfa = make_salesforce("http://127.0.0.1:9", slug="sfdc", signing_secret="fb-secret")
    lead = LeadFactory(email="taro@example.jp", stage=Stage.SQL)

    response = _feedback(
        client,
        sfa,
        {
            "lead": "taro@\u0000example.jp",
            "outcome": "won",
            "event_id": "won-\u00001",
            "reason": "契約\u0000締結",
            "note\u0000": "x",
        },
    )

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "applied"
    stored = FeedbackEvent.objects.get()
    assert (stored.event_id, stored.lead_id, stored.reason) == ("won-1", lead.pk, "契約締結")
    assert stored.payload["note"] == "x"
    assert Lead.objects.get(pk=lead.pk).stage == Stage.CUSTOMER


@pytest.mark.parametrize("when", FAR_TIMES[:2])
def test_a_feedback_time_at_the_end_of_the_calendar_is_refused(client, when):
    sfa = make_salesforce("http://127.0.0.1:9", slug="sfdc", signing_secret="fb-secret")
    LeadFactory(email="taro@example.jp", stage=Stage.SQL)

    response = _feedback(
        client,
        sfa,
        {"lead": "taro@example.jp", "outcome": "won", "event_id": "e1", "occurred_at": when},
    )

    error = assert_error(response, 400, "validation_error")
    assert list(error["fields"]) == ["/occurred_at"]
    assert not FeedbackEvent.objects.exists()


def test_an_event_dated_years_ahead_fails_its_item_not_the_scoring(client):
    # Decay is 2^(age / half-life): an event in 2099 overflowed the worker's scoring (and
    # PostgreSQL's POWER in every bulk rescore of the lead). Refused per item instead.
    source = make_source("generic")
    body = {
        "events": [
            {
                "id": "far",
                "type": "pricing_page_view",
                "occurred_at": "2099-01-01T10:00:00+09:00",
                "lead": {"email": "far@example.jp"},
            },
            {
                "id": "now",
                "type": "pricing_page_view",
                "occurred_at": "2026-01-15T10:00:00+09:00",
                "lead": {"email": "now@example.jp"},
            },
        ]
    }

    inbound = deliver(client, source, body)

    assert inbound.status == InboundStatus.FAILED
    assert [e["reason"] for e in inbound.result["errors"]] == [
        "The event time 2099-01-01 10:00 is in the future."
    ]
    assert list(EngagementEvent.objects.values_list("external_id", flat=True)) == ["now"]


def test_a_feedback_body_nested_too_deep_is_a_400():
    from django.test import Client

    sfa = make_salesforce("http://127.0.0.1:9", slug="sfdc", signing_secret="fb-secret")
    body = b"[" * 5000 + b"]" * 5000

    response = Client().post(
        f"/api/v1/feedback/{sfa.slug}/",
        data=body,
        content_type="application/json",
        headers={"X-LeadFlow-Signature": sign("fb-secret", body)},
    )

    error = assert_error(response, 400, "invalid_json")
    assert error["fields"] == {"": ["nesting too deep"]}
