"""GET/PUT /api/v1/me/availability/: the caller's own availability, in the API."""

import datetime as dt
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
import time_machine
from rest_framework.test import APIClient

from handoff.models import Handoff, RepProfile
from leadflow.roles import MARKETING
from tests.factories import UserFactory
from tests.handoff.helpers import make_mql, make_team, set_profile

TOKYO = ZoneInfo("Asia/Tokyo")
NOW = dt.datetime(2026, 11, 30, 10, 0, tzinfo=TOKYO)
URL = "/api/v1/me/availability/"
DATETIME_FORMAT = (
    "Datetime has wrong format. Use one of these formats instead: "
    "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."
)


@pytest.fixture(autouse=True)
def _pinned_clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def kanto(db):
    team, (alice, bob), manager = make_team("Kanto", reps=2, default=True)
    return team, alice, bob, manager


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def test_get_says_available_by_default(kanto):
    _team, alice, _bob, _manager = kanto

    response = api(alice).get(URL)

    assert response.status_code == 200
    assert response.json() == {"away": False, "away_until": None}


def test_get_shows_away_until_in_tokyo_time(kanto):
    _team, alice, _bob, _manager = kanto
    set_profile(alice, away=True, away_until=dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC))

    assert api(alice).get(URL).json() == {
        "away": True,
        "away_until": "2026-12-01T18:00:00+09:00",
    }


def test_an_away_until_that_passed_reads_as_back(kanto):
    _team, alice, _bob, _manager = kanto
    set_profile(alice, away=True, away_until=NOW - dt.timedelta(hours=1))

    assert api(alice).get(URL).json() == {"away": False, "away_until": None}


@pytest.mark.parametrize(
    "until", ["2026-12-01T18:00:00+09:00", "2026-12-01T09:00:00Z", "2026-12-01T18:00"]
)
def test_put_away_until_a_time(kanto, until):
    # A time without an offset is Tokyo time, like the page's form.
    _team, alice, _bob, _manager = kanto

    response = api(alice).put(URL, {"away": True, "away_until": until}, format="json")

    assert response.status_code == 200
    assert response.json() == {
        "away": True,
        "away_until": "2026-12-01T18:00:00+09:00",
        "assigned_from_queue": [],
    }
    profile = RepProfile.objects.get(user=alice)
    assert profile.away_until == dt.datetime(2026, 12, 1, 18, 0, tzinfo=TOKYO)


def test_put_away_without_a_time(kanto):
    _team, alice, _bob, _manager = kanto

    response = api(alice).put(URL, {"away": True}, format="json")

    assert response.status_code == 200
    assert response.json() == {"away": True, "away_until": None, "assigned_from_queue": []}


def test_put_back_drains_the_queue_to_the_caller(kanto):
    _team, alice, bob, _manager = kanto
    set_profile(alice, away=True)
    set_profile(bob, away=True)
    queued = [make_mql(), make_mql()]

    response = api(alice).put(URL, {"away": False}, format="json")

    assert response.status_code == 200
    assert response.json() == {
        "away": False,
        "away_until": None,
        "assigned_from_queue": [h.pk for h in queued],
    }
    assert list(Handoff.objects.filter(assigned_to=alice).order_by("pk")) == queued


def test_put_in_the_past_is_422_in_the_error_shape(kanto):
    _team, alice, _bob, _manager = kanto

    response = api(alice).put(
        URL, {"away": True, "away_until": "2026-11-30T09:00:00+09:00"}, format="json"
    )

    assert response.status_code == 422
    assert response.json() == {
        "error": {
            "code": "invalid_away_until",
            "message": "“Away until” must be in the future.",
            "fields": {"away_until": ["“Away until” must be in the future."]},
        }
    }
    assert not RepProfile.objects.filter(user=alice).exists()


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"away": ["This field is required."]}),
        ({"away": "maybe"}, {"away": ["Must be a valid boolean."]}),
        (
            {"away": True, "away_until": "next week"},
            {"away_until": [DATETIME_FORMAT]},
        ),
        ({"away": True, "away_until": ""}, {"away_until": [DATETIME_FORMAT]}),
    ],
    ids=["missing", "not-a-boolean", "not-a-time", "empty-time"],
)
def test_bad_input_is_400_validation_error(kanto, body, fields):
    _team, alice, _bob, _manager = kanto

    response = api(alice).put(URL, body, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["fields"]) == ("validation_error", fields)
    assert not RepProfile.objects.filter(user=alice).exists()


