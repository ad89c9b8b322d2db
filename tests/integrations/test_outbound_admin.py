"""Admin: destinations with their mapping, the dead letter with its vendor message, replay."""

from __future__ import annotations

import json

import pytest

from integrations.outbound.models import Destination, MessageStatus, OutboxMessage
from leadflow.lifecycle import lead_transition
from leadflow.models import Stage
from tests.factories import LeadFactory, UserFactory
from tests.integrations.conftest import make_webhook


@pytest.fixture
def admin_client(client, db):
    admin = UserFactory(username="ops", is_staff=True, is_superuser=True)
    client.force_login(admin)
    return client


def dead_message() -> OutboxMessage:
    make_webhook("http://127.0.0.1:9/hook")
    lead = LeadFactory(email="dead@example.jp")
    lead_transition(lead=lead, to_stage=Stage.MQL, actor="scoring")
    message = OutboxMessage.objects.get()
    OutboxMessage.objects.filter(pk=message.pk).update(
        status=MessageStatus.DEAD,
        attempts=1,
        response_status=400,
        last_error="HTTP 400: REQUIRED_FIELD_MISSING: Required fields are missing: [Company]",
    )
    return message


@pytest.mark.django_db
def test_the_dead_letter_list_shows_the_vendor_message(admin_client, no_kick):
    dead_message()

    response = admin_client.get("/admin/integrations/outboxmessage/?status__exact=dead")

    assert response.status_code == 200
    assert "REQUIRED_FIELD_MISSING: Required fields are missing: [Company]" in response.text


@pytest.mark.django_db
def test_the_message_page_shows_the_payload(admin_client, no_kick):
    message = dead_message()

    response = admin_client.get(f"/admin/integrations/outboxmessage/{message.pk}/change/")

    assert response.status_code == 200
    assert "dead@example.jp" in response.text
    assert "mql_created:" in response.text


