"""The OpenAPI schema says what the API does (found by schemathesis as a rep and a
manager): status codes, parameter types and bounds, and the answers to bad parameters."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.handoff.helpers import make_mql, make_team
from tests.test_api_fuzz import _openapi

SCHEMA = _openapi()


def parameter(path: str, method: str, name: str) -> dict:
    operation = SCHEMA["paths"][path][method]
    return next(p for p in operation.get("parameters", []) if p["name"] == name)


def test_logging_an_activity_is_documented_as_201():
    responses = SCHEMA["paths"]["/api/v1/handoffs/{id}/activities/"]["post"]["responses"]
    assert "201" in responses and "200" not in responses


def test_the_activity_list_takes_no_handoff_list_filters():
    operation = SCHEMA["paths"]["/api/v1/handoffs/{id}/activities/"]["get"]
    assert [p["name"] for p in operation["parameters"]] == ["id"]


@pytest.mark.parametrize("path", ["/api/v1/leads/", "/api/v1/handoffs/"])
def test_pages_start_at_1_and_a_missing_page_is_a_documented_404(path):
    assert parameter(path, "get", "page")["schema"] == {"type": "integer", "minimum": 1}
    not_found = SCHEMA["paths"][path]["get"]["responses"]["404"]
    assert not_found["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }


def test_integer_filters_carry_their_bounds_and_metrics_teams_start_at_1():
    assert parameter("/api/v1/leads/", "get", "engagement_min")["schema"] == {
        "type": "integer",
        "minimum": -(2**31 - 1),
        "maximum": 2**31 - 1,
    }
    assert parameter("/api/v1/handoffs/", "get", "team")["schema"]["type"] == "integer"
    assert parameter("/api/v1/metrics/summary/", "get", "team")["schema"] == {
        "type": "integer",
        "minimum": 1,
    }


def test_time_parameters_say_which_years_and_offsets_are_taken():
    schema = parameter("/api/v1/leads/", "get", "created_before")["schema"]
    assert schema["format"] == "date-time"
    assert schema["pattern"] == r"^(19|20)[0-9]{2}-.*([Zz]|[+-](0[0-9]|1[0-5]):[0-5][0-9])$"


def test_bant_names_its_four_items():
    bant = SCHEMA["components"]["schemas"]["BantInput"]["properties"]
    assert sorted(bant) == ["authority", "budget", "need", "timeline"]


@pytest.fixture
def manager(db):
    _team, _reps, manager = make_team("Kanto", reps=1, default=True)
    make_mql(email="a@example.jp")
    return manager


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.parametrize(
    ("url", "params", "field", "message"),
    [
        ("/api/v1/leads/", {"engagement_max": "1.5"}, "engagement_max", "Enter a whole number."),
        ("/api/v1/leads/", {"fit_min": ""}, "fit_min", "Give a value, or leave the parameter out."),
        ("/api/v1/handoffs/", {"team": ""}, "team", "Give a value, or leave the parameter out."),
        ("/api/v1/handoffs/", {"queued": "null"}, "queued", "Give true or false."),
    ],
)
def test_parameters_the_schema_calls_invalid_are_a_400(manager, url, params, field, message):
    response = api(manager).get(url, params)

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {field: [message]}


@pytest.mark.parametrize("url", ["/api/v1/leads/", "/api/v1/handoffs/"])
@pytest.mark.parametrize("page", ["0", "2"])
def test_a_page_that_is_not_there_is_404_in_the_error_shape(manager, url, page):
    response = api(manager).get(url, {"page": page})

    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Invalid page."}}


def test_the_activity_list_of_a_handoff_ignores_list_filters(manager):
    handoff_id = api(manager).get("/api/v1/handoffs/").json()["results"][0]["id"]

    response = api(manager).get(
        f"/api/v1/handoffs/{handoff_id}/activities/", {"status": "accepted"}
    )

    assert response.status_code == 200
    assert response.json() == []


def test_unknown_bant_keys_are_ignored_like_any_unknown_field(db):
    _team, (rep,), _manager = make_team("Kanto", reps=1, default=True)
    handoff = make_mql(email="bant@example.jp")

    response = api(rep).post(
        f"/api/v1/handoffs/{handoff.pk}/accept/",
        {"bant": {"budget": True, "need": True, "budjet": True}},
        format="json",
    )

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "accepted"
    assert response.json()["bant"] == {
        "budget": True,
        "authority": False,
        "need": True,
        "timeline": False,
    }


ERROR_REF = {"$ref": "#/components/schemas/Error"}


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/api/v1/handoffs/{id}/accept/", "post"),
        ("/api/v1/handoffs/{id}/reject/", "post"),
        ("/api/v1/handoffs/{id}/reassign/", "post"),
        ("/api/v1/handoffs/{id}/activities/", "post"),
        ("/api/v1/me/availability/", "put"),
        ("/api/v1/leads/merge/", "post"),
        ("/api/v1/privacy/erasures/", "post"),
        ("/api/v1/privacy/export/", "get"),
        ("/api/v1/metrics/summary/", "get"),
        ("/api/v1/metrics/weekly/", "get"),
    ],
)
def test_business_rule_refusals_are_a_documented_422(path, method):
    refused = SCHEMA["paths"][path][method]["responses"]["422"]
    assert refused["content"]["application/json"]["schema"] == ERROR_REF


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/api/v1/leads/", "get"),
        ("/api/v1/handoffs/{id}/", "get"),
        ("/api/v1/account/token/", "post"),
    ],
)
def test_operations_no_rule_refuses_document_no_422(path, method):
    assert "422" not in SCHEMA["paths"][path][method]["responses"]


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/api/v1/leads/merge/", "post"),
        ("/api/v1/privacy/erasures/", "post"),
        ("/api/v1/privacy/export/", "get"),
    ],
)
def test_lead_ids_in_a_body_or_query_may_be_a_documented_404(path, method):
    assert (
        SCHEMA["paths"][path][method]["responses"]["404"]["content"]["application/json"]["schema"]
        == ERROR_REF
    )


def test_metrics_days_say_which_years_are_taken():
    for name in ("from", "to"):
        assert parameter("/api/v1/metrics/summary/", "get", name)["schema"] == {
            "type": "string",
            "format": "date",
            "pattern": r"^20[0-9]{2}-[0-9]{2}-[0-9]{2}$",
        }


def test_text_that_may_not_be_blank_says_so():
    erasure = SCHEMA["components"]["schemas"]["ErasureInput"]["properties"]
    assert erasure["requested_by"]["pattern"] == r"\S"
    assert "pattern" not in erasure["note"]  # blank allowed
    assert (
        SCHEMA["components"]["schemas"]["RejectInput"]["properties"]["reason"]["pattern"] == r"\S"
    )


def test_request_bodies_are_documented_as_json_only():
    body = SCHEMA["paths"]["/api/v1/me/availability/"]["put"]["requestBody"]
    assert list(body["content"]) == ["application/json"]


def test_erasures_filter_by_a_whole_lead_id(db):
    from tests.factories import UserFactory

    admin = UserFactory(username="root", is_superuser=True, is_staff=True)
    assert parameter("/api/v1/privacy/erasures/", "get", "subject_lead_id")["schema"]["type"] == (
        "integer"
    )
    response = api(admin).get("/api/v1/privacy/erasures/", {"subject_lead_id": "0.5"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
