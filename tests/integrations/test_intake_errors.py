"""Bad input gets the one JSON error shape and the right status; nothing accepted is lost."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import time_machine

from integrations.models import InboundEvent, InboundStatus
from leadflow.models import EventKind, Lead
from tests.integrations.conftest import assert_error, deliver, make_source, post

pytestmark = pytest.mark.django_db

GOOD = {"lead": {"email": "a@example.jp"}}


def test_unknown_source_is_404(client):
    response = client.post("/api/v1/intake/nope/", data=b"{}", content_type="application/json")

    error = assert_error(response, 404, "unknown_source")
    assert "nope" in error["message"]
    assert not InboundEvent.objects.exists()


def test_a_slug_the_url_cannot_match_is_the_api_404(client):
    response = client.post("/api/v1/intake/no%20pe/", data=b"{}", content_type="application/json")

    assert_error(response, 404, "not_found")


def test_disabled_source_is_403_never_410(client):
    source = make_source("mautic", enabled=False)

    response = post(client, source, {"mautic.lead_post_save_new": []})

    assert_error(response, 403, "source_disabled")
    assert not InboundEvent.objects.exists()


def test_get_is_405_with_allow(client):
    source = make_source("generic")

    response = client.get(f"/api/v1/intake/{source.slug}/")

    assert_error(response, 405, "method_not_allowed")
    assert response["Allow"] == "POST"


def test_body_over_the_limit_is_413(client, settings):
    settings.INTAKE_MAX_BODY_BYTES = 100
    source = make_source("generic")
    body = json.dumps({"lead": {"email": "a@example.jp", "note": "x" * 200}})

    response = post(client, source, body)

    error = assert_error(response, 413, "payload_too_large")
    assert "100 bytes" in error["message"]
    assert not InboundEvent.objects.exists()


def test_body_at_the_limit_is_accepted(client, settings):
    body = json.dumps({"lead": {"email": "a@example.jp"}}).encode()
    settings.INTAKE_MAX_BODY_BYTES = len(body)
    source = make_source("generic")

    assert post(client, source, body).status_code == 202


def test_default_limit_is_one_mebibyte(settings):
    assert settings.INTAKE_MAX_BODY_BYTES == 1024 * 1024


@pytest.fixture
def mid_minute():
    """The limit counts per fixed minute: requests that straddle a minute's end would be
    counted in two windows (and the test flake on a slow machine). Pinned mid-minute."""
    with time_machine.travel(dt.datetime(2026, 11, 2, 10, 0, 30, tzinfo=dt.UTC), tick=False):
        yield


def test_over_the_rate_limit_is_429_with_retry_after(client, mid_minute):
    source = make_source("generic", rate_limit_per_minute=2)

    answers = [
        post(client, source, {"lead": {"email": f"{n}@example.jp"}}).status_code for n in range(3)
    ]
    refused = post(client, source, {"lead": {"email": "late@example.jp"}})

    assert answers == [202, 202, 429]
    assert_error(refused, 429, "rate_limited")
    assert refused["Retry-After"] == "30"  # the rest of the pinned minute
    assert InboundEvent.objects.count() == 2


def test_rate_limit_counts_each_source_separately(client, mid_minute):
    busy = make_source("generic", "busy", rate_limit_per_minute=1)
    quiet = make_source("generic", "quiet", rate_limit_per_minute=1)

    post(client, busy, GOOD)

    assert post(client, busy, {"lead": {"email": "b@example.jp"}}).status_code == 429
    assert post(client, quiet, GOOD).status_code == 202


def test_unsigned_requests_do_not_use_up_the_rate_limit(client, mid_minute):
    source = make_source("generic", rate_limit_per_minute=1)

    for _ in range(3):
        assert post(client, source, GOOD, sign=False).status_code == 401

    assert post(client, source, GOOD).status_code == 202


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b"not json", "line 1 column 1"),
        (b'{"lead": ', "line 1 column 10"),
        (b"", "line 1 column 1"),
    ],
)
def test_body_that_is_not_json_is_400_with_the_position(client, body, where):
    source = make_source("generic")

    response = post(client, source, body)

    error = assert_error(response, 400, "invalid_json")
    assert error["fields"] == {"body": [where]}
    assert not InboundEvent.objects.exists()


def test_body_that_is_not_utf8_is_400(client):
    source = make_source("generic")

    response = post(client, source, '{"lead": {"email": "山田@example.jp"}}'.encode("cp932"))

    error = assert_error(response, 400, "invalid_json")
    assert error["fields"] == {"body": ["not UTF-8"]}


@pytest.mark.parametrize(
    ("kind", "body", "pointer"),
    [
        ("generic", [], "/"),
        ("generic", "\"just a string\"", "/"),
        ("generic", {"events": {}}, "/events"),
        ("generic", {"events": [GOOD, {"lead": "a@example.jp"}]}, "/events/1/lead"),
        ("generic", [GOOD, 5], "/1"),
        ("generic", {"lead": {"email": "a@example.jp", "tags": ["x"]}}, "/lead/tags"),
        ("generic", {"type": "webinar", "occurred_at": 1, "lead": {}}, "/type"),
        ("generic", {"type": "page_view", "lead": {}}, "/occurred_at"),
        ("generic", {"type": "page_view", "occurred_at": "yesterday", "lead": {}}, "/occurred_at"),
        ("generic", {"type": "page_view", "occurred_at": 1, "properties": [], "lead": {}},
         "/properties"),
        ("mautic", [], "/"),
        ("mautic", {"timestamp": "2024-01-01T00:00:00+00:00"}, "/"),
        ("mautic", {"mautic.lead_post_save_new": "x"}, "/mautic.lead_post_save_new"),
        ("mautic", {"mautic.lead_post_save_new": [5]}, "/mautic.lead_post_save_new/0"),
        ("mautic", {"mautic.lead_post_save_new": [{"contact": 5}]},
         "/mautic.lead_post_save_new/0/contact"),
        ("mautic", {"mautic.form_on_submit": {"submission": []}},
         "/mautic.form_on_submit/submission"),
        ("hubspot", {"objectId": 1}, "/"),
        ("hubspot", [], "/"),
        ("hubspot", [{"objectId": 1}], "/0/subscriptionType"),
        ("hubspot", [{"subscriptionType": "contact.creation"}], "/0/objectId"),
        ("hubspot", [{"eventType": "contact.propertyChange", "objectId": 1}], "/0/propertyName"),
        ("marketo", "\"lead\"", "/"),
        ("marketo", [1], "/0"),
    ],
)  # fmt: skip
def test_json_of_the_wrong_shape_is_400_with_a_pointer(client, kind, body, pointer):
    source = make_source(kind)

    response = post(client, source, body)

    error = assert_error(response, 400, "invalid_payload")
    assert list(error["fields"]) == [pointer]
    assert not InboundEvent.objects.exists()


def test_a_wrong_shape_is_explained_in_the_senders_language_only(client):
    source = make_source("generic")
    body = {"type": "webinar", "occurred_at": 1, "lead": {}}

    ja = assert_error(post(client, source, body, {"Accept-Language": "ja"}), 400, "invalid_payload")
    en = assert_error(post(client, source, body, {"Accept-Language": "en"}), 400, "invalid_payload")

    kinds = ", ".join(EventKind.values)
    assert ja["fields"] == {"/type": [f"次のいずれかである必要があります：{kinds}。"]}
    assert en["fields"] == {"/type": [f"must be one of: {kinds}."]}
    assert "must" not in ja["message"]


def test_valid_json_that_cannot_become_a_lead_is_stored_and_failed(client):
    source = make_source("generic")

    inbound = deliver(client, source, {"lead": {"last_name": "山田"}})

    assert inbound.status == InboundStatus.FAILED
    assert inbound.reason == (
        "event: The payload has no e-mail address and no id of a lead we know."
    )
    assert inbound.result["errors"] == [
        {
            "item": "event",
            "reason": "The payload has no e-mail address and no id of a lead we know.",
        }
    ]
    assert not Lead.objects.exists()


def test_an_invalid_email_fails_that_item_only(client):
    source = make_source("generic")

    inbound = deliver(
        client,
        source,
        [{"lead": {"email": "not-an-address"}}, {"lead": {"email": "ok@example.jp"}}],
    )

    assert inbound.status == InboundStatus.FAILED
    assert inbound.reason == "/0: lead.email: “not-an-address” is not a valid e-mail address."
    assert list(Lead.objects.values_list("email", flat=True)) == ["ok@example.jp"]


def test_an_adapter_crash_on_an_odd_body_is_a_400_not_a_500(client, monkeypatch):
    from integrations.webhook.inbound import ADAPTER

    def explode(payload, *, source):
        raise TypeError("unforeseen")

    monkeypatch.setattr(ADAPTER, "parse", explode)
    source = make_source("generic")

    response = post(client, source, GOOD)

    error = assert_error(response, 400, "invalid_payload")
    assert error["fields"] == {"/": ["unexpected structure"]}


def test_stored_headers_never_include_the_marketo_token(client):
    source = make_source("marketo")

    response = post(client, source, {"lead": {"email_address": "a@example.jp"}})

    assert response.status_code == 202
    headers = InboundEvent.objects.get().headers
    assert "X-LeadFlow-Token" not in headers
    assert headers["Content-Type"] == "application/json"


def test_disabling_a_source_takes_effect_at_once_in_this_process(client):
    source = make_source("generic")
    assert post(client, source, GOOD).status_code == 202  # now cached

    source.enabled = False
    source.save()

    assert_error(post(client, source, {"lead": {"email": "b@example.jp"}}), 403, "source_disabled")