@pytest.mark.django_db
def test_the_replay_action_queues_dead_messages_again(admin_client, no_kick):
    message = dead_message()

    response = admin_client.post(
        "/admin/integrations/outboxmessage/",
        {"action": "replay_dead", "_selected_action": [message.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert "1 message queued again." in response.text
    message.refresh_from_db()
    assert (message.status, message.attempts, message.last_error) == (
        MessageStatus.PENDING,
        0,
        "",
    )
    assert message.info["replays"][0]["by"] == "ops"


@pytest.mark.django_db
def test_a_marketer_can_read_the_outbox_but_not_replay(client, no_kick):
    from django.contrib.auth.models import Group

    from leadflow.roles import MARKETING, sync_roles

    sync_roles()
    marketer = UserFactory(username="mk", is_staff=True)
    marketer.groups.add(Group.objects.get(name=MARKETING))
    client.force_login(marketer)
    message = dead_message()

    listing = client.get("/admin/integrations/outboxmessage/")
    client.post(
        "/admin/integrations/outboxmessage/",
        {"action": "replay_dead", "_selected_action": [message.pk]},
    )

    assert listing.status_code == 200
    assert "replay_dead" not in listing.text
    message.refresh_from_db()
    assert message.status == MessageStatus.DEAD


@pytest.mark.django_db
def test_a_destination_is_created_in_the_admin_with_the_default_mapping(admin_client):
    response = admin_client.post(
        "/admin/integrations/destination/add/",
        {
            "name": "本番 HubSpot",
            "slug": "hubspot-prod",
            "kind": "hubspot",
            "enabled": "on",
            "events": ["mql_created", "accepted"],
            "base_url": "",
            "timeout_seconds": "10",
            "max_attempts": "16",
            "api_token": "pat-na1-xyz",
            "api_version": "60.0",
            "external_id_field": "LeadFlow_Id__c",
            "field_mapping": "",
        },
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    destination = Destination.objects.get(slug="hubspot-prod")
    assert destination.base_url == "https://api.hubapi.com"
    assert destination.events == ["mql_created", "accepted"]
    assert destination.field_mapping["contact"]["email"] == "lead.email"

    page = admin_client.get(f"/admin/integrations/destination/{destination.pk}/change/")
    assert page.status_code == 200
    assert "pat-na1-xyz" not in page.text.split('name="api_token"')[0]  # not echoed elsewhere


NUL_PROBLEM = "The mapping contains a NUL character (\\u0000), which the database cannot store."


@pytest.mark.parametrize(
    ("mapping", "error"),
    [
        (
            {"lead": {"email": ["lead.email"]}},
            'lead.email: use a path string, {"path": ...} or {"value": ...}.',
        ),
        ({"lead": {"email\u0000": "lead.email"}}, NUL_PROBLEM),
        ({"lead": {"email": {"value": "a\u0000"}}}, NUL_PROBLEM),
    ],
)
@pytest.mark.django_db
def test_a_mapping_that_is_not_valid_is_refused_in_the_form(admin_client, mapping, error):
    destination = make_webhook("http://127.0.0.1:9/hook")
    data = {
        "name": destination.name,
        "slug": destination.slug,
        "kind": "webhook",
        "enabled": "on",
        "events": ["mql_created"],
        "base_url": destination.base_url,
        "timeout_seconds": "10",
        "max_attempts": "16",
        "signing_secret": destination.signing_secret,
        "api_version": "60.0",
        "external_id_field": "LeadFlow_Id__c",
        "field_mapping": json.dumps(mapping),
    }

    response = admin_client.post(f"/admin/integrations/destination/{destination.pk}/change/", data)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["field_mapping"] == [error]


@pytest.mark.django_db
def test_feedback_list_renders(admin_client, no_kick):
    response = admin_client.get("/admin/integrations/feedbackevent/")

    assert response.status_code == 200


@pytest.mark.django_db
def test_the_message_page_title_reads_in_the_users_language(admin_client, no_kick):
    # The title and breadcrumb are the message's str(): no raw "mql_created → 1 (dead)".
    message = dead_message()

    response = admin_client.get(
        f"/admin/integrations/outboxmessage/{message.pk}/change/", HTTP_ACCEPT_LANGUAGE="ja"
    )

    assert f"<h2>#{message.pk} MQL認定 (配信不能（要対応）)</h2>" in response.text
    assert "(dead)" not in response.text
    assert f"{message.lead_id}: 既知リード → MQL</a>" in response.text  # the stage change
    assert "known → mql" not in response.text


@pytest.mark.django_db
def test_a_dead_message_page_shows_no_next_attempt(admin_client, no_kick):
    message = dead_message()

    page = admin_client.get(f"/admin/integrations/outboxmessage/{message.pk}/change/")

    assert page.status_code == 200
    assert "Next attempt:" not in page.text
    assert "Lease expires:" not in page.text
    assert "Last error:" in page.text


@pytest.mark.django_db
def test_a_pending_message_page_shows_when_it_is_tried_next(admin_client, no_kick):
    message = dead_message()
    OutboxMessage.objects.filter(pk=message.pk).update(status=MessageStatus.PENDING)

    page = admin_client.get(f"/admin/integrations/outboxmessage/{message.pk}/change/")

    assert "Next attempt:" in page.text
    assert "Delivered:" not in page.text


@pytest.mark.django_db
def test_the_outbox_list_shows_the_status_early_and_unbroken_and_no_next_attempt_for_dead(
    admin_client, no_kick
):
    message = dead_message()

    listing = admin_client.get("/admin/integrations/outboxmessage/", HTTP_ACCEPT_LANGUAGE="ja")

    assert listing.context["cl"].list_display[:3] == ["action_checkbox", "id", "status_cell"]
    assert (
        '<span class="outbox-status outbox-status-dead nowrap">配信不能（要対応）</span>'
    ) in listing.text
    row = listing.text[listing.text.index(f'value="{message.pk}"') :]
    row = row[: row.index("</tr>")]
    assert '<td class="field-next_or_delivered">—</td>' in row
    # The lead by its name, not "name <address>".
    assert "dead@example.jp&gt;" not in row
