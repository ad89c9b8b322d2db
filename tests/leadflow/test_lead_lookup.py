"""Finding a lead by e-mail goes through the case-insensitive unique index: a plain
`email=` match cannot use it and read every lead on each webhook."""

from __future__ import annotations

import pytest
from django.db import connection

from leadflow.models import Lead
from tests.factories import LeadFactory


def test_with_email_ignores_case_and_spaces(db):
    lead = LeadFactory(email="yamada@example.co.jp")
    Lead.objects.filter(pk=lead.pk).update(email="Yamada@Example.co.jp")  # e.g. the admin

    assert list(Lead.objects.with_email(" YAMADA@example.co.jp ")) == [lead]
    assert not Lead.objects.with_email("sato@example.co.jp").exists()


def test_with_email_never_matches_anonymous_leads(db):
    LeadFactory(email="", stage="anonymous")

    assert not Lead.objects.with_email("").exists()


def test_the_api_email_filter_is_case_insensitive(client, db):
    from tests.factories import UserFactory

    lead = LeadFactory(email="suzuki@example.jp")
    client.force_login(UserFactory(username="mkt", roles=["Marketing"]))

    body = client.get("/api/v1/leads/?email=SUZUKI@example.jp").json()

    assert [row["id"] for row in body["results"]] == [lead.pk]


@pytest.mark.postgres
def test_with_email_uses_the_unique_index_on_postgresql(db):
    # On a near-empty table any scan costs the same, and with sequential scans off the
    # planner may still walk another index (created_at, to skip the sort) and filter:
    # give it real statistics and no ordering so only the e-mail index can win.
    LeadFactory.create_batch(40)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE leadflow_lead")
        cursor.execute("SET LOCAL enable_seqscan = off")
    plan = Lead.objects.with_email("yamada@example.co.jp").order_by().explain()

    assert connection.vendor == "postgresql"
    assert "lead_email_ci_unique" in plan
