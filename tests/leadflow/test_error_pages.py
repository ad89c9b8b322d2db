"""A refused page is a LeadFlow page in the user's language, with a way back, not
Django's bare "403 Forbidden"."""

import pytest

from tests.handoff.helpers import make_team


@pytest.fixture
def rep(db):
    _team, (rep,), _manager = make_team("Kanto", reps=1)
    return rep


def test_a_refused_page_is_translated_and_leads_back(client, rep, settings):
    settings.LANGUAGE_CODE = "ja"
    client.force_login(rep)

    response = client.get("/dashboard/", HTTP_ACCEPT_LANGUAGE="ja")

    assert response.status_code == 403
    body = response.content.decode()
    assert "<h1>権限がありません</h1>" in body
    assert 'href="/">トップページへ戻る</a>' in body
    assert 'href="/inbox/"' in body  # the header still offers what the rep may open


def test_a_refused_page_in_english(client, rep):
    client.force_login(rep)

    response = client.get("/dashboard/", HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 403
    assert "<h1>Not allowed</h1>" in response.content.decode()


def test_the_api_keeps_its_json_error_when_refused(client, rep):
    client.force_login(rep)

    response = client.get("/api/v1/metrics/summary/")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
