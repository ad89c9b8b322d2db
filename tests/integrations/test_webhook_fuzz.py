"""The two webhook doors (intake, SFA feedback) are plain Django views outside the OpenAPI
schema, so they are fuzzed here with hypothesis: correctly signed bodies of every shape a
JSON document can take, built from each vendor's own field names so the adapters are
reached, must never produce a 5xx; an accepted body must then process to `processed` or
`failed`, never raise out of the worker."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integrations import signing
from integrations.models import InboundEvent, InboundStatus
from integrations.tasks import process_inbound_event
from tests.factories import LeadFactory
from tests.integrations.conftest import WEBHOOK_SECRET, make_source, make_webhook, post

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,  # repeatable in CI
    database=None,
    suppress_health_check=list(HealthCheck),
)

# Field names the adapters look for, so generated documents go deep into them.
KEYS = [
    # generic
    "id", "type", "occurred_at", "lead", "email", "company", "properties", "events", "url",
    # mautic
    "mautic.lead_post_save_new", "mautic.form_on_submit", "mautic.page_on_hit",
    "mautic.email_on_open", "mautic.lead_points_change", "mautic.lead_channel_subscription_changed",
    "contact", "fields", "core", "value", "points", "submission", "form", "results", "hit",
    "dateHit", "timestamp", "dateSubmitted", "new_points", "channel", "new_status",
    # hubspot
    "objectId", "subscriptionType", "propertyName", "propertyValue", "occurredAt", "eventId",
    # marketo
    "lead.email_address", "lead.id", "campaign", "datetime", "name",
    # feedback
    "outcome", "event_id", "reason",
]  # fmt: skip
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(
        [
            "2026-01-15T10:00:00+09:00",
            "2026-01-15 10:00:00",
            "1768438800000",
            "yamada@example.jp",
            "ＹＡＭＡＤＡ＠ｅｘａｍｐｌｅ．ｊｐ",
            "page_view",
            "contact.creation",
            "contact.propertyChange",
            "won",
            "https://example.jp/pricing?x=1",
            "株式会社サンプル",
        ]
    )
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), children, max_size=6)
    ),
    max_leaves=30,
)


# Documents in each vendor's shape with fuzzed values, so the adapters' parsing and the
# processing behind them are reached (random JSON mostly stops at the shape check).
TIMES = st.sampled_from(["2026-01-15T10:00:00+09:00", "2026-01-15 10:00:00", 1768438800000])
EMAILS = st.sampled_from(["yamada@example.jp", "Sato@Example.JP", "", "no-at-sign"]) | SCALARS
LEAD_FIELDS = st.dictionaries(
    st.sampled_from(
        ["email", "last_name", "first_name", "company", "phone", "employee_count",
         "prefecture", "industry", "job_title", "department", "ma_points"]
    ),
    SCALARS,
    max_size=6,
)  # fmt: skip
KINDS = st.sampled_from(["page_view", "pricing_page_view", "document_download", "form_submit"])
GENERIC_EVENT = st.fixed_dictionaries(
    {"lead": LEAD_FIELDS.map(lambda f: {**f, "email": f.get("email", "yamada@example.jp")})},
    optional={
        "id": SCALARS,
        "type": KINDS | SCALARS,
        "occurred_at": TIMES | SCALARS,
        "properties": st.dictionaries(st.text(max_size=6), SCALARS, max_size=4),
    },
)
GENERIC = GENERIC_EVENT | st.fixed_dictionaries({"events": st.lists(GENERIC_EVENT, max_size=4)})
MAUTIC_CONTACT = st.fixed_dictionaries(
    {
        "id": SCALARS,
        "fields": st.fixed_dictionaries(
            {"core": st.dictionaries(
                st.sampled_from(["email", "firstname", "lastname", "company", "phone", "city"]),
                st.fixed_dictionaries({"value": EMAILS}),
                max_size=5,
            )}
        ),
    },
    optional={"points": SCALARS},
)  # fmt: skip
MAUTIC = st.dictionaries(
    st.sampled_from(
        ["mautic.lead_post_save_new", "mautic.lead_post_save_update", "mautic.form_on_submit",
         "mautic.page_on_hit", "mautic.email_on_open", "mautic.lead_points_change",
         "mautic.lead_channel_subscription_changed"]
    ),
    st.lists(
        st.fixed_dictionaries(
            {"timestamp": TIMES | SCALARS},
            optional={
                "lead": MAUTIC_CONTACT,
                "contact": MAUTIC_CONTACT,
                "submission": st.fixed_dictionaries(
                    {"lead": MAUTIC_CONTACT},
                    optional={"id": SCALARS, "form": DOCUMENTS, "results": DOCUMENTS,
                              "dateSubmitted": TIMES | SCALARS, "referer": SCALARS},
                ),
                "hit": st.fixed_dictionaries(
                    {"lead": MAUTIC_CONTACT},
                    optional={"url": SCALARS, "dateHit": TIMES | SCALARS},
                ),
                "points": DOCUMENTS,
                "new_status": SCALARS,
            },
        ),
        max_size=3,
    ),
    min_size=1,
    max_size=2,
)  # fmt: skip
HUBSPOT = st.lists(
    st.fixed_dictionaries(
        {
            "subscriptionType": st.sampled_from(
                ["contact.creation", "contact.propertyChange", "contact.deletion", "deal.creation"]
            ),
            "objectId": st.integers(min_value=-5, max_value=2**64),
        },
        optional={
            "eventId": SCALARS,
            "occurredAt": TIMES,
            "propertyName": st.sampled_from(["email", "firstname", "company", "hs_lead_status"])
            | SCALARS,
            "propertyValue": EMAILS,
            "attemptNumber": SCALARS,
        },
    ),
    min_size=1,
    max_size=4,
)
MARKETO = st.fixed_dictionaries(
    {"lead.email_address": EMAILS},
    optional={"lead.id": SCALARS, "campaign": DOCUMENTS, "datetime": TIMES | SCALARS},
)
SHAPES = {"generic": GENERIC, "mautic": MAUTIC, "hubspot": HUBSPOT, "marketo": MARKETO}


@pytest.mark.parametrize("kind", sorted(SHAPES))
def test_signed_intake_bodies_never_fail_the_server(client, kind):
    source = make_source(kind, rate_limit_per_minute=0)
    accepted: list[int] = []

    @FUZZ
    @given(document=SHAPES[kind] | DOCUMENTS)
    def check(document):
        response = post(client, source, json.dumps(document, ensure_ascii=False))
        assert response.status_code in (200, 202, 400), response.content
        body = response.json()
        if response.status_code == 400:
            assert set(body) == {"error"} and body["error"]["code"] == "invalid_payload"
            return
        accepted.append(body["id"])
        process_inbound_event(body["id"])
        processed = InboundEvent.objects.get(pk=body["id"])
        assert processed.status in (
            InboundStatus.PROCESSED,
            InboundStatus.FAILED,
            InboundStatus.DUPLICATE,
        )

    check()
    # The fuzzing reached processing (not only the shape check), and some bodies made leads.
    assert len(accepted) >= 10
    assert InboundEvent.objects.filter(status=InboundStatus.PROCESSED).exists()


def test_signed_intake_bytes_that_are_not_json_are_400(client):
    source = make_source("generic", rate_limit_per_minute=0)

    @FUZZ
    @given(body=st.binary(max_size=200))
    def check(body):
        response = post(client, source, body)
        assert response.status_code in (200, 202, 400), response.content

    check()


def test_signed_feedback_never_fails_the_server(client):
    destination = make_webhook("http://127.0.0.1:9/hook", slug="fuzz-sfa")
    LeadFactory(email="yamada@example.jp")

    @FUZZ
    @given(document=DOCUMENTS | st.fixed_dictionaries({"lead": SCALARS, "outcome": SCALARS,
                                                         "event_id": SCALARS,
                                                         "occurred_at": SCALARS}))  # fmt: skip
    def check(document):
        body = json.dumps(document, ensure_ascii=False).encode()
        response = client.post(
            f"/api/v1/feedback/{destination.slug}/",
            data=body,
            content_type="application/json",
            headers={signing.HEADER: signing.sign(WEBHOOK_SECRET, body)},
        )
        assert response.status_code in (200, 400, 404, 409), response.content
        if response.status_code != 200:
            assert set(response.json()) == {"error"}

    check()
