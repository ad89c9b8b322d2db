"""Every Mautic and HubSpot webhook sample and the Marketo webhook template from
tests/fixtures/vendor-samples/, posted signed through the real endpoint and processed."""

from __future__ import annotations

import json
import re

import pytest

from integrations.models import InboundStatus
from leadflow.models import EngagementEvent, EventKind, Lead, LeadExternalId
from tests.factories import LeadFactory
from tests.integrations.conftest import deliver, make_source, samples

pytestmark = pytest.mark.django_db


def _mautic_test_body(name: str) -> bytes:
    """What Mautic's "Send Test Payload" posts: {"mautic.<event>": <asset>, "timestamp"}."""
    folder = samples("mautic", "core_test_payloads")
    asset = json.loads((folder / f"{name}.json").read_bytes())
    envelope = {f"mautic.{name}": asset, "timestamp": "2024-10-24T12:00:00+00:00"}
    # Mautic's PHP json_encode: compact, "/" escaped as "\/".
    return json.dumps(envelope, separators=(",", ":")).replace("/", "\\/").encode()


def _third_party(name: str) -> bytes:
    folder = samples("mautic", "third_party_fixtures")
    matches = list(folder.rglob(name))
    assert matches, name
    return matches[0].read_bytes()


# --- Mautic core test payloads ---------------------------------------------------------


def test_mautic_lead_post_save_new_creates_the_lead_with_its_fields(client):
    source = make_source("mautic")

    inbound = deliver(client, source, _mautic_test_body("lead_post_save_new"))

    assert inbound.status == InboundStatus.PROCESSED, inbound.reason
    lead = Lead.objects.get(email="john@doe.name")
    assert (lead.last_name, lead.first_name, lead.source) == ("Doe", "John", "mautic-test")
    assert lead.attributes["ma_points"] == 0
    assert LeadExternalId.objects.get(lead=lead).external_id == "52"
    assert LeadExternalId.objects.get(lead=lead).system == "mautic"
    assert not EngagementEvent.objects.exists()


def test_mautic_lead_post_save_update_sets_the_company(client):
    source = make_source("mautic")

    deliver(client, source, _mautic_test_body("lead_post_save_update"))

    lead = Lead.objects.get(email="john@doe.name")
    assert lead.company.name == "Mautic"


def test_mautic_points_change_without_points_block_uses_contact_points(client):
    source = make_source("mautic")

    inbound = deliver(client, source, _mautic_test_body("lead_points_change"))

    assert inbound.status == InboundStatus.PROCESSED
    assert Lead.objects.get(email="john@doe.name").attributes["ma_points"] == 5


def test_mautic_channel_subscription_change_records_an_unsubscribe(client):
    source = make_source("mautic")

    deliver(client, source, _mautic_test_body("lead_channel_subscription_changed"))

    lead = Lead.objects.get(email="test@email.com")
    event = EngagementEvent.objects.get(lead=lead)
    assert event.kind == EventKind.UNSUBSCRIBE
    assert event.properties == {
        "channel": "email",
        "old_status": "contactable",
        "new_status": "manual",
    }


def test_mautic_delete_is_acknowledged_and_changes_nothing(client):
    source = make_source("mautic")

    inbound = deliver(client, source, _mautic_test_body("lead_post_delete"))

    assert inbound.status == InboundStatus.PROCESSED
    assert inbound.result["skipped"] == 1
    assert not Lead.objects.exists()


def test_mautic_form_submit_records_a_form_submit_with_its_time(client):
    source = make_source("mautic")

    deliver(client, source, _mautic_test_body("form_on_submit"))

    event = EngagementEvent.objects.get(lead__email="email@formsubmit.com")
    assert event.kind == EventKind.FORM_SUBMIT
    assert event.occurred_at.isoformat() == "2015-08-26T01:30:34+00:00"
    assert event.external_id == "form_submission:13"
    assert event.properties["form_alias"] == "leadpoints"


