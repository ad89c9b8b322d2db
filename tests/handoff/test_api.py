import datetime as dt

import pytest
from rest_framework.test import APIClient

from handoff.models import Activity, Handoff, HandoffStatus
from leadflow.models import Lead, Stage, User
from leadflow.roles import MARKETING
from tests.factories import UserFactory
from tests.handoff.helpers import make_mql, make_team, set_profile

URL = "/api/v1/handoffs/"


@pytest.fixture
def setup(db):
    team, (alice, bob), manager = make_team("Kanto", reps=2, default=True)
    handoffs = [make_mql() for _ in range(4)]  # two each, round robin
    return team, alice, bob, manager, handoffs


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _ids(response):
    return sorted(row["id"] for row in response.json()["results"])


def test_anonymous_gets_the_error_shape(db):
    response = APIClient().get(URL)
    assert response.status_code in (401, 403)
    assert response.json()["error"]["code"] == "not_authenticated"


def test_a_rep_lists_only_their_own(setup):
    _team, alice, _bob, _manager, handoffs = setup
    own = sorted(h.pk for h in handoffs if h.assigned_to == alice)

    response = api(alice).get(URL)

    assert response.status_code == 200
    assert _ids(response) == own
    row = next(r for r in response.json()["results"] if r["id"] == own[0])
    assert row["status"] == "open"
    assert row["assigned_to"]["username"] == "kanto-rep1" or row["assigned_to"]["id"] == alice.pk
    assert row["team"] == "Kanto"
    assert set(row["bant"]) == {"budget", "authority", "need", "timeline"}


def test_another_reps_handoff_is_404_on_every_endpoint(setup):
    _team, alice, bob, _manager, handoffs = setup
    theirs = next(h for h in handoffs if h.assigned_to == bob)
    client = api(alice)

    assert client.get(f"{URL}{theirs.pk}/").status_code == 404
    for action in ("accept", "reject", "activities", "reassign"):
        response = client.post(f"{URL}{theirs.pk}/{action}/", {}, format="json")
        assert response.status_code == 404
        assert response.json() == {"error": {"code": "not_found", "message": "Not found."}}
    assert Handoff.objects.get(pk=theirs.pk).status == HandoffStatus.OPEN


def test_manager_and_marketing_see_all_of_the_team(setup):
    _team, _alice, _bob, manager, handoffs = setup
    marketer = UserFactory(username="mk", roles=[MARKETING])

    assert _ids(api(manager).get(URL)) == sorted(h.pk for h in handoffs)
    assert _ids(api(marketer).get(URL)) == sorted(h.pk for h in handoffs)


def test_a_manager_of_another_team_sees_none_of_them(setup):
    _other, _reps, other_manager = make_team("Kinki", reps=1)
    assert _ids(api(other_manager).get(URL)) == []


def test_marketing_cannot_act(setup):
    _team, _alice, _bob, _manager, handoffs = setup
    marketer = UserFactory(username="mk", roles=[MARKETING])

    response = api(marketer).post(
        f"{URL}{handoffs[0].pk}/accept/", {"bant": {"budget": True, "need": True}}, format="json"
    )

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert Handoff.objects.get(pk=handoffs[0].pk).status == HandoffStatus.OPEN


def test_filters_status_team_rep_queued_and_created_range(setup):
    team, alice, bob, manager, handoffs = setup
    Handoff.objects.filter(pk=handoffs[0].pk).update(
        created_at=dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
    )
    set_profile(alice, away=True)
    set_profile(bob, away=True)
    queued = make_mql()
    client = api(manager)

    assert _ids(client.get(URL, {"rep": alice.pk})) == sorted(
        h.pk for h in handoffs if h.assigned_to == alice
    )
    assert _ids(client.get(URL, {"team": team.pk, "queued": "true"})) == [queued.pk]
    assert _ids(client.get(URL, {"status": "accepted"})) == []
    old = client.get(
        URL, {"created_after": "2026-01-01T00:00:00Z", "created_before": "2026-02-01T00:00:00Z"}
    )
    assert _ids(old) == [handoffs[0].pk]
    bad = client.get(URL, {"status": "won"})
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "validation_error"
    assert "status" in bad.json()["error"]["fields"]


def test_accept_through_the_api_uses_the_same_rule(setup):
    _team, alice, _bob, _manager, handoffs = setup
    handoff = next(h for h in handoffs if h.assigned_to == alice)
    client = api(alice)

    refused = client.post(f"{URL}{handoff.pk}/accept/", {"bant": {"budget": True}}, format="json")
    assert refused.status_code == 422
    message = (
        "To accept as SQL, at least 2 of budget, authority, need and timeline must be yes "
        "(1 checked)."
    )
    assert refused.json() == {
        "error": {"code": "bant_too_few", "message": message, "fields": {"bant": [message]}}
    }
    assert Lead.objects.get(pk=handoff.lead_id).stage == Stage.MQL

    accepted = client.post(
        f"{URL}{handoff.pk}/accept/",
        {"bant": {"budget": True, "authority": True, "need": False}},
        format="json",
    )
    assert accepted.status_code == 200
    assert accepted.json()["status"] == "accepted"
    assert accepted.json()["bant"] == {
        "budget": True,
        "authority": True,
        "need": False,
        "timeline": False,
    }
    assert accepted.json()["lead"]["stage"] == "sql"

    again = client.post(
        f"{URL}{handoff.pk}/accept/", {"bant": {"budget": True, "need": True}}, format="json"
    )
    assert again.status_code == 422
    assert again.json()["error"]["code"] == "handoff_closed"


