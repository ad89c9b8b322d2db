"""Secrets are write-only in the admin and everywhere else: view-only staff (a sales
manager on destinations, a marketer on sources' neighbours) see the masked form only, a
superuser sees the last four characters at most, an empty field on save keeps the secret,
a generated one is shown once. Before, a manager could read the SFA destination's signing
secret on its change page and forge won/lost feedback with it."""

from __future__ import annotations

import json

import pytest

from integrations.models import InboundEvent, Source
from integrations.outbound.models import Destination, DestinationKind
from integrations.services import source_create
from leadflow.roles import MARKETING, SALES_MANAGER, sync_roles
from privacy.services import person_data_export
from tests.factories import LeadFactory, UserFactory

SIGNING = "whsec-signing-0123456789abcdef-SIGN"
PREVIOUS = "whsec-previous-0123456789abcdef-PREV"
CLIENT_SECRET = "sf-client-secret-0123456789-CLSE"
REFRESH = "sf-refresh-token-0123456789-RFSH"
API_TOKEN = "pat-na1-0123456789abcdef-HBTK"
SOURCE_SECRET = "src-secret-0123456789abcdef-SRCE"
SOURCE_PREVIOUS = "src-previous-0123456789abcdef-SPRV"
DESTINATION_SECRETS = (SIGNING, PREVIOUS, CLIENT_SECRET, REFRESH, API_TOKEN)


@pytest.fixture
def destination(db):
    return Destination.objects.create(
        kind=DestinationKind.SALESFORCE,
        slug="sfdc",
        name="Salesforce",
        base_url="https://example.my.salesforce.com",
        token_url="https://example.my.salesforce.com/services/oauth2/token",
        client_id="client-id",
        signing_secret=SIGNING,
        previous_signing_secret=PREVIOUS,
        client_secret=CLIENT_SECRET,
        refresh_token=REFRESH,
        api_token=API_TOKEN,
    )


@pytest.fixture
def source(db):
    source = source_create(kind="marketo", slug="marketo-prod", secret=SOURCE_SECRET)
    source.previous_secret = SOURCE_PREVIOUS
    source.save()
    return source


def staff(role: str):
    sync_roles()
    return UserFactory(username=role.replace(" ", "-"), roles=[role], is_staff=True)


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


def page(client, user, url: str) -> str:
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("role", [SALES_MANAGER, MARKETING])
def test_view_only_staff_see_no_destination_secret(client, destination, role):
    html = page(client, staff(role), f"/admin/integrations/destination/{destination.pk}/change/")

    assert "Salesforce" in html  # the page is there
    for secret in DESTINATION_SECRETS:
        assert secret not in html
    assert "••••••SIGN" in html  # the masked form, to tell which one is set
    assert 'name="signing_secret"' not in html


@pytest.mark.django_db
def test_a_marketer_sees_no_source_secret(client, source):
    html = page(client, staff(MARKETING), f"/admin/integrations/source/{source.pk}/change/")

    assert SOURCE_SECRET not in html
    assert SOURCE_PREVIOUS not in html
    assert "••••••SRCE" in html


@pytest.mark.django_db
def test_a_superuser_sees_only_the_last_four(client, superuser, destination, source):
    destination_html = page(
        client, superuser, f"/admin/integrations/destination/{destination.pk}/change/"
    )
    source_html = page(client, superuser, f"/admin/integrations/source/{source.pk}/change/")

    for secret in DESTINATION_SECRETS:
        assert secret not in destination_html
        assert f"Stored: ••••••{secret[-4:]}. Leave empty to keep it." in destination_html
    assert SOURCE_SECRET not in source_html
    assert "Stored: ••••••SRCE. Leave empty to keep it." in source_html


def destination_form(destination: Destination, **changes) -> dict:
    data = {
        "name": destination.name,
        "slug": destination.slug,
        "kind": destination.kind,
        "enabled": "on",
        "events": ["mql_created"],
        "base_url": destination.base_url,
        "timeout_seconds": "10",
        "max_attempts": "16",
        "signing_secret": "",
        "previous_signing_secret": "",
        "token_url": destination.token_url,
        "client_id": destination.client_id,
        "client_secret": "",
        "refresh_token": "",
        "api_version": "60.0",
        "external_id_field": "LeadFlow_Id__c",
        "api_token": "",
        "field_mapping": "",
    }
    data.update(changes)
    return data