def test_mautic_email_open_records_an_email_open(client):
    source = make_source("mautic")

    deliver(client, source, _mautic_test_body("email_on_open"))

    event = EngagementEvent.objects.get(lead__email="test@test.com")
    assert event.kind == EventKind.EMAIL_OPEN
    assert event.properties["subject"] == "Email"
    assert event.occurred_at.isoformat() == "2015-08-26T01:35:53+00:00"


def test_mautic_page_hit_records_a_page_view(client):
    source = make_source("mautic")

    deliver(client, source, _mautic_test_body("page_on_hit"))

    event = EngagementEvent.objects.get(lead__email="email@formsubmit.com")
    assert event.kind == EventKind.PAGE_VIEW
    assert event.properties["url"] == "http://mautic-gh.com/pagehit"


def test_mautic_page_hit_on_a_pricing_url_is_a_pricing_page_view(client):
    source = make_source("mautic")
    body = _mautic_test_body("page_on_hit").replace(b"\\/pagehit", b"\\/pricing\\/enterprise")

    deliver(client, source, body)

    event = EngagementEvent.objects.get(lead__email="email@formsubmit.com")
    assert event.kind == EventKind.PRICING_PAGE_VIEW


# --- Mautic third-party bodies ---------------------------------------------------------


def test_mautic_body_with_both_contact_and_lead_keys(client):
    source = make_source("mautic")

    inbound = deliver(client, source, _third_party("jeckel-lab_contact-identified.json"))

    assert inbound.status == InboundStatus.PROCESSED
    assert Lead.objects.get(email="john@doe.name").first_name == "John"


def test_mautic_object_envelope_form_submit_with_legacy_lead_key(client):
    source = make_source("mautic")

    deliver(client, source, _third_party("form_on_submit_test_object_envelope.json"))

    event = EngagementEvent.objects.get(lead__email="email@formsubmit.com")
    assert (event.kind, event.external_id) == (EventKind.FORM_SUBMIT, "form_submission:89")


def test_mautic_two_form_submits_in_one_body_make_two_leads(client):
    source = make_source("mautic")

    inbound = deliver(client, source, _third_party("form_on_submit_two_events_list.json"))

    assert inbound.status == InboundStatus.PROCESSED, inbound.reason
    # "jkhj@hgjh.com." is the absolute form of the domain: the trailing dot is dropped.
    assert set(Lead.objects.values_list("email", flat=True)) == {
        "example@afads.com",
        "jkhj@hgjh.com",
    }
    assert EngagementEvent.objects.filter(kind=EventKind.FORM_SUBMIT).count() == 2


def test_mautic_email_open_object_envelope_uses_the_stat_address(client):
    source = make_source("mautic")

    deliver(client, source, _third_party("email_on_open_object_envelope.json"))

    assert EngagementEvent.objects.get().lead.email == "chad.windnagle@websparkinc.com"


def test_mautic_page_hit_object_envelope_for_a_known_contact_id(client):
    lead = LeadFactory(email="known@example.jp")
    LeadExternalId.objects.create(lead=lead, system="mautic", external_id="26")
    source = make_source("mautic")

    inbound = deliver(client, source, _third_party("page_on_hit_object_envelope.json"))

    assert inbound.status == InboundStatus.PROCESSED
    assert EngagementEvent.objects.get().lead == lead


def test_mautic_two_page_hits_one_known_one_unknown_contact(client):
    lead = LeadFactory(email="known@example.jp")
    LeadExternalId.objects.create(lead=lead, system="mautic", external_id="26")
    source = make_source("mautic")

    inbound = deliver(client, source, _third_party("page_on_hit_two_events_list.json"))

    # Contact 70 has no e-mail in the body and is unknown: stored as failed, with the
    # reason, while the known contact's page view is recorded.
    assert inbound.status == InboundStatus.FAILED
    assert inbound.result["applied"] == 1
    assert inbound.result["failed"] == 1
    assert "mautic.page_on_hit[1]" in inbound.reason
    assert "no e-mail address" in inbound.reason
    assert list(EngagementEvent.objects.values_list("lead_id", flat=True)) == [lead.pk]


