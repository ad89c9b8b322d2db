"""Webhook bodies sent with Transfer-Encoding: chunked (no Content-Length) are read, with
the size limit kept: before, Django read them as empty, so a correctly signed one failed
its signature (401) and a 10 MB one was a 401 too instead of a 413."""

from __future__ import annotations

import http.client
import io
import json
import os
import socket
import subprocess
import sys
import time

import pytest
from django.db import connection

from integrations.models import InboundEvent
from integrations.outbound.models import FeedbackEvent
from integrations.signing import HEADER, sign
from leadflow.models import Stage
from tests.factories import LeadFactory
from tests.integrations.conftest import (
    REPO_ROOT,
    SECRET,
    make_source,
    make_webhook,
    sign_headers,
)
from tests.integrations.test_worker_end_to_end import _test_database_url

TEN_MB = 10 * 1024 * 1024
EVENT = {"lead": {"email": "chunked@example.jp", "last_name": "分割"}}


def chunked(client, url: str, body: bytes, headers: dict[str, str], *, terminated=True):
    """What gunicorn hands Django for a chunked request: no CONTENT_LENGTH, the decoded
    body on wsgi.input, and wsgi.input_terminated saying where it ends."""
    extra = {
        "CONTENT_LENGTH": "",
        "HTTP_TRANSFER_ENCODING": "chunked",
        "wsgi.input": io.BytesIO(body),
        "wsgi.input_terminated": terminated,
    }
    return client.post(url, data=b"", content_type="application/json", headers=headers, **extra)


@pytest.mark.django_db
def test_a_signed_chunked_webhook_is_accepted(client):
    source = make_source("generic")
    body = json.dumps(EVENT).encode()

    response = chunked(client, f"/api/v1/intake/{source.slug}/", body, sign_headers(source, body))

    assert response.status_code == 202, response.content
    event = InboundEvent.objects.get(pk=response.json()["id"])
    assert json.loads(event.body) == EVENT


@pytest.mark.django_db
def test_a_chunked_webhook_past_the_limit_is_413_and_stored_nowhere(client, settings):
    source = make_source("generic")
    body = b" " * TEN_MB

    response = chunked(client, f"/api/v1/intake/{source.slug}/", body, sign_headers(source, body))

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert not InboundEvent.objects.exists()


@pytest.mark.django_db
def test_a_chunked_body_a_server_cannot_end_is_411(client):
    source = make_source("generic")
    body = json.dumps(EVENT).encode()

    response = chunked(
        client,
        f"/api/v1/intake/{source.slug}/",
        body,
        sign_headers(source, body),
        terminated=False,
    )

    assert response.status_code == 411
    assert response.json()["error"]["code"] == "length_required"
    assert not InboundEvent.objects.exists()


@pytest.mark.django_db
def test_signed_chunked_feedback_is_applied_and_a_large_one_is_413(client):
    destination = make_webhook("http://127.0.0.1:9", slug="sfa", signing_secret="fb-secret")
    lead = LeadFactory(stage=Stage.OPPORTUNITY, email="deal@example.jp")
    body = json.dumps({"lead": lead.email, "outcome": "won", "event_id": "w-1"}).encode()
    url = f"/api/v1/feedback/{destination.slug}/"

    applied = chunked(client, url, body, {"X-LeadFlow-Signature": sign("fb-secret", body)})
    large = b" " * TEN_MB
    too_large = chunked(client, url, large, {"X-LeadFlow-Signature": sign("fb-secret", large)})

    assert applied.status_code == 200, applied.content
    assert applied.json()["stage"] == Stage.CUSTOMER
    assert too_large.status_code == 413
    assert too_large.json()["error"]["code"] == "too_large"
    assert FeedbackEvent.objects.count() == 1


# --- a real gunicorn ------------------------------------------------------------------


def _free_port() -> int:
    for port in range(8200, 8250):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.skip("no free port in 8200-8249")


@pytest.fixture
def gunicorn():
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": _test_database_url(),
        "DJANGO_SETTINGS_MODULE": "tests.settings",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "leadflow.wsgi", "-b", f"127.0.0.1:{port}",
         "--workers", "1", "--log-level", "warning"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                output = server.stdout.read().decode(errors="replace") if server.stdout else ""
                pytest.fail(f"gunicorn did not start:\n{output}")
            time.sleep(0.2)
    try:
        yield port
    finally:
        server.terminate()
        server.wait(timeout=20)


def _send_chunked(port: int, path: str, body: bytes, headers: dict[str, str]):
    """POST with Transfer-Encoding: chunked through http.client. The server may answer
    (413) and stop reading before the whole body is sent: the answer is read anyway."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.putrequest("POST", path)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            conn.putheader(name, value)
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        try:
            for start in range(0, len(body), 65536):
                part = body[start : start + 65536]
                conn.send(b"%x\r\n%s\r\n" % (len(part), part))
            conn.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused mid-body; its answer is waiting
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_through_gunicorn_a_chunked_webhook_is_202_and_10_mb_is_413(gunicorn):
    assert connection.vendor == "postgresql"
    source = make_source("generic", slug="chunked")
    small = json.dumps(EVENT).encode()
    large = b" " * TEN_MB

    accepted = _send_chunked(
        gunicorn, "/api/v1/intake/chunked/", small, sign_headers(source, small)
    )
    refused = _send_chunked(
        gunicorn, "/api/v1/intake/chunked/", large, {HEADER: sign(SECRET, large)}
    )

    assert accepted[0] == 202, accepted
    assert InboundEvent.objects.get(pk=accepted[1]["id"]).body == small.decode()
    assert refused[0] == 413
    assert refused[1]["error"]["code"] == "payload_too_large"
    assert InboundEvent.objects.count() == 1
