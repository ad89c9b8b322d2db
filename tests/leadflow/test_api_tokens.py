"""API tokens: a user sees, replaces and revokes their own; an admin revokes anyone's; a
revoked key is refused with 401 in the API's error shape."""

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from leadflow.roles import SALES_REP
from tests.factories import UserFactory

LEADS = "/api/v1/leads/"
TOKEN_API = "/api/v1/account/token/"


def _with_key(key: str) -> Client:
    return Client(headers={"Authorization": f"Token {key}"})


def _assert_401(response) -> None:
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json() == {
        "error": {"code": "authentication_failed", "message": "Invalid token."}
    }


@pytest.mark.django_db
def test_a_revoked_token_is_refused_with_the_error_shape():
    rep = UserFactory(roles=[SALES_REP])
    key = Token.objects.create(user=rep).key
    assert _with_key(key).get(LEADS).status_code == 200

    assert _with_key(key).delete(TOKEN_API).status_code == 204

    _assert_401(_with_key(key).get(LEADS))
    assert not Token.objects.filter(user=rep).exists()


@pytest.mark.django_db
def test_regenerating_through_the_api_replaces_the_key():
    rep = UserFactory(roles=[SALES_REP])
    old = Token.objects.create(user=rep).key

    response = _with_key(old).post(TOKEN_API)

    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    new = response.json()["key"]
    assert new != old and len(new) == 40
    assert Token.objects.get(user=rep).key == new
    _assert_401(_with_key(old).get(LEADS))
    state = _with_key(new).get(TOKEN_API).json()
    assert state["exists"] is True
    assert state["last4"] == new[-4:]
    assert "key" not in state  # never shown again


@pytest.mark.django_db
def test_token_state_without_a_token(client):
    client.force_login(UserFactory())
    assert client.get(TOKEN_API).json() == {"exists": False, "created": None, "last4": None}
    assert client.delete(TOKEN_API).status_code == 204  # revoking nothing is fine


@pytest.mark.django_db
def test_anonymous_token_api_is_401():
    response = Client().get(TOKEN_API)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.django_db
def test_the_page_shows_a_new_key_once_then_only_its_ending(client):
    rep = UserFactory(roles=[SALES_REP])
    client.force_login(rep)
    assert "You have no API token." in client.get("/account/token/").content.decode()

    created = client.post("/account/token/", {"action": "regenerate"})

    key = Token.objects.get(user=rep).key
    assert created.status_code == 200
    assert key in created.content.decode()
    assert "no-store" in created["Cache-Control"]
    later = client.get("/account/token/").content.decode()
    assert key not in later
    assert f"…{key[-4:]}" in later


@pytest.mark.django_db
def test_the_page_revokes_only_the_callers_token(client):
    rep, other = UserFactory(), UserFactory()
    Token.objects.create(user=rep)
    Token.objects.create(user=other)
    client.force_login(rep)

    response = client.post("/account/token/", {"action": "revoke"})

    assert response.status_code == 302
    assert list(Token.objects.values_list("user", flat=True)) == [other.pk]


@pytest.mark.django_db
def test_the_page_refuses_unknown_actions(client):
    client.force_login(UserFactory())
    assert client.post("/account/token/", {"action": "steal"}).status_code == 400
    assert not Token.objects.exists()


@pytest.mark.django_db
def test_an_admin_revokes_anyones_token_in_the_admin(client, settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    rep = UserFactory(username="rep-with-key", roles=[SALES_REP])
    key = Token.objects.create(user=rep).key
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    listing = client.get("/admin/authtoken/tokenproxy/")
    assert listing.status_code == 200
    page = listing.content.decode()
    assert "rep-with-key" in page
    assert key not in page  # only its ending: the list is not a sheet of credentials
    assert f"…{key[-4:]}" in page

    confirm = client.get(f"/admin/authtoken/tokenproxy/{rep.pk}/delete/")
    assert confirm.status_code == 200
    done = client.post(f"/admin/authtoken/tokenproxy/{rep.pk}/delete/", {"post": "yes"})

    assert done.status_code == 302
    assert not Token.objects.filter(user=rep).exists()
    _assert_401(_with_key(key).get(LEADS))


@pytest.mark.django_db
def test_an_admin_creates_a_token_for_a_user(client, settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    rep = UserFactory(roles=[SALES_REP])
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    response = client.post("/admin/authtoken/tokenproxy/add/", {"user": rep.pk})

    assert response.status_code == 302
    assert _with_key(Token.objects.get(user=rep).key).get(LEADS).status_code == 200


@pytest.mark.django_db
def test_a_rep_cannot_open_the_token_admin(client):
    client.force_login(UserFactory(is_staff=True, roles=[SALES_REP]))
    assert client.get("/admin/authtoken/tokenproxy/").status_code == 403