@pytest.mark.parametrize(
    "name",
    [
        "lead_points_change_with_points.json",
        "lead_post_save_new_ipaddresses_dict.json",
        "lead_post_save_update_object_envelope.json",
    ],
)
def test_mautic_trimmed_bodies_without_email_fail_with_the_reason(client, name):
    source = make_source("mautic")

    inbound = deliver(client, source, _third_party(name))

    assert inbound.status == InboundStatus.FAILED
    assert "no e-mail address and no id of a lead we know" in inbound.reason
    assert not Lead.objects.exists()


def test_mautic_points_change_with_points_block_updates_a_known_contact(client):
    lead = LeadFactory(email="known@example.jp")
    LeadExternalId.objects.create(lead=lead, system="mautic", external_id="26")
    source = make_source("mautic")

    inbound = deliver(client, source, _third_party("lead_points_change_with_points.json"))

    assert inbound.status == InboundStatus.PROCESSED
    lead.refresh_from_db()
    assert lead.attributes["ma_points"] == 10


def test_mautic_ipaddresses_dict_body_updates_a_known_contact(client):
    lead = LeadFactory(email="known@example.jp", first_name="")
    LeadExternalId.objects.create(lead=lead, system="mautic", external_id="25")
    source = make_source("mautic")

    deliver(client, source, _third_party("lead_post_save_new_ipaddresses_dict.json"))

    lead.refresh_from_db()
    assert lead.first_name == "test"


# --- HubSpot ---------------------------------------------------------------------------


def _hubspot(name: str) -> bytes:
    return (samples("hubspot", "webhooks") / name).read_bytes()


@pytest.mark.parametrize(
    ("name", "contact"),
    [("php_sdk_contact_creation_body.json", 123), ("leadflow_contact_creation_body.json", 880103)],
)
def test_hubspot_creation_of_an_unknown_contact_is_stored_failed(client, name, contact):
    source = make_source("hubspot")

    inbound = deliver(client, source, _hubspot(name))

    assert inbound.status == InboundStatus.FAILED
    assert f"HubSpot sends no e-mail with contact.creation; contact {contact}" in inbound.reason
    assert not Lead.objects.exists()


def test_hubspot_creation_of_a_known_contact_is_processed(client):
    lead = LeadFactory(email="known@example.jp")
    LeadExternalId.objects.create(lead=lead, system="hubspot", external_id="123")
    source = make_source("hubspot")

    inbound = deliver(client, source, _hubspot("php_sdk_contact_creation_body.json"))

    assert inbound.status == InboundStatus.PROCESSED
    assert inbound.result["leads"] == [lead.pk]


def test_hubspot_docs_batch_with_legacy_event_type_for_known_contacts(client):
    first = LeadFactory(email="a@example.jp")
    second = LeadFactory(email="b@example.jp")
    LeadExternalId.objects.create(lead=first, system="hubspot", external_id="880101")
    LeadExternalId.objects.create(lead=second, system="hubspot", external_id="880102")
    source = make_source("hubspot")

    inbound = deliver(client, source, _hubspot("leadflow_batch_propertyChange_and_creation.json"))

    assert inbound.status == InboundStatus.PROCESSED, inbound.reason
    assert inbound.result["applied"] == 2
    first.refresh_from_db()
    assert first.attributes["hubspot_lifecyclestage"] == "marketingqualifiedlead"


def test_hubspot_docs_batch_for_unknown_contacts_fails_both_with_reasons(client):
    source = make_source("hubspot")

    inbound = deliver(client, source, _hubspot("leadflow_batch_propertyChange_and_creation.json"))

    assert inbound.status == InboundStatus.FAILED
    assert inbound.result["failed"] == 2
    assert "HubSpot contact 880101 is not linked to a lead yet." in inbound.reason
    assert not Lead.objects.exists()


