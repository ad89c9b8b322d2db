import datetime as dt

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from leadflow.lifecycle import lead_transition
from leadflow.models import LeadExternalId, Stage
from tests.factories import TOKYO, EngagementEventFactory, LeadFactory, UserFactory


@pytest.fixture
def marketer():
    return UserFactory(username="marketer", roles=["Marketing"])


@pytest.fixture
def rep_a():
    return UserFactory(username="rep-a", roles=["Sales rep"])


@pytest.fixture
def rep_b():
    return UserFactory(username="rep-b", roles=["Sales rep"])


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.mark.django_db
def test_anonymous_gets_401_in_the_error_shape():
    response = APIClient().get("/api/v1/leads/")
    assert response.status_code == 401
    assert response.json() == {
        "error": {
            "code": "not_authenticated",
            "message": "Authentication credentials were not provided.",
        }
    }


@pytest.mark.django_db
def test_bad_token_is_401():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token nope")
    response = client.get("/api/v1/leads/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


@pytest.mark.django_db
def test_marketing_lists_every_lead_with_company(marketer):
    lead = LeadFactory(email="a@example.jp", company__name="株式会社サクラ")
    LeadFactory(email="b@example.jp")

    response = api(marketer).get("/api/v1/leads/")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    first = next(item for item in body["results"] if item["id"] == lead.pk)
    assert first["email"] == "a@example.jp"
    assert first["stage"] == "known"
    assert first["company"]["name"] == "株式会社サクラ"


@pytest.mark.django_db
def test_a_rep_sees_only_their_own_leads_and_others_are_404(rep_a, rep_b):
    mine = LeadFactory(owner=rep_a)
    theirs = LeadFactory(owner=rep_b)

    listing = api(rep_a).get("/api/v1/leads/").json()
    assert [item["id"] for item in listing["results"]] == [mine.pk]
    assert api(rep_a).get(f"/api/v1/leads/{theirs.pk}/").status_code == 404
    assert api(rep_a).get(f"/api/v1/leads/{mine.pk}/").status_code == 200


@pytest.mark.django_db
def test_filters(marketer):
    old = LeadFactory(email="old@example.jp", source="csv")
    new = LeadFactory(email="New@Example.jp", source="mautic")
    lead_transition(lead=new, to_stage=Stage.MQL, actor="scoring")
    client = api(marketer)

    def ids(**params):
        return [item["id"] for item in client.get("/api/v1/leads/", params).json()["results"]]

    assert ids(email="NEW@example.jp") == [new.pk]
    assert ids(stage="mql") == [new.pk]
    assert sorted(ids(stage=["mql", "known"])) == sorted([old.pk, new.pk])
    assert ids(source="csv") == [old.pk]
    future = (dt.datetime.now(TOKYO) + dt.timedelta(days=1)).isoformat()
    assert ids(created_after=future) == []


@pytest.mark.django_db
def test_bad_filter_value_is_a_400_in_the_error_shape(marketer):
    response = api(marketer).get("/api/v1/leads/", {"stage": "won"})
    assert response.status_code == 400
    body = response.json()["error"]
    assert body["code"] == "validation_error"
    assert "stage" in body["fields"]


@pytest.mark.django_db
def test_detail_carries_events_transitions_and_external_ids(marketer):
    lead = LeadFactory()
    LeadExternalId.objects.create(lead=lead, system="mautic", external_id="42")
    EngagementEventFactory(lead=lead, kind="pricing_page_view", properties={"url": "/pricing"})
    lead_transition(lead=lead, to_stage=Stage.MQL, actor="scoring", reason="fit and engagement")

    body = api(marketer).get(f"/api/v1/leads/{lead.pk}/").json()

    assert body["external_ids"] == {"mautic": "42"}
    assert [(e["kind"], e["properties"]) for e in body["events"]] == [
        ("pricing_page_view", {"url": "/pricing"})
    ]
    assert [(t["from_stage"], t["to_stage"], t["actor"]) for t in body["transitions"]] == [
        ("known", "mql", "scoring")
    ]


@pytest.mark.django_db
def test_list_query_count_does_not_grow_with_the_page(marketer, django_assert_max_num_queries):
    client = api(marketer)
    for _ in range(3):
        LeadExternalId.objects.create(lead=LeadFactory(), system="x", external_id=str(_))
    with django_assert_max_num_queries(8) as few:
        client.get("/api/v1/leads/")
    for n in range(30):
        LeadExternalId.objects.create(lead=LeadFactory(), system="y", external_id=str(n))
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get("/api/v1/leads/")


@pytest.mark.django_db
def test_leads_carry_their_scores_and_filter_by_score_ranges(marketer):
    from tests.integrations.conftest import stored_score

    hot = LeadFactory(email="hot@example.jp")
    cold = LeadFactory(email="cold@example.jp")
    unscored = LeadFactory(email="new@example.jp")
    stored_score(hot, fit=45, engagement=70)
    stored_score(cold, fit=10, engagement=5)
    client = api(marketer)

    results = {
        item["email"]: (item["fit_score"], item["engagement_score"])
        for item in client.get("/api/v1/leads/").json()["results"]
    }
    assert results == {
        "hot@example.jp": (45, 70),
        "cold@example.jp": (10, 5),
        "new@example.jp": (None, None),
    }

    def emails(**params):
        return sorted(i["email"] for i in client.get("/api/v1/leads/", params).json()["results"])

    assert emails(fit_min=30, engagement_min=50) == ["hot@example.jp"]
    assert emails(engagement_max=10) == ["cold@example.jp"]
    assert emails(fit_min=10, fit_max=45) == ["cold@example.jp", "hot@example.jp"]
    assert unscored.pk not in [
        i["id"] for i in client.get("/api/v1/leads/", {"fit_min": 0}).json()["results"]
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/v1/leads/merge/", "/api/v1/privacy/erasures/"])
def test_a_body_nested_too_deep_is_a_400_in_the_error_shape(url):
    # 10 KB of [[[[…]]]] went past Python's recursion limit in the JSON parser: a 500.
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    body = "[" * 5000 + "]" * 5000

    response = api(admin).generic("POST", url, body, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {"error": {"code": "parse_error", "message": "Malformed request."}}
