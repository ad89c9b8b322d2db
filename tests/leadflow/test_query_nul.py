"""A NUL character in a query string is a 400 on every URL, never a database error.

PostgreSQL takes no NUL in a text value: ?stage=%00 on an admin list (every list filter)
was a 500 there."""

from __future__ import annotations

import pytest

from tests.factories import LeadFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url",
    [
        "/admin/leadflow/lead/?stage=%00",
        "/admin/leadflow/lead/?source=a%00b",
        "/admin/handoff/handoff/?status=%00",
        "/admin/integrations/inboundevent/?status=%00",
        "/admin/leadflow/lead/?q=%00",
        "/dashboard/?from=%00",
    ],
)
def test_a_nul_in_a_page_query_is_a_400(client, url):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    LeadFactory()

    response = client.get(url)

    assert response.status_code == 400


def test_a_nul_in_an_api_query_is_a_400_in_the_error_shape(client):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))

    response = client.get("/api/v1/leads/?source=x%00&owner=ok&email%00=1")

    assert response.status_code == 400
    message = "The query string contains a NUL character."
    assert response.json() == {
        "error": {
            "code": "invalid_query",
            "message": message,
            "fields": {"email": [message], "source": [message]},
        }
    }


def test_a_query_without_nul_goes_through(client):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))

    assert client.get("/admin/leadflow/lead/?stage=mql").status_code == 200
    assert client.get("/api/v1/leads/?source=web").status_code == 200