def test_accept_with_a_malformed_body_is_a_400(setup):
    _team, alice, _bob, _manager, handoffs = setup
    handoff = next(h for h in handoffs if h.assigned_to == alice)

    response = api(alice).post(f"{URL}{handoff.pk}/accept/", {"bant": "yes"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert "bant" in response.json()["error"]["fields"]


def test_reject_through_the_api(setup):
    _team, alice, _bob, _manager, handoffs = setup
    handoff = next(h for h in handoffs if h.assigned_to == alice)
    client = api(alice)

    refused = client.post(f"{URL}{handoff.pk}/reject/", {}, format="json")
    assert refused.status_code == 422
    assert refused.json()["error"] == {
        "code": "rejection_incomplete",
        "message": "A rejection needs a reason and a comment, so marketing knows what to do next.",
        "fields": {"reason": ["Choose a reason."], "comment": ["Write a comment for marketing."]},
    }
    unknown = client.post(
        f"{URL}{handoff.pk}/reject/", {"reason": "bored", "comment": "x"}, format="json"
    )
    assert unknown.status_code == 422
    assert unknown.json()["error"] == {
        "code": "rejection_incomplete",
        "message": "A rejection needs a reason and a comment, so marketing knows what to do next.",
        "fields": {"reason": ["There is no reason “bored”; choose one of the offered reasons."]},
    }

    for _attempt in range(3):  # the SLA: "not reachable" only after 3 attempts
        client.post(
            f"{URL}{handoff.pk}/activities/",
            {"kind": "call", "outcome": "no_answer"},
            format="json",
        )
    done = client.post(
        f"{URL}{handoff.pk}/reject/",
        {"reason": "not_reachable", "comment": "3回架電、不通"},
        format="json",
    )
    assert done.status_code == 200
    assert (done.json()["status"], done.json()["rejection_reason"]) == ("rejected", "not_reachable")
    assert Lead.objects.get(pk=handoff.lead_id).stage == Stage.RECYCLED


def test_activities_through_the_api(setup):
    _team, alice, _bob, _manager, handoffs = setup
    handoff = next(h for h in handoffs if h.assigned_to == alice)
    client = api(alice)

    created = client.post(
        f"{URL}{handoff.pk}/activities/",
        {"kind": "meeting", "outcome": "meeting_set", "note": "来週訪問"},
        format="json",
    )
    bad = client.post(f"{URL}{handoff.pk}/activities/", {"kind": "fax"}, format="json")
    listed = client.get(f"{URL}{handoff.pk}/activities/")

    assert created.status_code == 201
    assert (created.json()["kind"], created.json()["by"]["id"]) == ("meeting", alice.pk)
    assert bad.status_code == 400
    assert set(bad.json()["error"]["fields"]) == {"kind", "outcome"}
    assert [row["note"] for row in listed.json()] == ["来週訪問"]
    assert Activity.objects.count() == 1
    assert Handoff.objects.get(pk=handoff.pk).first_contact_at is not None


@pytest.mark.parametrize(
    "at", ["0001-01-01T00:00:00+09:00", "0001-01-01T00:00", "9999-12-31T23:59:59-09:00"]
)
def test_an_activity_time_at_the_end_of_the_calendar_is_a_400(setup, at):
    _team, alice, _bob, _manager, handoffs = setup
    handoff = next(h for h in handoffs if h.assigned_to == alice)

    response = api(alice).post(
        f"{URL}{handoff.pk}/activities/",
        {"kind": "call", "outcome": "reached", "at": at},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"at": ["Datetime value out of range."]}
    assert not Activity.objects.exists()


def test_marketing_can_read_activities_but_not_add(setup):
    _team, _alice, _bob, _manager, handoffs = setup
    marketer = UserFactory(username="mk", roles=[MARKETING])
    client = api(marketer)

    assert client.get(f"{URL}{handoffs[0].pk}/activities/").status_code == 200
    response = client.post(
        f"{URL}{handoffs[0].pk}/activities/", {"kind": "call", "outcome": "reached"}, format="json"
    )
    assert response.status_code == 403


def test_reassign_is_for_managers(setup):
    _team, alice, bob, manager, handoffs = setup
    handoff = next(h for h in handoffs if h.assigned_to == alice)

    by_rep = api(alice).post(
        f"{URL}{handoff.pk}/reassign/", {"rep": bob.pk, "reason": "x"}, format="json"
    )
    no_reason = api(manager).post(f"{URL}{handoff.pk}/reassign/", {"rep": bob.pk}, format="json")
    done = api(manager).post(
        f"{URL}{handoff.pk}/reassign/", {"rep": bob.pk, "reason": "有給休暇"}, format="json"
    )

    assert by_rep.status_code == 403
    assert no_reason.status_code == 422
    assert no_reason.json()["error"]["fields"] == {
        "reason": ["Say why the handoff moves to another rep."]
    }
    assert done.status_code == 200
    assert done.json()["assigned_to"]["id"] == bob.pk


def test_list_queries_do_not_grow(setup, django_assert_num_queries):
    _team, _alice, _bob, manager, _handoffs = setup
    api(manager).get(URL)  # warm up process-wide caches (content types etc.)
    for _ in range(10):
        make_mql()
    fresh = User.objects.get(pk=manager.pk)  # as a real request loads it

    # roles, managed teams, count, page
    with django_assert_num_queries(4):
        response = api(fresh).get(URL)
    assert response.json()["count"] == 14