def test_hubspot_email_property_change_creates_the_lead_and_links_the_id(client):
    source = make_source("hubspot")
    body = [
        {
            "eventId": 7, "subscriptionId": 1, "portalId": 62515, "appId": 54321,
            "occurredAt": 1729771200000, "subscriptionType": "contact.propertyChange",
            "attemptNumber": 0, "objectId": 555, "propertyName": "email",
            "propertyValue": "Hanako@Example.CO.JP", "changeSource": "CRM",
        },
        {
            "eventId": 8, "subscriptionId": 1, "portalId": 62515, "appId": 54321,
            "occurredAt": 1729771200001, "subscriptionType": "contact.propertyChange",
            "attemptNumber": 0, "objectId": 555, "propertyName": "jobtitle",
            "propertyValue": "営業部長", "changeSource": "CRM",
        },
    ]  # fmt: skip

    inbound = deliver(client, source, body)

    assert inbound.status == InboundStatus.PROCESSED
    lead = Lead.objects.get(email="hanako@example.co.jp")
    assert (lead.job_title, lead.role) == ("営業部長", "director")
    assert lead.external_ids.get().external_id == "555"


# --- Marketo ---------------------------------------------------------------------------


def test_marketo_rendered_sample_without_email_is_stored_failed(client):
    folder = samples("marketo", "webhook")
    source = make_source("marketo")

    inbound = deliver(
        client, source, (folder / "leadflow_marketo_webhook_rendered.json").read_bytes()
    )

    assert inbound.status == InboundStatus.FAILED
    assert "{{lead.Email Address}}" in inbound.reason
    assert not Lead.objects.exists()


def _render_marketo_template(values: dict[str, object]) -> bytes:
    """Render the published template as Marketo does: tokens replaced by JSON values,
    tokens without a value rendered as empty strings."""
    folder = samples("marketo", "webhook")
    template = (folder / "leadflow_marketo_webhook_payload_template.txt").read_text()

    def token(match: re.Match) -> str:
        return json.dumps(values.get(match.group(1), ""), ensure_ascii=False)

    return re.sub(r"\{\{([^}]+)\}\}", token, template).encode()


def test_marketo_template_rendered_with_a_person_becomes_a_lead(client):
    source = make_source("marketo")
    body = _render_marketo_template(
        {
            "lead.Email Address": "Taro.Yamada@Example.co.jp",
            "lead.First Name": "太郎",
            "lead.Last Name": "山田",
            "lead.Job Title": "情報システム部 課長",
            "lead.Department": "情報システム部",
            "lead.Phone Number": "03-1234-5678",
            "lead.Lead Score": 42,
            "company.Company Name": "株式会社サンプル",
            "company.Num Employees": 1200,
            "company.Industry": "製造業",
            "company.Website": "https://www.sample.co.jp/",
            "lead.Address": "東京都千代田区丸の内1-1-1",
            "campaign.id": 987,
            "system.dateTime": "2026-01-15 10:00:00",
        }
    )

    inbound = deliver(client, source, body)

    assert inbound.status == InboundStatus.PROCESSED, inbound.reason
    lead = Lead.objects.get(email="taro.yamada@example.co.jp")
    assert (lead.last_name, lead.first_name) == ("山田", "太郎")
    assert (lead.job_title, lead.role, lead.department) == (
        "情報システム部 課長",
        "manager",
        "情報システム部",
    )
    assert lead.attributes["ma_score"] == 42
    company = lead.company
    assert (company.name, company.employee_count, company.industry) == (
        "株式会社サンプル",
        1200,
        "manufacturing",
    )
    assert (company.domain, company.prefecture, company.region) == (
        "sample.co.jp",
        "東京都",
        "kanto",
    )
    assert not EngagementEvent.objects.exists()


def test_marketo_campaign_mapped_to_an_event_kind_records_it(client):
    source = make_source("marketo")
    source.mapping["campaign_kinds"] = {"987": "seminar_attendance"}
    source.save()
    body = _render_marketo_template(
        {
            "lead.Email Address": "a@example.jp",
            "campaign.id": 987,
            "system.dateTime": "2026-01-15 10:00:00",
        }
    )

    deliver(client, source, body)

    event = EngagementEvent.objects.get()
    assert event.kind == EventKind.SEMINAR_ATTENDANCE
    # Marketo sends local times without a zone: read in TIME_ZONE (Asia/Tokyo).
    assert event.occurred_at.isoformat() == "2026-01-15T01:00:00+00:00"
