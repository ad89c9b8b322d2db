"""GET /api/v1/leads/{id}/score/: permissions, the JSON error shape, explanations."""

import datetime as dt

import pytest
import time_machine
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from scoring.services import lead_score_event
from tests.factories import EngagementEventFactory, LeadFactory, UserFactory
from tests.scoring.conftest import T0, make_model, publish


def url(lead_id):
    return f"/api/v1/leads/{lead_id}/score/"


@pytest.fixture
def scored_lead(db):
    model = make_model(
        categories=[{"name": "size", "min_points": 0, "max_points": 20}],
        fit=[
            {
                "category": "size",
                "field": "company.employee_count",
                "operator": "between",
                "min_value": 100,
                "points": 15,
                "label": "100+ staff",
            },
            {
                "category": "size",
                "field": "company.industry",
                "operator": "equals",
                "value": "manufacturing",
                "points": 10,
                "label": "maker",
            },
        ],
        engagement=[
            {"label": "views", "kind": "page_view", "points": 4, "cap_points": 10},
            {"label": "downloads", "kind": "document_download", "points": 15, "half_life_days": 10},
        ],
    )
    publish(model)
    lead = LeadFactory()
    for i, kind in enumerate(["page_view"] * 3 + ["document_download"]):
        event = EngagementEventFactory(
            lead=lead, kind=kind, occurred_at=T0 + dt.timedelta(minutes=i)
        )
        with time_machine.travel(T0 + dt.timedelta(minutes=i), tick=False):
            lead_score_event(event=event)
    return model, lead


@pytest.mark.django_db
def test_anonymous_callers_get_401_in_the_json_error_shape(scored_lead):
    _model, lead = scored_lead

    response = APIClient().get(url(lead.pk))

    assert response.status_code == 401
    assert response.json() == {
        "error": {
            "code": "not_authenticated",
            "message": "Authentication credentials were not provided.",
        }
    }


@pytest.mark.django_db
def test_users_without_the_score_permission_get_403(scored_lead):
    _model, lead = scored_lead
    client = APIClient()
    client.force_authenticate(UserFactory())

    response = client.get(url(lead.pk))

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


@pytest.mark.django_db
def test_a_sales_rep_reads_the_score_with_a_breakdown_that_sums_to_it(scored_lead):
    model, lead = scored_lead
    rep = UserFactory(roles=["Sales rep"])
    lead.owner = rep  # a rep reads the scores of their own leads
    lead.save(update_fields=["owner"])
    token = Token.objects.create(user=rep)
    client = APIClient(HTTP_AUTHORIZATION=f"Token {token.key}")

    with time_machine.travel(T0 + dt.timedelta(days=10, minutes=3), tick=False):
        response = client.get(url(lead.pk))

    assert response.status_code == 200
    body = response.json()
    assert body["model"] == {"id": model.pk, "version": model.version, "name": "test"}
    assert body["fit"]["score"] == 20
    assert body["fit"]["breakdown"] == [
        {
            "rule": model.fit_rules.get(label="100+ staff").pk,
            "label": "100+ staff",
            "category": "size",
            "points": 15,
        },
        {
            "rule": model.fit_rules.get(label="maker").pk,
            "label": "maker",
            "category": "size",
            "points": 10,
        },
        {"rule": None, "label": "Category limit 0–20", "category": "size", "points": -5},
    ]
    views, downloads = body["engagement"]["breakdown"]
    assert views == {
        "rule": model.engagement_rules.get(label="views").pk,
        "label": "views",
        "count": 3,
        "points_each": 4,
        "raw": 12,
        "capped": -2,
        "decayed": 0,
        "points": 10,
    }
    # Ten days later (one half-life) the download is worth 7.5 → 8 points.
    assert (downloads["raw"], downloads["decayed"], downloads["points"]) == (15, -7, 8)
    assert body["engagement"]["score"] == 18
    assert sum(line["points"] for line in body["fit"]["breakdown"]) == body["fit"]["score"]
    assert sum(line["points"] for line in body["engagement"]["breakdown"]) == 18
    assert body["meets_mql_policy"] is False


@pytest.mark.django_db
def test_unknown_and_unscored_leads_are_404_with_a_reason():
    client = APIClient()
    client.force_authenticate(UserFactory(roles=["Sales manager"]))
    unscored = LeadFactory()

    missing = client.get(url(999_999))
    not_scored = client.get(url(unscored.pk))

    assert missing.status_code == 404
    assert missing.json()["error"] == {
        "code": "not_found",
        "message": "Lead 999999 does not exist.",
    }
    assert not_scored.status_code == 404
    assert not_scored.json()["error"]["message"] == f"Lead {unscored.pk} has not been scored yet."


@pytest.mark.django_db
def test_a_rep_gets_404_for_the_score_of_another_reps_lead(scored_lead):
    _model, lead = scored_lead
    lead.owner = UserFactory(roles=["Sales rep"])
    lead.save(update_fields=["owner"])
    client = APIClient()
    client.force_authenticate(UserFactory(roles=["Sales rep"]))

    response = client.get(url(lead.pk))

    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "not_found",
        "message": f"Lead {lead.pk} does not exist.",
    }
