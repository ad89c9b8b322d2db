"""POST /api/v1/feedback/<slug>/: the SFA reports outcomes; LeadFlow moves the lead."""

from __future__ import annotations

import json
import time

import pytest

from integrations.outbound.models import FeedbackEvent, OutboxMessage
from integrations.signing import SignatureError, sign, verify
from leadflow.models import LeadExternalId, Stage, StageTransition
from tests.factories import LeadFactory
from tests.integrations.conftest import make_salesforce, make_webhook

SECRET = "fb-secret-2026"
OLD_SECRET = "fb-secret-2025"


@pytest.fixture
def sfa(db):
    return make_salesforce(
        "http://127.0.0.1:9",
        slug="sfdc",
        signing_secret=SECRET,
        previous_signing_secret=OLD_SECRET,
    )


def post(client, slug, document, *, secret=SECRET, timestamp=None, raw=None, header=None):
    body = raw if raw is not None else json.dumps(document).encode()
    signature = header if header is not None else sign(secret, body, timestamp)
    return client.post(
        f"/api/v1/feedback/{slug}/",
        data=body,
        content_type="application/json",
        headers={"X-LeadFlow-Signature": signature},
    )


def feedback(lead, outcome, event_id="evt-1", **extra):
    return {"lead": lead.email, "outcome": outcome, "event_id": event_id, **extra}


# --- signing scheme -------------------------------------------------------------------


def test_signature_round_trip_window_and_two_secrets():
    body = b'{"a":1}'
    header = sign("s1", body, 1_700_000_000)

    assert header.startswith("t=1700000000,v1=")
    assert len(header.split("v1=")[1]) == 64
    assert verify(["s1"], body, header, now=1_700_000_000) == 1_700_000_000
    assert verify(["new", "s1"], body, header, now=1_700_000_300) == 1_700_000_000
    for secrets, signed_body, signed, now in [
        (["s1"], body, header, 1_700_000_301),
        (["s1"], body, header, 1_699_999_699),
        (["s1"], b'{"a":2}', header, 1_700_000_000),
        (["", ""], body, header, 1_700_000_000),
        (["s1"], body, "t=x,v1=00", 1_700_000_000),
        (["s1"], body, "", 1_700_000_000),
    ]:
        with pytest.raises(SignatureError):
            verify(secrets, signed_body, signed, now=now)


# --- outcomes -------------------------------------------------------------------------


@pytest.mark.django_db
def test_opportunity_created_moves_sql_to_opportunity(client, sfa, no_kick):
    lead = LeadFactory(stage=Stage.SQL)

    response = post(
        client,
        "sfdc",
        feedback(lead, "opportunity_created", occurred_at="2026-11-02T10:00:00+09:00"),
    )

    assert response.status_code == 200
    assert response.json() == {
        "status": "applied",
        "event_id": "evt-1",
        "lead": lead.pk,
        "outcome": "opportunity_created",
        "stage": "opportunity",
    }
    lead.refresh_from_db()
    assert lead.stage == Stage.OPPORTUNITY
    transition = StageTransition.objects.get(lead=lead)
    assert transition.actor_system == "sfa:sfdc"
    assert transition.context["outcome"] == "opportunity_created"
    event = FeedbackEvent.objects.get()
    assert (event.from_stage, event.to_stage, event.result) == ("sql", "opportunity", "applied")
    assert event.occurred_at.isoformat() == "2026-11-02T01:00:00+00:00"


@pytest.mark.django_db
def test_won_moves_an_opportunity_to_customer(client, sfa, no_kick):
    lead = LeadFactory(stage=Stage.OPPORTUNITY)

    response = post(client, "sfdc", feedback(lead, "won"))

    assert response.status_code == 200
    lead.refresh_from_db()
    assert lead.stage == Stage.CUSTOMER


@pytest.mark.django_db
def test_lost_recycles_the_lead_with_the_reason_and_tells_marketing(client, sfa, no_kick):
    marketing = make_webhook(
        "http://127.0.0.1:9/ma", slug="ma", marketing_side=True, events=["recycled"]
    )
    lead = LeadFactory(stage=Stage.SQL)

    response = post(client, "sfdc", feedback(lead, "lost", reason="競合に決定"))

    assert response.status_code == 200
    lead.refresh_from_db()
    assert lead.stage == Stage.RECYCLED
    assert StageTransition.objects.get(lead=lead).reason == "競合に決定"
    # Marketing hears about it; the SFA that reported it is not told its own news.
    message = OutboxMessage.objects.get()
    assert (message.destination, message.event) == (marketing, "recycled")
    assert message.payload["transition"]["reason"] == "競合に決定"
    assert message.payload["transition"]["actor"] == "sfa:sfdc"


