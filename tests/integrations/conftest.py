from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from integrations.outbound.models import Destination, DestinationKind
from tests.integrations.fakes import FakeHubSpot, FakeSalesforce, WebhookReceiver

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
    monkeypatch.setattr(
        "integrations.outbound.tasks.deliver_outbox_task.apply_async",
        lambda *args, **options: kicks.append(options),
    )
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
