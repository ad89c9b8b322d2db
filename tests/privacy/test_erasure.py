"""Erasure of one person (APPI / GDPR): every place that held their data, what stays for
the dashboards, the record, and the admin, command and API that run it."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from handoff.models import Activity, Handoff
from integrations.models import InboundEvent, InboundStatus
from integrations.outbound.models import (
    FeedbackEvent,
    MessageStatus,
    OutboxMessage,
)
from leadflow.erased import ERASED
from leadflow.merge import lead_merge
from leadflow.models import (
    DuplicateCandidate,
    EngagementEvent,
    Lead,
    LeadExternalId,
    LeadMerge,
    Stage,
    StageTransition,
)
from privacy.integrations import ERASED_BODY, ERASED_PAYLOAD
from privacy.models import ErasureRequest
from privacy.person import person_find
from privacy.services import erasure_execute, erasure_requests_for
from scoring.models import LeadScore
from tests.factories import EngagementEventFactory, LeadFactory, UserFactory
from tests.integrations.conftest import (
    deliver,
    make_source,
    post,
)
from tests.privacy.conftest import EMAIL, MAUTIC_BODY


def test_erasure_removes_the_person_everywhere_and_keeps_the_counts(person):
    lead = person["lead"]
    transitions_before = list(
        StageTransition.objects.filter(lead=lead).values_list("from_stage", "to_stage")
    )
    events_before = list(EngagementEvent.objects.filter(lead=lead).values_list("kind", flat=True))
    assert lead.last_name == "山田" and LeadExternalId.objects.filter(lead=lead).exists()

    record = erasure_execute(email="Yamada@Example.co.jp", requested_by="ticket 4711", actor="t")

    lead.refresh_from_db()
    # The lead row stays anonymous: stage, company, owner, source, timestamps, score.
    assert lead.email == f"erased-{lead.pk}@erased.invalid"
    assert (lead.last_name, lead.first_name, lead.phone, lead.attributes) == ("", "", "", {})
    assert (lead.name_key, lead.phone_key) == ("", "")
    assert lead.stage == Stage.RECYCLED
    assert lead.company.name == "株式会社サンプル"
    assert LeadScore.objects.filter(lead=lead, fit=40, engagement=60).exists()
    assert not LeadExternalId.objects.filter(lead=lead).exists()
    assert (
        list(StageTransition.objects.filter(lead=lead).values_list("from_stage", "to_stage"))
        == transitions_before
    )
    assert list(EngagementEvent.objects.filter(lead=lead).values_list("kind", flat=True)) == (
        events_before
    )
    # Event properties: the URL without its query string; nothing typed by the person.
    form_event = EngagementEvent.objects.get(lead=lead, kind="form_submit")
    assert form_event.properties == {
        "form_id": 4,
        "form_name": "Whitepaper",
        "form_alias": "whitepaper",
        "referer": "https://example.jp/dl",
    }
    # Free text about the person: activity note, rejection comment, the transition's copy.
    assert Activity.objects.get(handoff__lead=lead).note == ERASED
    handoff = Handoff.objects.get(lead=lead)
    assert handoff.rejection_comment == ERASED
    assert handoff.status == "rejected" and handoff.rejection_reason.code == "timing"
    rejection = StageTransition.objects.get(lead=lead, to_stage=Stage.RECYCLED)
    assert rejection.reason == ERASED
    assert rejection.context["rejection_comment"] == ERASED
    assert rejection.context["rejection_reason"] == "timing"
    # Raw payloads: hers replaced, the stranger's untouched.
    mine = InboundEvent.objects.get(pk=person["mine"].pk)
    assert (mine.body, mine.headers) == (ERASED_BODY, {})
    assert mine.redacted_at is not None
    assert mine.status == InboundStatus.PROCESSED
    assert mine.result["applied"] == 1 and "errors" not in mine.result
    other = InboundEvent.objects.get(pk=person["other"].pk)
    assert "sato@example.jp" in other.body and other.redacted_at is None
    # Outbox: every payload gone; the pending one cancelled rather than sent as a tombstone.
    messages = {m.event: m for m in OutboxMessage.objects.filter(lead=lead)}
    assert {event: m.payload for event, m in messages.items()} == {
        "mql_created": ERASED_PAYLOAD,
        "rejected": ERASED_PAYLOAD,
    }
    assert messages["mql_created"].status == MessageStatus.DELIVERED
    assert messages["mql_created"].response_body == ""
    assert messages["rejected"].status == MessageStatus.DEAD
    assert messages["rejected"].last_error == "Cancelled: the person's data was erased."
    feedback = FeedbackEvent.objects.get(lead=lead)
    assert (feedback.payload, feedback.reason, feedback.outcome) == (ERASED_PAYLOAD, "", "lost")

    # The record: counts per place, who and when, and no personal data at all.
    assert record.subject_lead_id == lead.pk
    assert record.requested_by == "ticket 4711"
    assert record.executed_by_system == "t"
    assert record.counts == {
        "handoff.Activity.note": 1,
        "handoff.Handoff.rejection_comment": 1,
        "integrations.FeedbackEvent.payload": 1,
        "integrations.InboundEvent.body": 1,
        "integrations.InboundEvent.unprocessed": 0,
        "integrations.OutboxMessage.cancelled": 1,
        "integrations.OutboxMessage.payload": 2,
        "leadflow.DuplicateCandidate": 0,
        "leadflow.EngagementEvent.properties": 1,
        "leadflow.Lead": 1,
        "leadflow.LeadExternalId": 1,
        "leadflow.LeadMerge.snapshot": 0,
        "leadflow.StageTransition.reason": 1,
        "scoring.FitSnapshot": 1,  # taken at its MQL: its name, e-mail and phone then
    }
    stored = json.dumps(
        list(ErasureRequest.objects.values()), default=str, ensure_ascii=False
    ).lower()
    for personal in ("yamada", "山田", "03-1234", "example.co.jp"):
        assert personal not in stored
    assert list(erasure_requests_for(email="YAMADA@example.co.jp")) == [record]
    assert not erasure_requests_for(email="sato@example.jp").exists()


def test_no_trace_of_the_person_is_left_in_any_row(person):
    lead = person["lead"]
    erasure_execute(lead_id=lead.pk, requested_by="ticket", actor="t")

    from django.apps import apps

    found = []
    for model in apps.get_models():
        if model._meta.app_label not in {"leadflow", "handoff", "integrations", "scoring"}:
            continue
        for row in model.objects.all().values():
            text = json.dumps(row, default=str, ensure_ascii=False).casefold()
            for needle in ("yamada@", "山田", "太郎", "1234-5678", "辞退", "異動"):
                if needle in text:
                    found.append(f"{model._meta.label}: {needle}")
    assert found == []


def test_erasing_twice_is_harmless(person):
    first = erasure_execute(email=EMAIL, requested_by="ticket", actor="t")
    # The address is gone from the lead now; by lead id the second run finds it again.
    second = erasure_execute(lead_id=first.subject_lead_id, requested_by="ticket", actor="t")

    assert second.counts["leadflow.Lead"] == 1  # the tombstone is written again
    assert {k: v for k, v in second.counts.items() if k != "leadflow.Lead"} == {
        k: 0 for k in second.counts if k != "leadflow.Lead"
    }


def test_an_address_no_lead_has_still_clears_raw_payloads(client, db):
    source = make_source("generic")
    body = {
        "id": "evt-9",
        "type": "page_view",
        "occurred_at": "2026-01-15T10:00:00+09:00",
        "lead": {"email": "ghost@example.jp"},
    }
    response = post(client, source, body)
    assert response.status_code == 202
    assert not Lead.objects.filter(email="ghost@example.jp").exists()

    record = erasure_execute(email="ghost@example.jp", requested_by="ticket", actor="t")

    event = InboundEvent.objects.get()
    assert event.body == ERASED_BODY
    # Not processed yet: it never will be, and says why.
    assert event.status == InboundStatus.FAILED
    assert event.reason == "Payload erased (erasure request) before it was processed."
    assert record.subject_lead_id is None
    assert record.counts["integrations.InboundEvent.unprocessed"] == 1


def test_an_external_id_counts_only_as_a_record_id(client, db):
    source = make_source("mautic")
    deliver(client, source, MAUTIC_BODY)
    # Another person's hit whose page has "7701" in a score and a URL: not a mention.
    decoy = {
        "mautic.page_on_hit": [
            {
                "hit": {
                    "dateHit": "2026-01-15T12:00:00+09:00",
                    "url": "https://example.jp/p/7701",
                    "lead": {
                        "id": 9900,
                        "points": 7701,
                        "fields": {"core": {"email": {"value": "kato@example.jp"}}},
                    },
                },
                "timestamp": "2026-01-15T12:00:01+09:00",
            }
        ]
    }
    kept = deliver(client, source, decoy)
    # And a delivery that names Yamada only by her Mautic id.
    by_id = {
        "mautic.lead_points_change": [
            {
                "contact": {"id": 7701, "points": 45, "fields": {"core": {}}},
                "points": {"old_points": 20, "new_points": 45},
                "timestamp": "2026-01-16T09:00:00+09:00",
            }
        ]
    }
    named_by_id = deliver(client, source, by_id)

    erasure_execute(email=EMAIL, requested_by="ticket", actor="t")

    assert InboundEvent.objects.get(pk=kept.pk).redacted_at is None
    assert InboundEvent.objects.get(pk=named_by_id.pk).body == ERASED_BODY


def test_merge_snapshots_and_duplicate_pairs_go(db):
    keep = LeadFactory(email=EMAIL, last_name="山田", phone="03-1234-5678")
    old = LeadFactory(email="t.yamada@old-mail.jp", last_name="山田", phone="03-1234-5678")
    lead_merge(keep=keep, merge=old, actor="tests")
    old.snapshot_created_at = LeadMerge.objects.get().snapshot["created_at"]
    third = LeadFactory(email="someone@example.jp")
    DuplicateCandidate.objects.create(
        lead_a=min(keep, third, key=lambda x: x.pk),
        lead_b=max(keep, third, key=lambda x: x.pk),
        evidence=[{"kind": "phone", "value": "0312345678"}],
    )
    # The merged-away address finds the person too.
    assert person_find(email="T.Yamada@old-mail.jp").lead_ids == (keep.pk,)

    record = erasure_execute(email="t.yamada@old-mail.jp", requested_by="ticket", actor="t")

    merge = LeadMerge.objects.get()
    assert merge.merged_email == ""
    assert merge.snapshot == {
        "id": old.pk,
        "created_at": old.snapshot_created_at,
        "erased": True,
    }
    assert not DuplicateCandidate.objects.exists()
    assert record.counts["leadflow.LeadMerge.snapshot"] == 1
    assert record.counts["leadflow.DuplicateCandidate"] == 1
    keep.refresh_from_db()
    assert keep.email == f"erased-{keep.pk}@erased.invalid"


def test_event_urls_lose_query_strings_and_person_paths(db):
    lead = LeadFactory(email=EMAIL)
    EngagementEventFactory(
        lead=lead,
        properties={
            "url": "https://user:pw@example.jp:8443/pricing?utm=x&email=yamada%40example.co.jp",
            "referer": "https://example.jp/unsubscribe/yamada@example.co.jp",
            "title": "山田様専用ページ",
            "campaign": "Autumn",
            "values": {"phone": "03-1234-5678"},
        },
    )

    erasure_execute(lead_id=lead.pk, requested_by="ticket", actor="t")

    assert EngagementEvent.objects.get().properties == {
        "url": "https://example.jp:8443/pricing",
        "referer": ERASED,
        "campaign": "Autumn",
    }


def test_erasure_needs_a_requester_and_a_subject(db):
    from leadflow.errors import DomainError, NotFound

    with pytest.raises(DomainError) as missing:
        erasure_execute(email=EMAIL, requested_by="  ", actor="t")
    assert missing.value.code == "requested_by_missing"
    with pytest.raises(DomainError):
        erasure_execute(email="not-an-address", requested_by="x", actor="t")
    with pytest.raises(NotFound):
        erasure_execute(lead_id=999999, requested_by="x", actor="t")
    assert not ErasureRequest.objects.exists()


# --- command, API, admin -------------------------------------------------------------------


def test_the_command_erases_and_prints_counts(person, capsys):
    call_command(
        "erase_person", EMAIL, "--requested-by", "ticket 9", "--by", person["rep"].username
    )

    output = json.loads(capsys.readouterr().out)
    record = ErasureRequest.objects.get()
    assert output == {
        "erasure_request": record.pk,
        "lead_id": person["lead"].pk,
        "counts": record.counts,
    }
    assert record.executed_by == person["rep"]
    with pytest.raises(CommandError, match="one of them"):
        call_command("erase_person", "--requested-by", "x")
    with pytest.raises(CommandError, match="not an e-mail"):
        call_command("erase_person", "nobody", "--requested-by", "x")


def _admin_api() -> APIClient:
    client = APIClient()
    client.force_authenticate(UserFactory(is_superuser=True, is_staff=True))
    return client


def test_the_api_erases_for_admins(person):
    response = _admin_api().post(
        "/api/v1/privacy/erasures/",
        {"email": EMAIL, "requested_by": "ticket 5", "note": "by mail"},
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert body["subject_lead_id"] == person["lead"].pk
    assert body["counts"]["leadflow.Lead"] == 1
    assert body["requested_by"] == "ticket 5"
    listed = _admin_api().get("/api/v1/privacy/erasures/").json()
    assert [row["id"] for row in listed["results"]] == [body["id"]]


@pytest.mark.parametrize(
    "payload, status, field",
    [
        # Neither or both: each field valid, the pair refused by the rule (422).
        ({"requested_by": "x"}, 422, "non_field_errors"),
        ({"email": EMAIL, "lead_id": 1, "requested_by": "x"}, 422, "non_field_errors"),
        ({"email": EMAIL}, 400, "requested_by"),
        ({"email": "nope", "requested_by": "x"}, 400, "email"),
    ],
)
def test_the_api_refuses_bad_requests(db, payload, status, field):
    response = _admin_api().post("/api/v1/privacy/erasures/", payload, format="json")
    assert response.status_code == status
    assert field in response.json()["error"]["fields"]
    assert not ErasureRequest.objects.exists()


def test_the_api_answers_404_for_an_unknown_lead(db):
    response = _admin_api().post(
        "/api/v1/privacy/erasures/", {"lead_id": 424242, "requested_by": "x"}, format="json"
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.fixture
def admin_client_pages(client, settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    client.force_login(UserFactory(is_superuser=True, is_staff=True))
    return client


def test_the_admin_erase_form_asks_to_confirm_then_records(person, admin_client_pages):
    client = admin_client_pages
    url = "/admin/privacy/erasurerequest/erase/"
    assert client.get(url).status_code == 200
    data = {"email": EMAIL, "requested_by": "ticket 6", "note": ""}

    unconfirmed = client.post(url, data)
    assert unconfirmed.status_code == 200
    assert not ErasureRequest.objects.exists()

    done = client.post(url, {**data, "confirm": "on"})
    record = ErasureRequest.objects.get()
    assert done.status_code == 302
    assert done["Location"] == f"/admin/privacy/erasurerequest/{record.pk}/change/"
    assert client.get(done["Location"]).status_code == 200
    assert client.get("/admin/privacy/erasurerequest/").status_code == 200


def test_the_lead_list_actions_lead_to_the_form_and_download_the_export(person, admin_client_pages):
    client = admin_client_pages
    lead = person["lead"]

    erase = client.post(
        "/admin/leadflow/lead/", {"action": "erase_personal_data", "_selected_action": [lead.pk]}
    )
    assert erase.status_code == 302
    assert erase["Location"] == f"/admin/privacy/erasurerequest/erase/?lead_id={lead.pk}"
    assert f'value="{lead.pk}"' in client.get(erase["Location"]).content.decode()

    export = client.post(
        "/admin/leadflow/lead/", {"action": "export_personal_data", "_selected_action": [lead.pk]}
    )
    assert export.status_code == 200
    assert export["Content-Disposition"] == f'attachment; filename="person-{lead.pk}.json"'
    assert json.loads(export.content)["lead"]["email"] == EMAIL


def test_privacy_admin_is_closed_to_marketing(person, client, settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    client.force_login(UserFactory(is_staff=True, roles=["Marketing"]))
    assert client.get("/admin/privacy/erasurerequest/erase/").status_code == 403
    assert client.get("/admin/privacy/erasurerequest/export/").status_code == 403
    actions = client.get("/admin/leadflow/lead/").content.decode()
    assert "erase_personal_data" not in actions and "export_personal_data" not in actions