@pytest.mark.django_db
def test_an_sfa_loss_reaches_marketing_with_the_same_reason_code_as_a_reps_loss(
    client, sfa, no_kick
):
    make_webhook("http://127.0.0.1:9/ma", slug="ma", marketing_side=True, events=["recycled"])
    lead = LeadFactory(stage=Stage.OPPORTUNITY)

    post(client, "sfdc", feedback(lead, "lost", reason="価格で失注"))

    transition = OutboxMessage.objects.get().payload["transition"]
    assert (transition["reason_code"], transition["comment"]) == ("lost", "価格で失注")


@pytest.mark.django_db
def test_disqualified_disqualifies_with_the_reason(client, sfa, no_kick):
    lead = LeadFactory(stage=Stage.MQL)

    response = post(client, "sfdc", feedback(lead, "disqualified", reason="学生"))

    assert response.status_code == 200
    lead.refresh_from_db()
    assert lead.stage == Stage.DISQUALIFIED
    assert FeedbackEvent.objects.get().reason == "学生"


@pytest.mark.django_db
def test_an_outcome_the_lead_already_reflects_is_recorded_as_unchanged(client, sfa, no_kick):
    lead = LeadFactory(stage=Stage.CUSTOMER)

    response = post(client, "sfdc", feedback(lead, "won"))

    assert response.status_code == 200
    assert response.json()["status"] == "unchanged"
    assert StageTransition.objects.count() == 0
    assert FeedbackEvent.objects.get().result == "unchanged"


@pytest.mark.django_db
def test_a_duplicate_event_id_is_applied_once(client, sfa, no_kick):
    lead = LeadFactory(stage=Stage.SQL)
    post(client, "sfdc", feedback(lead, "opportunity_created"))

    again = post(client, "sfdc", feedback(lead, "opportunity_created"))

    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    assert FeedbackEvent.objects.count() == 1
    assert StageTransition.objects.filter(lead=lead).count() == 1


@pytest.mark.django_db
def test_won_for_an_mql_nobody_accepted_is_a_422(client, sfa, no_kick):
    lead = LeadFactory(stage=Stage.MQL)

    response = post(client, "sfdc", feedback(lead, "won"))

    assert response.status_code == 422
    assert response.json() == {
        "error": {
            "code": "invalid_transition",
            "message": "The lead is MQL; “won” is only possible for a lead in Opportunity, SQL.",
        }
    }
    lead.refresh_from_db()
    assert lead.stage == Stage.MQL
    assert FeedbackEvent.objects.count() == 0


@pytest.mark.django_db
def test_disqualifying_a_customer_is_refused_by_the_lifecycle(client, sfa, no_kick):
    lead = LeadFactory(stage=Stage.CUSTOMER)

    response = post(client, "sfdc", feedback(lead, "disqualified"))

    assert response.status_code == 422
    assert response.json()["error"]["message"] == (
        "A lead cannot move from Customer to Disqualified."
    )


@pytest.mark.django_db
def test_the_lead_can_be_named_by_its_salesforce_id_or_leadflow_id(client, sfa, no_kick):
    by_sf = LeadFactory(stage=Stage.SQL)
    LeadExternalId.objects.create(lead=by_sf, system="salesforce", external_id="00Q4S000002sSac")
    by_pk = LeadFactory(stage=Stage.SQL)

    first = post(client, "sfdc", {"lead": "00Q4S000002sSac", "outcome": "won", "event_id": "a"})
    second = post(client, "sfdc", {"lead": str(by_pk.pk), "outcome": "won", "event_id": "b"})

    assert (first.status_code, first.json()["lead"]) == (200, by_sf.pk)
    assert (second.status_code, second.json()["lead"]) == (200, by_pk.pk)


@pytest.mark.django_db
def test_the_previous_secret_still_verifies_during_rotation(client, sfa, no_kick):
    lead = LeadFactory(stage=Stage.SQL)

    response = post(client, "sfdc", feedback(lead, "won"), secret=OLD_SECRET)

    assert response.status_code == 200


# --- bad input ------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"secret": "wrong"}, "bad_signature"),
        ({"timestamp": int(time.time()) - 301}, "bad_signature"),
        ({"header": ""}, "missing_signature"),
    ],
)
def test_a_bad_signature_is_401_and_changes_nothing(client, sfa, no_kick, kwargs, code):
    lead = LeadFactory(stage=Stage.SQL)

    response = post(client, "sfdc", feedback(lead, "won"), **kwargs)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == code
    lead.refresh_from_db()
    assert lead.stage == Stage.SQL
    assert FeedbackEvent.objects.count() == 0