def save(client, destination: Destination, **changes):
    response = client.post(
        f"/admin/integrations/destination/{destination.pk}/change/",
        destination_form(destination, **changes),
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    return response


@pytest.mark.django_db
def test_saving_with_the_fields_empty_keeps_every_secret(client, superuser, destination):
    client.force_login(superuser)

    save(client, destination, name="Salesforce 本番")

    destination.refresh_from_db()
    assert destination.name == "Salesforce 本番"
    assert (
        destination.signing_secret,
        destination.previous_signing_secret,
        destination.client_secret,
        destination.refresh_token,
        destination.api_token,
    ) == DESTINATION_SECRETS


@pytest.mark.django_db
def test_a_typed_secret_replaces_one_and_a_clear_box_empties_one(client, superuser, destination):
    client.force_login(superuser)

    save(client, destination, client_secret="new-client-secret", refresh_token_clear="on")

    destination.refresh_from_db()
    assert destination.client_secret == "new-client-secret"
    assert destination.refresh_token == ""
    assert destination.signing_secret == SIGNING


@pytest.mark.django_db
def test_generating_a_signing_secret_shows_it_once_and_keeps_the_old_as_previous(
    client, superuser, destination
):
    client.force_login(superuser)

    save(client, destination, signing_secret_generate="on")

    destination.refresh_from_db()
    new = destination.signing_secret
    assert new != SIGNING and len(new) >= 32
    assert destination.previous_signing_secret == SIGNING
    url = f"/admin/integrations/destination/{destination.pk}/change/"
    once, again = page(client, superuser, url), page(client, superuser, url)
    assert once.count(new) == 1
    assert f"New signing secret: {new} — copy it now, it is not shown again." in once
    assert new not in again
    assert f"••••••{new[-4:]}" in again


@pytest.mark.django_db
def test_a_source_secret_generated_in_the_admin_is_kept_and_masked(client, superuser, source):
    client.force_login(superuser)
    data = {
        "kind": source.kind,
        "slug": source.slug,
        "name": "",
        "enabled": "on",
        "secret": "",
        "secret_generate": "on",
        "previous_secret": "",
        "mapping": json.dumps(source.mapping),
        "rate_limit_per_minute": "600",
        "id_system": "",
    }

    response = client.post(f"/admin/integrations/source/{source.pk}/change/", data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    source.refresh_from_db()
    assert source.secret not in (SOURCE_SECRET, "")
    assert source.previous_secret == SOURCE_SECRET


@pytest.mark.django_db
def test_a_new_source_without_a_secret_is_refused(client, superuser):
    client.force_login(superuser)
    data = {
        "kind": "generic",
        "slug": "no-secret",
        "name": "",
        "enabled": "on",
        "secret": "",
        "previous_secret": "",
        "mapping": "{}",
        "rate_limit_per_minute": "600",
        "id_system": "",
    }

    response = client.post("/admin/integrations/source/add/", data)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["secret"] == ["This field is required."]
    assert not Source.objects.filter(slug="no-secret").exists()


def _event_with_headers(source: Source) -> InboundEvent:
    return InboundEvent.objects.create(
        source=source,
        body=json.dumps({"lead": {"email": "token@example.jp"}}),
        headers={
            "Content-Type": "application/json",
            "X-LeadFlow-Token": SOURCE_SECRET,  # as older rows may have it
            "X-LeadFlow-Signature": "t=1,v1=" + "ab" * 32,
        },
        dedup_key="k-1",
    )


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["superuser", "marketer"])
def test_the_inbound_event_page_redacts_token_and_signature_headers(client, superuser, source, who):
    event = _event_with_headers(source)
    user = superuser if who == "superuser" else staff(MARKETING)

    html = page(client, user, f"/admin/integrations/inboundevent/{event.pk}/change/")

    assert SOURCE_SECRET not in html
    assert "ab" * 32 not in html
    assert "&quot;X-LeadFlow-Token&quot;: &quot;••••••SRCE&quot;" in html
    assert "application/json" in html


@pytest.mark.django_db
def test_a_persons_export_carries_no_token_header(source):
    _event_with_headers(source)
    LeadFactory(email="token@example.jp")

    document = person_data_export(actor="test", email="token@example.jp")

    text = json.dumps(document, ensure_ascii=False, default=str)
    assert SOURCE_SECRET not in text
    assert '"X-LeadFlow-Token": "••••••SRCE"' in text
