"""Times from outside with a UTC offset beyond ±15:59 (or a year past the bounds) are a
400 naming the field, everywhere a time is accepted: PostgreSQL's timestamptz cannot hold
such an offset and answered "time zone displacement out of range" (a 500)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import time_machine
from rest_framework.test import APIClient

from handoff.forms import AwayForm
from handoff.models import Activity
from integrations.outbound.models import FeedbackEvent
from integrations.signing import sign
from leadflow.datetimes import datetime_problem
from leadflow.models import Stage
from tests.factories import LeadFactory
from tests.handoff.helpers import make_mql, make_team
from tests.integrations.conftest import make_webhook

OFFSET = "The UTC offset must be between -15:59 and +15:59."
NOW = dt.datetime(2026, 11, 2, 10, 0, tzinfo=dt.UTC)


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def error(response) -> dict:
    return response.json()["error"]


@pytest.fixture
def world(db):
    team, (rep,), manager = make_team("Kanto", reps=1, default=True)
    handoff = make_mql(email="a@example.jp")
    return {"rep": rep, "manager": manager, "handoff": handoff, "team": team}


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("2026-01-01T00:00:00+15:59", True),
        ("2026-01-01T00:00:00-15:59", True),
        ("2026-01-01T00:00:00+16:00", False),
        ("2026-01-01T00:00:00+20:00", False),
        ("2026-01-01T00:00:00-18:00", False),
    ],
)
def test_the_one_check_keeps_what_postgresql_can_store(text, ok):
    problem = datetime_problem(dt.datetime.fromisoformat(text))
    assert problem == (None if ok else OFFSET)


PARAMS = [
    ("/api/v1/leads/", "created_before", "2026-01-01T00:00:00+20:00"),
    ("/api/v1/leads/", "created_after", "2026-01-01T00:00:00-18:00"),
    ("/api/v1/handoffs/", "created_after", "2026-01-01T00:00:00-18:00"),
    ("/api/v1/handoffs/", "created_before", "2026-01-01T00:00:00+16:00"),
]


def _assert_param_refused(user, url, name, value):
    response = api(user).get(url, {name: value})
    assert response.status_code == 400
    assert error(response) == {
        "code": "validation_error",
        "message": f"{name}: {OFFSET}",
        "fields": {name: [OFFSET]},
    }


@pytest.mark.parametrize(("url", "name", "value"), PARAMS)
def test_a_list_filter_with_a_far_offset_is_a_400(world, url, name, value):
    _assert_param_refused(world["manager"], url, name, value)


@pytest.mark.postgres
@pytest.mark.parametrize(("url", "name", "value"), PARAMS)
def test_a_list_filter_with_a_far_offset_is_a_400_on_postgresql(world, url, name, value):
    _assert_param_refused(world["manager"], url, name, value)


@pytest.mark.parametrize("url", ["/api/v1/leads/", "/api/v1/handoffs/"])
def test_the_largest_storable_offset_still_filters(world, url):
    response = api(world["manager"]).get(url, {"created_after": "2000-01-01T00:00:00+15:59"})
    assert response.status_code == 200
    assert response.json()["count"] == 1


@pytest.mark.parametrize("url", ["/api/v1/leads/", "/api/v1/handoffs/"])
def test_an_empty_time_filter_is_a_400_not_no_bound(world, url):
    response = api(world["manager"]).get(url, {"created_after": ""})
    assert response.status_code == 400
    message = "Give a value, or leave the parameter out."
    assert error(response)["fields"] == {"created_after": [message]}


def test_an_activity_at_a_far_offset_is_a_400_and_not_logged(world):
    handoff = world["handoff"]
    response = api(world["rep"]).post(
        f"/api/v1/handoffs/{handoff.pk}/activities/",
        {"kind": "call", "outcome": "reached", "at": "2026-11-01T10:00:00+20:00"},
        format="json",
    )
    assert response.status_code == 400
    assert error(response)["fields"] == {"at": [OFFSET]}
    assert not Activity.objects.filter(handoff=handoff).exists()


@time_machine.travel(NOW, tick=False)
def test_away_until_at_a_far_offset_is_a_400_in_the_api_and_the_form(world):
    rep = world["rep"]
    response = api(rep).put(
        "/api/v1/me/availability/",
        {"away": True, "away_until": "2026-12-01T18:00:00-18:00"},
        format="json",
    )
    assert response.status_code == 400
    assert error(response)["fields"] == {"away_until": [OFFSET]}

    form = AwayForm(data={"away_until": "2026-12-01T18:00:00+20:00"})
    assert not form.is_valid()
    assert form.errors == {"away_until": [OFFSET]}


def _feedback(client, destination, body: dict):
    raw = json.dumps(body).encode()
    return client.post(
        f"/api/v1/feedback/{destination.slug}/",
        data=raw,
        content_type="application/json",
        headers={"X-LeadFlow-Signature": sign("fb-secret", raw)},
    )


def _assert_feedback_refused(client):
    destination = make_webhook("http://127.0.0.1:9", slug="sfa", signing_secret="fb-secret")
    lead = LeadFactory(stage=Stage.SQL, email="sql@example.jp")
    response = _feedback(
        client,
        destination,
        {
            "lead": lead.email,
            "outcome": "won",
            "event_id": "e-1",
            "occurred_at": "2026-12-01T10:00:00+20:00",
        },
    )
    assert response.status_code == 400
    assert error(response) == {
        "code": "validation_error",
        "message": f"/occurred_at: {OFFSET}",
        "fields": {"/occurred_at": [OFFSET]},
    }
    assert not FeedbackEvent.objects.exists()


@pytest.mark.django_db
def test_signed_feedback_occurring_at_a_far_offset_is_a_400(client):
    _assert_feedback_refused(client)


@pytest.mark.postgres
@pytest.mark.django_db
def test_signed_feedback_occurring_at_a_far_offset_is_a_400_on_postgresql(client):
    _assert_feedback_refused(client)
