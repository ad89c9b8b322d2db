"""Authenticity per source kind: good, wrong, missing, stale, rotated secret."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time

import pytest
import time_machine

from integrations import signing
from integrations.hubspot.inbound import decode_uri, signature_v1, signature_v2, signature_v3
from integrations.models import InboundEvent
from tests.integrations.conftest import (
    OLD_SECRET,
    SECRET,
    assert_error,
    make_source,
    post,
    samples,
    sign_headers,
)

pytestmark = pytest.mark.django_db

GENERIC_BODY = json.dumps({"lead": {"email": "a@example.jp"}}).encode()
MAUTIC_BODY = (
    b'{"mautic.lead_post_save_new":[{"contact":{"id":1,'
    b'"fields":{"core":{"email":{"value":"a@example.jp"}}}}}]}'
)
HUBSPOT_BODY = (
    b'[{"eventId":1,"subscriptionType":"contact.creation","objectId":9,"occurredAt":1729771200000}]'
)
MARKETO_BODY = b'{"lead":{"email_address":"a@example.jp"}}'
BODIES = {
    "generic": GENERIC_BODY,
    "mautic": MAUTIC_BODY,
    "hubspot": HUBSPOT_BODY,
    "marketo": MARKETO_BODY,
}
KINDS = sorted(BODIES)


@pytest.mark.parametrize("kind", KINDS)
def test_a_correctly_signed_request_is_accepted_and_stored(client, kind):
    source = make_source(kind)

    response = post(client, source, BODIES[kind])

    assert response.status_code == 202
    assert response.json() == {"status": "accepted", "id": InboundEvent.objects.get().pk}
    assert InboundEvent.objects.get().body.encode() == BODIES[kind]


@pytest.mark.parametrize("kind", KINDS)
def test_a_request_signed_with_another_secret_is_refused(client, kind):
    source = make_source(kind)
    body = BODIES[kind]

    response = post(client, source, body, sign_headers(source, body, secret="not-the-secret"))

    assert_error(response, 401, "bad_signature")
    assert not InboundEvent.objects.exists()


@pytest.mark.parametrize("kind", KINDS)
def test_a_request_without_signature_is_refused(client, kind):
    source = make_source(kind)

    response = post(client, source, BODIES[kind], sign=False)

    assert_error(response, 401, "missing_signature")
    assert not InboundEvent.objects.exists()


@pytest.mark.parametrize("kind", ["generic", "mautic", "hubspot"])
def test_a_body_changed_after_signing_is_refused(client, kind):
    source = make_source(kind)
    headers = sign_headers(source, BODIES[kind])

    response = post(client, source, BODIES[kind] + b" ", headers)

    assert_error(response, 401, "bad_signature")


@pytest.mark.parametrize("kind", KINDS)
def test_the_previous_secret_is_accepted_while_rotating(client, kind):
    source = make_source(kind, previous_secret=OLD_SECRET)
    body = BODIES[kind]

    other = body.replace(b"a@example.jp", b"b@example.jp").replace(b'"eventId":1', b'"eventId":2')

    new = post(client, source, body, sign_headers(source, body, secret=SECRET))
    old = post(client, source, other, sign_headers(source, other, secret=OLD_SECRET))

    assert (new.status_code, old.status_code) == (202, 202)


@pytest.mark.parametrize("kind", KINDS)
def test_after_rotation_the_old_secret_is_refused(client, kind):
    source = make_source(kind)  # previous_secret cleared
    body = BODIES[kind]

    response = post(client, source, body, sign_headers(source, body, secret=OLD_SECRET))

    assert_error(response, 401, "bad_signature")


@pytest.mark.parametrize("kind", ["generic", "hubspot"])
@pytest.mark.parametrize("age", [301, -301])
def test_a_signature_more_than_five_minutes_off_is_refused(client, kind, age):
    source = make_source(kind)
    body = BODIES[kind]

    response = post(client, source, body, sign_headers(source, body, now=time.time() - age))

    error = assert_error(response, 401, "bad_signature")
    assert re.search(r"5 minutes|300 seconds", error["message"])


@pytest.mark.parametrize("kind", ["generic", "hubspot"])
def test_a_signature_within_the_window_is_accepted(client, kind):
    source = make_source(kind)
    body = BODIES[kind]

    response = post(client, source, body, sign_headers(source, body, now=time.time() - 290))

    assert response.status_code == 202


# --- HubSpot details -------------------------------------------------------------------


def test_hubspot_vectors_from_the_sdks_and_docs():
    vectors = json.loads((samples("hubspot", "webhooks") / "signature_vectors.json").read_text())
    checked = 0
    for vector in vectors["vectors_from_sources"] + vectors["vectors_computed"]:
        body = vector["request_body"].encode()
        secret = vector["client_secret"]
        uri = vector.get("uri") or vector.get("uri_as_requested", "")
        if vector["version"] == "v1":
            got = signature_v1(secret, body)
        elif vector["version"] == "v2":
            got = signature_v2(secret, vector["http_method"], uri, body)
        else:
            got = signature_v3(
                secret, vector["http_method"], decode_uri(uri), body, vector["timestamp"]
            )
        assert got == vector["expected"], vector["id"]
        checked += 1
    assert checked == 13


def test_hubspot_v1_signature_of_the_php_sdk_body(client):
    folder = samples("hubspot", "webhooks")
    body = (folder / "php_sdk_contact_creation_body.json").read_bytes()
    source = make_source("hubspot")
    source.secret = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
    source.save()

    response = post(
        client,
        source,
        body,
        {
            "X-HubSpot-Signature": (
                "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"
            ),
            "X-HubSpot-Signature-Version": "v1",
        },
        sign=False,
    )

    assert response.status_code == 202


def test_hubspot_v2_signs_the_public_url(client, settings):
    settings.PUBLIC_BASE_URL = "https://leads.example.com"
    source = make_source("hubspot")
    uri = "https://leads.example.com/api/v1/intake/hubspot-test/"
    headers = {
        "X-HubSpot-Signature": signature_v2(SECRET, "POST", uri, HUBSPOT_BODY),
        "X-HubSpot-Signature-Version": "v2",
    }

    response = post(client, source, HUBSPOT_BODY, headers, sign=False)

    assert response.status_code == 202


@time_machine.travel(1729771200, tick=False)
def test_hubspot_v3_behind_a_proxy_uses_the_forwarded_public_url(client, settings):
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:8000"  # not what HubSpot called
    make_source("hubspot")
    public = "https://hooks.example.co.jp/api/v1/intake/hubspot-test/?portal=hs%3A62515"
    timestamp = "1729771200000"
    headers = {
        "X-HubSpot-Signature-v3": signature_v3(
            SECRET, "POST", decode_uri(public), HUBSPOT_BODY, timestamp
        ),
        "X-HubSpot-Request-Timestamp": timestamp,
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "hooks.example.co.jp",
    }

    response = client.post(
        "/api/v1/intake/hubspot-test/?portal=hs%3A62515",
        data=HUBSPOT_BODY,
        content_type="application/json",
        headers=headers,
    )

    assert response.status_code == 202


@time_machine.travel(1729771200, tick=False)
def test_hubspot_v3_signed_for_another_url_is_refused(client):
    source = make_source("hubspot")
    timestamp = "1729771200000"
    headers = {
        "X-HubSpot-Signature-v3": signature_v3(
            SECRET,
            "POST",
            "https://evil.example/api/v1/intake/hubspot-test/",
            HUBSPOT_BODY,
            timestamp,
        ),
        "X-HubSpot-Request-Timestamp": timestamp,
    }

    response = post(client, source, HUBSPOT_BODY, headers, sign=False)

    assert_error(response, 401, "bad_signature")


def test_hubspot_v3_without_timestamp_is_refused(client):
    source = make_source("hubspot")
    headers = sign_headers(source, HUBSPOT_BODY)
    del headers["X-HubSpot-Request-Timestamp"]

    response = post(client, source, HUBSPOT_BODY, headers, sign=False)

    assert_error(response, 401, "missing_signature")


# --- the generic scheme as a library ---------------------------------------------------


def test_sign_then_verify_round_trip():
    header = signing.sign("k", b"{}", 1_700_000_000)

    assert signing.verify("k", b"{}", header, now=1_700_000_100) == 1_700_000_000


def test_sign_matches_the_documented_formula():
    expected = hmac.new(b"k", b"1700000000.{}", hashlib.sha256).hexdigest()

    assert signing.sign("k", b"{}", 1_700_000_000) == f"t=1700000000,v1={expected}"


def test_verify_accepts_any_of_several_v1_parts_and_secrets():
    header = signing.sign("new", b"x", 100) + "," + signing.sign("old", b"x", 100).split(",")[1]

    assert signing.verify(["other", "old"], b"x", header, now=100) == 100


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "missing_signature"),
        ("", "missing_signature"),
        ("v1=abc", "bad_signature"),
        ("t=abc,v1=abc", "bad_signature"),
        ("t=100", "bad_signature"),
    ],
)
def test_verify_refuses_malformed_headers(header, code):
    with pytest.raises(signing.SignatureError) as raised:
        signing.verify("k", b"x", header, now=100)

    assert raised.value.code == code