@pytest.mark.parametrize("form", ["multipart", "urlencoded"])
def test_an_empty_away_until_in_a_form_is_refused_as_in_json(kanto, form):
    # DRF read "" in a form as null: "away until set back", where JSON's "" is a 400.
    _team, alice, _bob, _manager = kanto
    client = api(alice)
    body = {"away": "true", "away_until": ""}
    if form == "multipart":
        response = client.put(URL, body, format="multipart")
    else:
        response = client.put(
            URL, urlencode(body), content_type="application/x-www-form-urlencoded"
        )

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"away_until": [DATETIME_FORMAT]}
    assert not RepProfile.objects.filter(user=alice).exists()


def test_an_away_until_when_coming_back_is_a_rule_refusal_422(kanto):
    # Each field valid, the pair not (the schema cannot say so): a 422, not a 400.
    _team, alice, _bob, _manager = kanto

    response = api(alice).put(
        URL, {"away": False, "away_until": "2026-12-01T18:00:00+09:00"}, format="json"
    )

    assert response.status_code == 422
    message = "Only with away: true; leave it out to come back."
    assert response.json() == {
        "error": {
            "code": "invalid_away_until",
            "message": message,
            "fields": {"away_until": [message]},
        }
    }
    assert not RepProfile.objects.filter(user=alice).exists()


def test_anonymous_is_401_in_the_error_shape(db):
    for response in (api().get(URL), api().put(URL, {"away": True}, format="json")):
        assert response.status_code == 401
        assert response.json() == {
            "error": {
                "code": "not_authenticated",
                "message": "Authentication credentials were not provided.",
            }
        }


def test_users_in_no_team_are_403(kanto):
    _team, _alice, _bob, manager = kanto
    marketer = UserFactory(username="mkt", roles=[MARKETING])

    for user in (marketer, manager):
        for response in (api(user).get(URL), api(user).put(URL, {"away": True}, format="json")):
            assert response.status_code == 403
            assert response.json() == {
                "error": {
                    "code": "permission_denied",
                    "message": "You are not a rep in any team: there is no availability to set.",
                }
            }
    assert not RepProfile.objects.exists()


def test_another_users_id_in_the_body_is_ignored(kanto):
    _team, alice, bob, _manager = kanto

    response = api(alice).put(URL, {"away": True, "user": bob.pk, "user_id": bob.pk}, format="json")

    assert response.status_code == 200
    assert RepProfile.objects.get(user=alice).away is True
    assert not RepProfile.objects.filter(user=bob).exists()


def test_other_methods_are_405(kanto):
    _team, alice, _bob, _manager = kanto

    response = api(alice).post(URL, {"away": True}, format="json")

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    ("until", "error"),
    [
        ("0001-01-01T00:00:00+09:00", "Datetime value out of range."),
        ("0001-01-01T00:00", "Datetime value out of range."),
        ("9999-12-31T23:59:59-09:00", "Datetime value out of range."),
        ("2100-01-01T00:00:00+09:00", "Datetime value out of range."),
    ],
)
def test_a_time_at_the_end_of_the_calendar_is_a_400_and_the_profile_stays_readable(
    kanto, until, error
):
    _team, alice, _bob, _manager = kanto

    response = api(alice).put(URL, {"away": True, "away_until": until}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"away_until": [error]}
    assert api(alice).get(URL).json() == {"away": False, "away_until": None}
