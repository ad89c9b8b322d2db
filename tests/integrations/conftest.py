"""Helpers for intake tests: sources of each kind and correctly signed requests."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import time
from pathlib import Path

import pytest
import time_machine
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

from integrations import signing
from integrations.hubspot.inbound import signature_v3
from integrations.models import InboundEvent, Source
from integrations.outbound.models import Destination, DestinationKind
from integrations.services import source_create
from integrations.tasks import process_inbound_event
from tests.integrations.fakes import FakeHubSpot, FakeSalesforce, WebhookReceiver

REPO_ROOT = Path(__file__).resolve().parents[2]
# The vendors' webhook samples the tests post, kept in the repository (with their
# provenance and licenses, see its README) so that every clone runs every test.
SAMPLES = REPO_ROOT / "tests" / "fixtures" / "vendor-samples"

SECRET = "s3cret-for-tests-0123456789abcdef"
OLD_SECRET = "old-secret-still-valid-while-rotating"


def samples(*parts: str) -> Path:
    """A folder of tests/fixtures/vendor-samples/; missing is an error, never a skip."""
    folder = SAMPLES.joinpath(*parts)
    if not folder.is_dir():
        raise FileNotFoundError(f"vendor samples not found at {folder}")
    return folder


def _clear_cache() -> None:
    # The backend itself: `django.core.cache.cache` is a proxy, which is never an
    # instance of RedisCache, so the prefixed path below was never taken and every test
    # FLUSHDB'd the Redis the other xdist process was using (its rate-limit counters and
    # CSV previews vanished mid-test).
    backend = caches["default"]
    prefix = settings.CACHES["default"].get("KEY_PREFIX")
    if prefix and isinstance(backend, RedisCache):
        # Under pytest-xdist the processes share the Redis cache, whose clear() is a
        # FLUSHDB: it would reset another process's counters in the middle of its test.
        client = backend._cache.get_client(write=True)
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)
    else:
        backend.clear()


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    # Rate-limit counters live in the cache (Redis on the CI run): start every test empty.
    _clear_cache()
    yield
    _clear_cache()


@pytest.fixture(autouse=True)
def _no_recent_wake(monkeypatch):
    # A web process sends a drain at most once per WAKE_SECONDS: each test starts as a
    # process that has not sent one, whatever the test before it posted.
    monkeypatch.setattr("integrations.services._last_wake", float("-inf"))
    # Likewise the drains' heartbeat, written at most every DRAIN_BEAT_SECONDS a process:
    # each test's first drain writes it, whatever the test before it drained.
    monkeypatch.setattr("integrations.services._last_drain_beat", float("-inf"))


def make_source(kind: str, slug: str | None = None, **extra) -> Source:
    source = source_create(kind=kind, slug=slug or f"{kind}-test", secret=SECRET)
    if extra:
        for key, value in extra.items():
            setattr(source, key, value)
        source.save()
    return source


def sign_headers(
    source: Source, body: bytes, *, secret: str = SECRET, now: float | None = None
) -> dict[str, str]:
    now = time.time() if now is None else now
    if source.kind == "mautic":
        digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
        return {"Webhook-Signature": base64.b64encode(digest).decode()}
    if source.kind == "hubspot":
        timestamp = str(int(now * 1000))
        return {
            "X-HubSpot-Signature-v3": signature_v3(
                secret, "POST", source.intake_url, body, timestamp
            ),
            "X-HubSpot-Request-Timestamp": timestamp,
        }
    if source.kind == "marketo":
        return {"X-LeadFlow-Token": secret}
    return {signing.HEADER: signing.sign(secret, body, int(now))}


def post(client, source: Source, body: bytes | str | dict | list, headers=None, *, sign=True):
    if not isinstance(body, bytes | str):
        body = json.dumps(body, ensure_ascii=False)
    if isinstance(body, str):
        body = body.encode()
    all_headers = dict(sign_headers(source, body) if sign else {})
    all_headers.update(headers or {})
    return client.post(
        f"/api/v1/intake/{source.slug}/",
        data=body,
        content_type="application/json",
        headers=all_headers,
    )


def deliver(client, source: Source, body, headers=None) -> InboundEvent:
    """Post a signed body, check it was accepted, process it as the worker would."""
    response = post(client, source, body, headers)
    assert response.status_code == 202, response.content
    event_id = response.json()["id"]
    process_inbound_event(event_id)
    return InboundEvent.objects.get(pk=event_id)


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


@pytest.fixture
def admin_pages(settings):
    # Rendering admin pages needs static URLs; the manifest is only built by collectstatic.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


# --- outbound: destinations and fake vendor servers --------------------------------

T0 = dt.datetime(2026, 11, 2, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))
WEBHOOK_SECRET = "whsec-test-0123456789abcdef"


@pytest.fixture
def clock():
    """A pinned clock that moves only when the test says so (clock.shift(seconds))."""
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def no_kick(monkeypatch):
    """Record the on-commit delivery kicks instead of sending them to a broker."""
    kicks: list[dict] = []

    def record(args: tuple = (), **options) -> None:
        # The kick takes no arguments (leadflow.transactions.enqueue_on_commit passes an
        # empty args); what each test checks is how it is sent: its options.
        assert args == ()
        kicks.append(options)

    monkeypatch.setattr("integrations.outbound.tasks.deliver_outbox_task.apply_async", record)
    return kicks


@pytest.fixture
def receiver():
    with WebhookReceiver() as server:
        yield server


@pytest.fixture
def salesforce():
    with FakeSalesforce() as server:
        yield server


@pytest.fixture
def hubspot():
    with FakeHubSpot() as server:
        yield server


def make_webhook(url: str, **overrides) -> Destination:
    values = {
        "kind": DestinationKind.WEBHOOK,
        "slug": "sfa-hook",
        "name": "SFA webhook",
        "base_url": url,
        "signing_secret": WEBHOOK_SECRET,
        "timeout_seconds": 2.0,
        **overrides,
    }
    return Destination.objects.create(**values)


def make_salesforce(url: str, **overrides) -> Destination:
    values = {
        "kind": DestinationKind.SALESFORCE,
        "slug": "salesforce",
        "name": "Salesforce",
        "base_url": url,
        "token_url": f"{url}/services/oauth2/token",
        "client_id": "3MVG9-client",
        "client_secret": "client-secret",
        "timeout_seconds": 2.0,
        **overrides,
    }
    return Destination.objects.create(**values)


def make_hubspot(url: str, **overrides) -> Destination:
    values = {
        "kind": DestinationKind.HUBSPOT,
        "slug": "hubspot",
        "name": "HubSpot",
        "base_url": url,
        "api_token": "pat-na1-test",
        "timeout_seconds": 2.0,
        **overrides,
    }
    return Destination.objects.create(**values)


def ensure_default_scoring_model() -> None:
    """The published default model, as its data migration makes it, if none is there.

    For transaction=True tests: the flush after each of them removes migration data, and
    serialized_rollback cannot bring it back reliably (the flush re-runs post_migrate, whose
    roles then collide with the serialized copy), so tests that need it make it."""
    import importlib

    from django.db import connection
    from django.db.migrations.loader import MigrationLoader

    migration = importlib.import_module("scoring.migrations.0002_default_model")
    # The migration's own code, on the migrations' (guard-free) models at the latest state:
    # the real model refuses rule changes once published, the migration creates it so.
    historical = MigrationLoader(connection).project_state().apps
    migration.create_default_model(historical, None)
    # Historical models send no post_save, so the compiled-model cache does not hear that
    # this id (reused after the flush) now names another model.
    from scoring import engine

    engine._CACHE.clear()


def stored_score(lead, *, fit: int, engagement: int) -> None:
    """The score scoring would have stored just before moving the lead to MQL."""
    from scoring.models import LeadScore, ScoringModel

    # transaction=True tests flush the migration's default model; any published one will do.
    model = ScoringModel.objects.filter(status="published").first()
    if model is None:
        model = ScoringModel.objects.create(name="tests", version=1, status="published")
    LeadScore.objects.update_or_create(
        lead=lead,
        defaults={
            "model": model,
            "fit": fit,
            "engagement": engagement,
        },
    )
