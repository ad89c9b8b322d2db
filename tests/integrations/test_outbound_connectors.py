"""Connectors against local servers that answer like Salesforce, HubSpot and a receiver."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from integrations.outbound.base import parse_retry_after
from integrations.outbound.delivery import outbox_deliver_due
from integrations.outbound.models import MessageStatus, OutboxMessage
from integrations.signing import SignatureError, verify
from leadflow.lifecycle import lead_transition
from leadflow.models import LeadExternalId, Stage
from tests.factories import CompanyFactory, LeadFactory
from tests.integrations.conftest import (
    T0,
    WEBHOOK_SECRET,
    make_hubspot,
    make_salesforce,
    make_webhook,
    stored_score,
)
from tests.integrations.fakes import FakeServer, Reply, hubspot_429


def to_mql(lead):
    stored_score(lead, fit=45, engagement=62)
    return lead_transition(lead=lead, to_stage=Stage.MQL, actor="scoring")


def redeliver(message: OutboxMessage) -> None:
    """Deliver the same message again, as a redelivery after a lost acknowledgement would."""
    OutboxMessage.objects.filter(pk=message.pk).update(
        status=MessageStatus.PENDING, next_attempt_at=T0
    )
    outbox_deliver_due()


def one_message() -> OutboxMessage:
    return OutboxMessage.objects.get()


@pytest.fixture
def lead(db):
    company = CompanyFactory(
        name="株式会社サンプル", employee_count=320, industry="it", prefecture="大阪府"
    )
    return LeadFactory(
        email="taro@sample.co.jp",
        last_name="山田",
        first_name="太郎",
        job_title="情報システム部長",
        phone="06-1234-5678",
        company=company,
        source="mautic",
    )


# --- Salesforce -----------------------------------------------------------------------


@pytest.mark.django_db
def test_salesforce_creates_the_lead_by_external_id(no_kick, clock, salesforce, lead):
    destination = make_salesforce(salesforce.url)
    to_mql(lead)

    stats = outbox_deliver_due()

    token_call, upsert = salesforce.requests
    assert token_call.path == "/services/oauth2/token"
    assert token_call.form == {
        "grant_type": "client_credentials",
        "client_id": "3MVG9-client",
        "client_secret": "client-secret",
    }
    assert upsert.method == "PATCH"
    assert upsert.path == f"/services/data/v60.0/sobjects/Lead/LeadFlow_Id__c/{lead.pk}"
    assert upsert.headers["Authorization"] == "Bearer 00Dtok1"
    assert upsert.json == {
        "LastName": "山田",
        "FirstName": "太郎",
        "Company": "株式会社サンプル",
        "Email": "taro@sample.co.jp",
        "Phone": "06-1234-5678",
        "Title": "情報システム部長",
        "Industry": "Technology",
        "NumberOfEmployees": 320,
        "State": "大阪府",
        "LeadSource": "mautic",
        "Status": "Open - Not Contacted",
        "LeadFlow_Fit_Score__c": 45,
        "LeadFlow_Engagement_Score__c": 62,
    }
    message = one_message()
    assert stats.delivered == 1
    assert message.status == MessageStatus.DELIVERED
    assert message.response_status == 201
    assert message.remote_id == "00Q4S0000000000001"
    assert message.info["created"] is True
    assert message.info["limit_info"] == "api-usage=8371/15000"
    assert message.delivered_at == T0
    assert LeadExternalId.objects.get(lead=lead, system="salesforce").external_id == (
        "00Q4S0000000000001"
    )
    destination.refresh_from_db()
    assert destination.access_token == "00Dtok1"
    assert destination.last_limit_info == "api-usage=8371/15000"


@pytest.mark.django_db
def test_salesforce_delivering_the_same_message_twice_updates_the_one_record(
    no_kick, clock, salesforce, lead
):
    make_salesforce(salesforce.url)
    to_mql(lead)
    outbox_deliver_due()

    redeliver(one_message())

    message = one_message()
    assert len(salesforce.leads) == 1
    assert message.response_status == 200
    assert message.info["created"] is False
    assert salesforce.token_count == 1  # the cached token was reused
    assert LeadExternalId.objects.filter(lead=lead, system="salesforce").count() == 1


@pytest.mark.django_db
def test_salesforce_uses_the_refresh_token_grant_when_one_is_set(no_kick, clock, salesforce, lead):
    make_salesforce(salesforce.url, refresh_token="5Aep861-refresh")
    to_mql(lead)

    outbox_deliver_due()

    assert salesforce.requests[0].form == {
        "grant_type": "refresh_token",
        "refresh_token": "5Aep861-refresh",
        "client_id": "3MVG9-client",
        "client_secret": "client-secret",
    }
    assert one_message().status == MessageStatus.DELIVERED


@pytest.mark.django_db
def test_salesforce_401_invalid_session_refreshes_the_token_once_and_retries(
    no_kick, clock, salesforce, lead
):
    destination = make_salesforce(salesforce.url, access_token="00Dexpired")
    to_mql(lead)

    outbox_deliver_due()

    upsert_path = f"/services/data/v60.0/sobjects/Lead/LeadFlow_Id__c/{lead.pk}"
    assert [(r.method, r.path) for r in salesforce.requests] == [
        ("PATCH", upsert_path),
        ("POST", "/services/oauth2/token"),
        ("PATCH", upsert_path),
    ]
    assert salesforce.requests[0].headers["Authorization"] == "Bearer 00Dexpired"
    assert salesforce.requests[2].headers["Authorization"] == "Bearer 00Dtok1"
    assert one_message().status == MessageStatus.DELIVERED
    destination.refresh_from_db()
    assert destination.access_token == "00Dtok1"
    assert destination.access_token_at == T0


@pytest.mark.django_db
def test_salesforce_refused_token_request_waits_for_a_credentials_fix(
    no_kick, clock, salesforce, lead
):
    make_salesforce(salesforce.url)
    salesforce.token_error = Reply(
        400, {"error": "invalid_client", "error_description": "invalid client credentials"}
    )
    to_mql(lead)

    outbox_deliver_due()

    message = one_message()
    assert message.status == MessageStatus.PENDING
    assert message.last_error == (
        "HTTP 400: Salesforce refused the OAuth token request (invalid_client: invalid client "
        "credentials); check the destination's credentials."
    )


@pytest.mark.django_db
def test_salesforce_required_field_missing_is_a_permanent_error(no_kick, clock, salesforce):
    make_salesforce(salesforce.url)
    to_mql(LeadFactory(last_name="", company=CompanyFactory(name="株式会社X")))

    stats = outbox_deliver_due()

    message = one_message()
    assert (stats.dead, message.status, message.attempts) == (1, MessageStatus.DEAD, 1)
    assert message.last_error == (
        "HTTP 400: Salesforce did not accept the lead: REQUIRED_FIELD_MISSING: "
        "Required fields are missing: [LastName] (fields: LastName)"
    )


@pytest.mark.django_db
def test_salesforce_300_ambiguous_external_id_is_a_permanent_error(
    no_kick, clock, salesforce, lead
):
    make_salesforce(salesforce.url)
    salesforce.duplicates.add(str(lead.pk))
    to_mql(lead)

    outbox_deliver_due()

    message = one_message()
    assert message.status == MessageStatus.DEAD
    assert message.response_status == 300
    assert message.last_error == (
        f"HTTP 300: LeadFlow_Id__c={lead.pk} matches more than one Salesforce record "
        "(/services/data/v60.0/sobjects/Lead/00Qdup1, /services/data/v60.0/sobjects/Lead/00Qdup2); "
        "merge them in Salesforce, then replay."
    )


@pytest.mark.django_db
def test_salesforce_converted_lead_sends_this_and_later_updates_to_the_contact(
    no_kick, clock, salesforce, lead
):
    make_salesforce(salesforce.url)
    to_mql(lead)
    outbox_deliver_due()
    salesforce.convert(str(lead.pk), contact="0035g00000ABCDE", opportunity="0065g00000FGHIJ")
    lead_transition(lead=lead, to_stage=Stage.SQL, actor="rep-a")
    salesforce.requests.clear()

    outbox_deliver_due()

    steps = [(r.method, r.path) for r in salesforce.requests]
    assert steps == [
        ("PATCH", f"/services/data/v60.0/sobjects/Lead/LeadFlow_Id__c/{lead.pk}"),
        ("GET", f"/services/data/v60.0/sobjects/Lead/LeadFlow_Id__c/{lead.pk}"),
        ("PATCH", "/services/data/v60.0/sobjects/Contact/0035g00000ABCDE"),
    ]
    assert salesforce.requests[1].query["fields"] == [
        "Id,IsConverted,ConvertedContactId,ConvertedOpportunityId"
    ]
    assert salesforce.contacts["0035g00000ABCDE"] == {
        "LastName": "山田",
        "FirstName": "太郎",
        "Email": "taro@sample.co.jp",
        "Phone": "06-1234-5678",
        "Title": "情報システム部長",
    }
    accepted = OutboxMessage.objects.get(event="accepted")
    assert accepted.status == MessageStatus.DELIVERED
    assert accepted.remote_id == "0035g00000ABCDE"
    assert accepted.info["converted"] is True
    links = dict(LeadExternalId.objects.filter(lead=lead).values_list("system", "external_id"))
    assert links == {
        "salesforce": "00Q4S0000000000001",
        "salesforce_contact": "0035g00000ABCDE",
        "salesforce_opportunity": "0065g00000FGHIJ",
    }

    # Later updates go straight to the contact, not to the dead lead.
    salesforce.requests.clear()
    lead_transition(lead=lead, to_stage=Stage.CUSTOMER, actor="sfa:salesforce")
    outbox_deliver_due()
    assert [(r.method, r.path) for r in salesforce.requests] == [
        ("PATCH", "/services/data/v60.0/sobjects/Contact/0035g00000ABCDE"),
    ]


@pytest.mark.django_db
def test_salesforce_5xx_and_request_limit_are_retried(no_kick, clock, salesforce, lead):
    make_salesforce(salesforce.url, access_token="00Dtok1")
    salesforce.valid_tokens.add("00Dtok1")
    salesforce.script.append(
        Reply(
            403,
            [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
            {"Sforce-Limit-Info": "api-usage=15001/15000"},
        )
    )
    salesforce.script.append(Reply(503, None))
    to_mql(lead)

    outbox_deliver_due(rng=lambda: 1.0)
    message = one_message()
    assert (message.status, message.response_status) == (MessageStatus.PENDING, 403)
    assert message.last_error == (
        "HTTP 403: Salesforce did not accept the lead: REQUEST_LIMIT_EXCEEDED: "
        "TotalRequests Limit exceeded."
    )
    assert message.info["limit_info"] == "api-usage=15001/15000"

    clock.shift(5)
    outbox_deliver_due(rng=lambda: 1.0)
    message.refresh_from_db()
    assert (message.status, message.response_status) == (MessageStatus.PENDING, 503)

    clock.shift(10)
    outbox_deliver_due()
    message.refresh_from_db()
    assert (message.status, message.attempts) == (MessageStatus.DELIVERED, 3)


# --- HubSpot --------------------------------------------------------------------------


@pytest.mark.django_db
def test_hubspot_creates_the_contact_and_remembers_its_id(no_kick, clock, hubspot, lead):
    make_hubspot(hubspot.url)
    to_mql(lead)

    outbox_deliver_due()

    [create] = hubspot.requests
    assert (create.method, create.path) == ("POST", "/crm/v3/objects/contacts")
    assert create.headers["Authorization"] == "Bearer pat-na1-test"
    assert create.json == {
        "properties": {
            "email": "taro@sample.co.jp",
            "firstname": "太郎",
            "lastname": "山田",
            "company": "株式会社サンプル",
            "phone": "06-1234-5678",
            "jobtitle": "情報システム部長",
            "lifecyclestage": "marketingqualifiedlead",
            "hs_lead_status": "NEW",
        }
    }
    message = one_message()
    assert (message.status, message.response_status) == (MessageStatus.DELIVERED, 201)
    assert message.remote_id == "37765128953"
    assert LeadExternalId.objects.get(lead=lead, system="hubspot").external_id == "37765128953"


@pytest.mark.django_db
def test_hubspot_409_existing_contact_becomes_an_update_of_that_contact(
    no_kick, clock, hubspot, lead
):
    make_hubspot(hubspot.url)
    hubspot.contacts["6001"] = {"email": "taro@sample.co.jp", "firstname": "T"}
    to_mql(lead)

    outbox_deliver_due()

    assert [(r.method, r.path) for r in hubspot.requests] == [
        ("POST", "/crm/v3/objects/contacts"),
        ("PATCH", "/crm/v3/objects/contacts/6001"),
    ]
    assert list(hubspot.contacts) == ["6001"]
    assert hubspot.contacts["6001"]["firstname"] == "太郎"
    message = one_message()
    assert (message.status, message.remote_id) == (MessageStatus.DELIVERED, "6001")
    assert message.info["conflict_resolved"] is True
    assert LeadExternalId.objects.get(lead=lead, system="hubspot").external_id == "6001"


@pytest.mark.django_db
def test_hubspot_delivering_twice_updates_the_same_contact(no_kick, clock, hubspot, lead):
    make_hubspot(hubspot.url)
    to_mql(lead)
    outbox_deliver_due()

    redeliver(one_message())

    assert len(hubspot.contacts) == 1
    assert [(r.method, r.path) for r in hubspot.requests] == [
        ("POST", "/crm/v3/objects/contacts"),
        ("PATCH", "/crm/v3/objects/contacts/37765128953"),
    ]


@pytest.mark.django_db
def test_hubspot_contact_deleted_on_their_side_is_created_again(no_kick, clock, hubspot, lead):
    make_hubspot(hubspot.url)
    LeadExternalId.objects.create(lead=lead, system="hubspot", external_id="999")
    to_mql(lead)

    outbox_deliver_due()

    assert [(r.method, r.path) for r in hubspot.requests] == [
        ("PATCH", "/crm/v3/objects/contacts/999"),
        ("POST", "/crm/v3/objects/contacts"),
    ]
    assert list(LeadExternalId.objects.filter(lead=lead).values_list("external_id", flat=True)) == [
        "37765128953"
    ]


@pytest.mark.django_db
def test_hubspot_429_without_retry_after_waits_the_ten_second_window(no_kick, clock, hubspot, lead):
    make_hubspot(hubspot.url)
    hubspot.script.append(hubspot_429())
    to_mql(lead)

    outbox_deliver_due()

    message = one_message()
    assert message.status == MessageStatus.PENDING
    assert message.next_attempt_at == T0 + dt.timedelta(seconds=10)
    assert message.last_error == (
        "HTTP 429: creating the HubSpot contact failed: RATE_LIMITS: "
        "You have reached your secondly limit."
    )
    clock.shift(9)
    assert outbox_deliver_due().claimed == 0
    clock.shift(1)
    assert outbox_deliver_due().delivered == 1


@pytest.mark.django_db
def test_hubspot_429_with_retry_after_uses_it(no_kick, clock, hubspot, lead):
    make_hubspot(hubspot.url)
    limited = hubspot_429()
    limited.headers["Retry-After"] = "3"
    hubspot.script.append(limited)
    to_mql(lead)

    outbox_deliver_due()

    assert one_message().next_attempt_at == T0 + dt.timedelta(seconds=3)


@pytest.mark.django_db
def test_hubspot_503_is_retried_with_backoff(no_kick, clock, hubspot, lead):
    make_hubspot(hubspot.url)
    hubspot.script.append(
        Reply(503, {"status": "error", "message": "Service Unavailable", "category": "ERROR"})
    )
    to_mql(lead)

    outbox_deliver_due(rng=lambda: 0.0)

    message = one_message()
    assert message.status == MessageStatus.PENDING
    assert message.next_attempt_at == T0 + dt.timedelta(seconds=2.5)
    assert message.response_status == 503


@pytest.mark.django_db
def test_hubspot_timeout_is_retried(no_kick, clock, hubspot, lead):
    make_hubspot(hubspot.url, timeout_seconds=0.3)
    hubspot.script.append(Reply(201, {"id": "1"}, delay=1.5))
    to_mql(lead)

    started = time.monotonic()
    outbox_deliver_due(rng=lambda: 1.0)

    message = one_message()
    assert time.monotonic() - started < 1.4
    assert message.status == MessageStatus.PENDING
    assert message.last_error.startswith("timed out: ReadTimeout")
    assert message.next_attempt_at == T0 + dt.timedelta(seconds=5)


@pytest.mark.django_db
def test_hubspot_validation_error_is_permanent(no_kick, clock, hubspot, lead):
    make_hubspot(hubspot.url)
    hubspot.script.append(
        Reply(
            400,
            {
                "status": "error",
                "message": "Property values were not valid",
                "errors": [{"message": 'Property "jobtitle" is too long', "in": "jobtitle"}],
                "category": "VALIDATION_ERROR",
                "correlationId": "a43683b0",
            },
        )
    )
    to_mql(lead)

    outbox_deliver_due()

    message = one_message()
    assert message.status == MessageStatus.DEAD
    assert message.last_error == (
        "HTTP 400: creating the HubSpot contact failed: VALIDATION_ERROR: "
        'Property values were not valid (Property "jobtitle" is too long)'
    )


@pytest.mark.django_db
def test_hubspot_recycle_to_marketing_sets_the_lead_status(no_kick, clock, hubspot, lead):
    make_hubspot(hubspot.url, slug="hs-ma", marketing_side=True, events=["recycled"])
    LeadExternalId.objects.create(lead=lead, system="hubspot", external_id="6001")
    hubspot.contacts["6001"] = {"email": "taro@sample.co.jp"}
    lead_transition(lead=lead, to_stage=Stage.MQL, actor="scoring")
    lead_transition(lead=lead, to_stage=Stage.RECYCLED, actor="rep-a", reason="no budget")

    outbox_deliver_due()

    [update] = hubspot.requests
    assert update.path == "/crm/v3/objects/contacts/6001"
    assert update.json["properties"]["hs_lead_status"] == "BAD_TIMING"
    assert "lifecyclestage" not in update.json["properties"]


# --- webhook --------------------------------------------------------------------------


@pytest.mark.django_db
def test_webhook_body_is_signed_and_verifiable_by_the_receiver(no_kick, clock, receiver, lead):
    make_webhook(f"{receiver.url}/leadflow", events=["rejected"])
    lead_transition(lead=lead, to_stage=Stage.MQL, actor="scoring")
    transition = lead_transition(
        lead=lead,
        to_stage=Stage.RECYCLED,
        actor="rep-a",
        reason="予算なし",
        context={"rejection_reason": "no_budget", "rejection_comment": "来期"},
    )

    outbox_deliver_due()

    [request] = receiver.requests
    assert request.path == "/leadflow"
    assert request.headers["Content-Type"] == "application/json; charset=utf-8"
    assert request.headers["X-LeadFlow-Event"] == "rejected"
    assert request.headers["Idempotency-Key"] == f"rejected:{transition.pk}"
    verify([WEBHOOK_SECRET], request.body, request.headers["X-LeadFlow-Signature"])
    with pytest.raises(SignatureError):
        verify(["another-secret"], request.body, request.headers["X-LeadFlow-Signature"])
    assert request.json["event"] == "rejected"
    assert request.json["idempotency_key"] == f"rejected:{transition.pk}"
    assert request.json["transition"] == {
        "from": "mql",
        "to": "recycled",
        "reason": "予算なし",
        "reason_code": "no_budget",
        "comment": "来期",
        "actor": "rep-a",
    }
    assert request.json["lead"]["email"] == "taro@sample.co.jp"
    assert "予算なし".encode() in request.body  # UTF-8 as is, not \\u escapes
    assert one_message().remote_id == "rcv-1"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("reply", "status", "error"),
    [
        (Reply(500), MessageStatus.PENDING, "HTTP 500: the receiver did not accept the message."),
        (Reply(408), MessageStatus.PENDING, "HTTP 408: the receiver did not accept the message."),
        (Reply(400), MessageStatus.DEAD, "HTTP 400: the receiver did not accept the message."),
        (Reply(410), MessageStatus.DEAD, "HTTP 410: the receiver says this webhook is gone."),
        (
            Reply(301, headers={"Location": "https://elsewhere.example/"}),
            MessageStatus.DEAD,
            "HTTP 301: the receiver redirects to 'https://elsewhere.example/'; update the URL.",
        ),
    ],
)
def test_webhook_answers_decide_retry_or_dead_letter(
    no_kick, clock, receiver, lead, reply, status, error
):
    make_webhook(receiver.url)
    receiver.script.append(reply)
    to_mql(lead)

    outbox_deliver_due()

    message = one_message()
    assert (message.status, message.last_error) == (status, error)


def test_retry_after_accepts_seconds_and_http_dates():
    now = dt.datetime(2026, 11, 2, 1, 0, tzinfo=dt.UTC)

    assert parse_retry_after("120", now=now) == 120.0
    assert parse_retry_after("Mon, 02 Nov 2026 01:01:30 GMT", now=now) == 90.0
    assert parse_retry_after("Mon, 02 Nov 2026 00:59:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after(None, now=now) is None


def test_fake_server_restarts_on_the_same_port():
    server = FakeServer().start()
    port = server.port
    server.stop()
    server.start()
    try:
        assert server.port == port
    finally:
        server.stop()
