"""Export of everything held about one person: every section, as JSON, by command, API
and admin."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from privacy.services import person_data_export
from tests.factories import UserFactory
from tests.privacy.conftest import EMAIL


def test_the_export_holds_every_section_about_the_person(person):
    lead = person["lead"]

    document = person_data_export(email="YAMADA@example.co.jp", actor="tests")

    assert document["format"] == "leadflow-person-export/1"
    assert document["subject"] == {"lead_ids": [lead.pk], "emails": [EMAIL]}
    assert document["lead"]["email"] == EMAIL
    assert (document["lead"]["last_name"], document["lead"]["phone"]) == ("山田", "03-1234-5678")
    assert document["company"]["name"] == "株式会社サンプル"
    assert document["external_ids"][0]["system"] == "mautic"
    assert document["external_ids"][0]["external_id"] == "7701"
    assert [e["kind"] for e in document["events"]] == ["form_submit"]
    assert "utm_source=mail" in document["events"][0]["properties"]["referer"]
    assert [(t["from_stage"], t["to_stage"]) for t in document["transitions"]] == [
        ("known", "mql"),
        ("mql", "recycled"),
    ]
    (handoff,) = document["handoffs"]
    assert handoff["rejection_comment"] == "山田様は4月に異動予定"
    assert [a["note"] for a in handoff["activities"]] == ["山田さん: 来期に検討"]
    assert document["scores"][0]["fit"] == 40
    assert [e["id"] for e in document["inbound_events"]] == [person["mine"].pk]
    assert document["inbound_events"][0]["body"]["mautic.form_on_submit"][0]["submission"]["id"]
    assert sorted(m["event"] for m in document["outbox_messages"]) == ["mql_created", "rejected"]
    assert document["feedback_events"][0]["reason"] == "山田様より辞退"
    # Exactly what a file will hold: plain JSON types.
    assert json.loads(json.dumps(document)) == document


def test_an_export_after_erasure_shows_only_the_anonymous_remains(person):
    from privacy.services import erasure_execute

    lead = person["lead"]
    erasure_execute(lead_id=lead.pk, requested_by="ticket", actor="tests")

    document = person_data_export(lead_id=lead.pk, actor="tests")

    assert document["lead"]["email"] == f"erased-{lead.pk}@erased.invalid"
    assert document["external_ids"] == []
    assert document["inbound_events"] == []  # no raw payload mentions them any more
    assert "山田" not in json.dumps(document, ensure_ascii=False)


def test_an_unknown_address_exports_an_empty_file(db):
    document = person_data_export(email="nobody@example.jp", actor="tests")
    assert document["lead"] is None
    assert document["handoffs"] == [] and document["inbound_events"] == []


def test_the_command_writes_the_export(person, tmp_path, capsys):
    target = tmp_path / "export.json"
    call_command("export_person", EMAIL, "--output", str(target))
    assert json.loads(target.read_text(encoding="utf-8"))["lead"]["email"] == EMAIL

    call_command("export_person", "--lead", str(person["lead"].pk))
    assert json.loads(capsys.readouterr().out)["lead"]["id"] == person["lead"].pk


def test_the_api_exports_for_admins_only(person):
    admin = APIClient()
    admin.force_authenticate(UserFactory(is_superuser=True))
    response = admin.get("/api/v1/privacy/export/", {"email": EMAIL})
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert response.json()["lead"]["id"] == person["lead"].pk
    assert admin.get("/api/v1/privacy/export/").status_code == 422  # neither email nor lead_id

    manager = APIClient()
    manager.force_authenticate(UserFactory(roles=["Sales manager"]))
    denied = manager.get("/api/v1/privacy/export/", {"email": EMAIL})
    assert denied.status_code == 403
    assert EMAIL not in denied.content.decode()


@pytest.mark.parametrize("query", [{"email": EMAIL}, "lead"])
def test_the_admin_export_form_downloads_json(person, client, settings, query):
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    client.force_login(UserFactory(is_superuser=True, is_staff=True))
    data = {"lead_id": person["lead"].pk} if query == "lead" else query
    assert client.get("/admin/privacy/erasurerequest/export/").status_code == 200

    response = client.post("/admin/privacy/erasurerequest/export/", data)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response["Content-Disposition"].startswith(
        f'attachment; filename="person-{person["lead"].pk}-'
    )
    assert json.loads(response.content)["lead"]["email"] == EMAIL
