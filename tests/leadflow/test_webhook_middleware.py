"""The signed webhook doors run behind settings.WEBHOOK_MIDDLEWARE (leadflow/wsgi.py);
every other path behind the full MIDDLEWARE. Called through the WSGI application itself:
the test client builds its own handler from MIDDLEWARE and would not show the split.
Transactional tests: the handler's request signals close a connection found inside a
transaction, as the test client does not."""

from __future__ import annotations

import io
import json
from wsgiref.util import setup_testing_defaults

import pytest
from django.conf import settings

from integrations.signing import sign
from leadflow.wsgi import application
from tests.integrations.conftest import SECRET, make_source

EVENT = {"id": "evt-mw-1", "lead": {"email": "mw@example.jp"}}


def _call(path: str, *, method: str = "GET", body: bytes = b"", headers=None, query: str = ""):
    environ: dict = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "SERVER_NAME": "testserver",
        "HTTP_HOST": "testserver",
    }
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    setup_testing_defaults(environ)
    answer: dict = {}

    def start_response(status, response_headers, exc_info=None):
        answer["status"] = int(status.split()[0])
        answer["headers"] = dict(response_headers)

    answer["body"] = b"".join(application(environ, start_response))
    return answer


def test_the_webhook_stack_is_the_full_one_without_the_browser_middlewares():
    # Same order as the full stack, so each keeps the place it was written for.
    positions = [settings.MIDDLEWARE.index(name) for name in settings.WEBHOOK_MIDDLEWARE]

    assert positions == sorted(positions)
    assert set(settings.MIDDLEWARE) - set(settings.WEBHOOK_MIDDLEWARE) == {
        "whitenoise.middleware.WhiteNoiseMiddleware",
        "csp.middleware.CSPMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
        "leadflow.middleware.NotFoundPageMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
        "axes.middleware.AxesMiddleware",
    }


@pytest.mark.django_db(transaction=True)
def test_a_webhook_is_accepted_through_the_short_stack_with_its_request_id():
    make_source("generic")
    body = json.dumps(EVENT).encode()

    answer = _call(
        "/api/v1/intake/generic-test/",
        method="POST",
        body=body,
        headers={"X-LeadFlow-Signature": sign(SECRET, body), "X-Request-ID": "req-42"},
    )

    assert answer["status"] == 202, answer["body"]
    assert json.loads(answer["body"])["status"] == "accepted"
    assert answer["headers"]["X-Request-ID"] == "req-42"
    assert answer["headers"]["X-Content-Type-Options"] == "nosniff"
    # No browser middleware ran: no policy, no frame header, no cookie.
    assert "Content-Security-Policy" not in answer["headers"]
    assert "X-Frame-Options" not in answer["headers"]
    assert "Set-Cookie" not in answer["headers"]


@pytest.mark.django_db(transaction=True)
def test_a_bad_webhook_keeps_its_error_shape_in_the_senders_language():
    make_source("generic")

    answer = _call(
        "/api/v1/intake/generic-test/",
        method="POST",
        body=b'{"id": 1',
        headers={"X-LeadFlow-Signature": "t=1,v1=00", "Accept-Language": "en"},
    )

    assert answer["status"] == 401
    assert answer["headers"]["Content-Language"] == "en"
    assert json.loads(answer["body"]) == {
        "error": {
            "code": "bad_signature",
            "message": "The signature timestamp is more than 300 seconds away from our clock.",
        }
    }


@pytest.mark.django_db(transaction=True)
def test_a_nul_in_a_webhooks_query_is_still_refused_in_the_error_shape():
    answer = _call("/api/v1/intake/generic-test/", method="POST", query="x=%00")

    assert answer["status"] == 400
    assert json.loads(answer["body"])["error"]["code"] == "invalid_query"


@pytest.mark.django_db(transaction=True)
def test_other_paths_keep_the_full_stack():
    answer = _call("/healthz")

    assert answer["status"] == 200
    assert "Content-Security-Policy" in answer["headers"]
    assert answer["headers"]["X-Frame-Options"] == "DENY"