@pytest.mark.django_db
def test_unknown_destination_is_404(client, no_kick):
    response = post(client, "nope", {"lead": "a@b.jp", "outcome": "won", "event_id": "x"})

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.django_db
def test_disabled_destination_is_403(client, sfa, no_kick):
    sfa.enabled = False
    sfa.save()

    response = post(client, "sfdc", {"lead": "a@b.jp", "outcome": "won", "event_id": "x"})

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "disabled"


@pytest.mark.django_db
def test_unknown_lead_is_404(client, sfa, no_kick):
    response = post(client, "sfdc", {"lead": "ghost@x.jp", "outcome": "won", "event_id": "x"})

    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "lead_not_found", "message": "No lead matches “ghost@x.jp”."}
    }


@pytest.mark.django_db
def test_broken_json_is_400_with_a_pointer_to_the_document(client, sfa, no_kick):
    response = post(client, "sfdc", None, raw=b'{"lead": "a@b.jp",')

    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "invalid_json",
            "message": "The body is not valid JSON.",
            "fields": {"": ["line 1 column 19: Expecting property name enclosed in double quotes"]},
        }
    }


@pytest.mark.django_db
def test_invalid_fields_are_400_keyed_by_json_pointer(client, sfa, no_kick):
    response = post(
        client,
        "sfdc",
        {"lead": 12, "outcome": "maybe", "occurred_at": "2026-11-02 10:00"},
    )

    assert response.status_code == 400
    body = response.json()["error"]
    assert body["code"] == "validation_error"
    assert body["fields"] == {
        "/lead": ["Must be a string."],
        "/event_id": ["This field is required."],
        "/outcome": ["Must be one of: opportunity_created, won, lost, disqualified."],
        "/occurred_at": ["Must include a UTC offset (e.g. +09:00 or Z)."],
    }
    assert body["message"] == "/lead: Must be a string."


@pytest.mark.django_db
def test_a_json_array_is_400(client, sfa, no_kick):
    response = post(client, "sfdc", [1, 2])

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"": ["The body must be a JSON object."]}


@pytest.mark.django_db
def test_a_body_over_the_limit_is_413(client, sfa, no_kick, settings):
    settings.FEEDBACK_MAX_BYTES = 1024
    lead = LeadFactory(stage=Stage.SQL)

    response = post(client, "sfdc", feedback(lead, "lost", reason="x" * 2000))

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert FeedbackEvent.objects.count() == 0


@pytest.mark.django_db
def test_get_is_405(client, sfa):
    response = client.get("/api/v1/feedback/sfdc/")

    assert response.status_code == 405
    assert response["Allow"] == "POST"


@pytest.mark.django_db
def test_hubspot_feedback_names_the_lead_by_contact_id_never_by_leadflow_id(client, no_kick):
    from tests.integrations.conftest import make_hubspot

    make_hubspot("http://127.0.0.1:9", slug="hs", signing_secret=SECRET)
    known = LeadFactory(stage=Stage.SQL)
    LeadExternalId.objects.create(lead=known, system="hubspot", external_id="6001")
    other = LeadFactory(stage=Stage.SQL)

    by_contact = post(client, "hs", {"lead": "6001", "outcome": "won", "event_id": "a"})
    by_pk = post(client, "hs", {"lead": str(other.pk), "outcome": "won", "event_id": "b"})

    assert (by_contact.status_code, by_contact.json()["lead"]) == (200, known.pk)
    assert by_pk.status_code == 404
    other.refresh_from_db()
    assert other.stage == Stage.SQL


@pytest.mark.django_db
def test_lost_for_an_mql_nobody_accepted_is_a_422(client, sfa, no_kick):
    lead = LeadFactory(stage=Stage.MQL)

    response = post(client, "sfdc", feedback(lead, "lost", reason="no answer"))

    assert response.status_code == 422
    lead.refresh_from_db()
    assert lead.stage == Stage.MQL
    assert OutboxMessage.objects.count() == 0


@pytest.mark.django_db
def test_a_body_that_is_not_utf8_is_400(client, sfa, no_kick):
    response = post(client, "sfdc", None, raw='{"lead": "山田"}'.encode("shift_jis"))

    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "invalid_json",
        "message": "The body is not UTF-8.",
        "fields": {"": ["Not UTF-8."]},
    }
