"""The OpenAPI schema and its Swagger UI are for signed-in users, and the UI page works
under the Content-Security-Policy (no inline script or style)."""

import re

import pytest
from rest_framework.authtoken.models import Token

from tests.factories import UserFactory


@pytest.fixture
def user(db):
    return UserFactory(username="reader")


def test_anonymous_gets_the_api_error_shape_not_the_schema(client, db):
    response = client.get("/api/schema/")

    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "not_authenticated"


def test_a_token_reads_the_schema(client, user):
    token = Token.objects.create(user=user)

    response = client.get("/api/schema/", headers={"authorization": f"Token {token.key}"})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi")
    assert response.content.startswith(b"openapi: 3")


def test_anonymous_is_sent_to_the_login_page_for_the_docs(client, db):
    response = client.get("/api/docs/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/api/docs/"


def test_the_docs_page_has_no_inline_script_or_style(client, user):
    client.force_login(user)

    page = client.get("/api/docs/").content.decode()
    script = client.get("/api/docs/?script=")

    assert "<style" not in page
    assert re.findall(r"<script(?![^>]*\ssrc=)", page) == []
    assert 'href="/static/css/swagger.css"' in page
    assert '<script src="/api/docs/?script="></script>' in page
    assert script.status_code == 200
    assert script["Content-Type"] == "application/javascript"
    assert 'url: "/api/schema/"' in script.content.decode()
