"""Handoff.search_key (handoff migration 0012): the lead's and the company's search keys on
the handoff, kept by the database's triggers on both backends, whatever path renames a
lead or a company or moves a lead or a handoff; and the lists' search reads it."""

import importlib

import pytest
from django.db import connection

from handoff.models import Handoff
from handoff.verdicts import handoff_reject
from leadflow.merge import lead_merge
from leadflow.models import Company, Lead, Stage
from leadflow.normalize import search_fold
from tests.factories import CompanyFactory, LeadFactory
from tests.handoff.helpers import make_mql, make_team

# Every trigger the handoff lists rely on (0008's has_handoff, 0012's search key): an
# SQLite migration that rebuilds one of these tables drops the triggers on it silently.
TRIGGERS = {
    "postgresql": {
        ("handoff_marks_lead", "handoff_handoff"),
        ("lead_keeps_has_handoff", "leadflow_lead"),
        ("handoff_search_key_insert", "handoff_handoff"),
        ("handoff_search_key_update", "handoff_handoff"),
        ("lead_search_key_to_handoffs", "leadflow_lead"),
        ("company_search_key_to_handoffs", "leadflow_company"),
    },
    "sqlite": {
        ("handoff_marks_lead_insert", "handoff_handoff"),
        ("handoff_marks_lead_update", "handoff_handoff"),
        ("lead_keeps_has_handoff", "leadflow_lead"),
        ("handoff_search_key_insert", "handoff_handoff"),
        ("handoff_search_key_update", "handoff_handoff"),
        ("lead_search_key_to_handoffs", "leadflow_lead"),
        ("company_search_key_to_handoffs", "leadflow_company"),
    },
}


@pytest.fixture
def kanto(db):
    return make_team("Kanto", reps=2, default=True)


def _key(handoff: Handoff) -> str:
    return Handoff.objects.values_list("search_key", flat=True).get(pk=handoff.pk)


def _expected(handoff: Handoff) -> str:
    lead_id = Handoff.objects.values_list("lead_id", flat=True).get(pk=handoff.pk)
    lead = Lead.objects.select_related("company").get(pk=lead_id)
    # The lead's key and its company's, one space between (either may be empty).
    parts = (lead.search_key, lead.company.search_key if lead.company else "")
    return " ".join(part for part in parts if part)


def _installed_triggers() -> set[tuple[str, str]]:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT t.tgname, c.relname FROM pg_trigger t"
                " JOIN pg_class c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal"
            )
        else:
            cursor.execute("SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger'")
        return set(cursor.fetchall())


@pytest.mark.django_db
def test_every_trigger_of_the_lists_exists_after_migrate():
    assert TRIGGERS[connection.vendor] <= _installed_triggers()


def test_a_new_handoff_carries_its_lead_and_company_keys(kanto):
    company = CompanyFactory(name="株式会社ミライ", name_kana="ミライ")
    handoff = make_mql(
        company=company,
        email="hanako@example.jp",
        last_name="佐藤",
        first_name="花子",
        last_name_kana="サトウ",
        phone="03-1234-5678",
    )

    assert _key(handoff) == (
        "佐藤花子 さとう hanako@examplejp 0312345678 81312345678 株式会社みらい みらい"
    )


def test_the_key_follows_a_lead_rename_through_save(kanto):
    handoff = make_mql(last_name="佐藤", first_name="花子")
    lead = Lead.objects.get(pk=handoff.lead_id)

    lead.last_name = "高橋"
    lead.save()

    assert _key(handoff).startswith("高橋花子 ")
    assert _key(handoff) == _expected(handoff)


def test_the_key_follows_a_kana_change_through_update_fields(kanto):
    handoff = make_mql(last_name="佐藤", first_name="花子", last_name_kana="サトウ")
    lead = Lead.objects.get(pk=handoff.lead_id)

    lead.last_name_kana = "カトウ"
    lead.first_name_kana = "ハナコ"
    lead.save(update_fields=["last_name_kana", "first_name_kana"])

    assert "かとうはなこ" in _key(handoff).split()
    assert "さとう" not in _key(handoff).split()
    assert _key(handoff) == _expected(handoff)


def test_the_key_follows_a_company_rename(kanto):
    company = CompanyFactory(name="株式会社ミライ", name_kana="")
    first = make_mql(company=company)
    second = make_mql(company=company)
    elsewhere = make_mql()
    untouched = _key(elsewhere)

    company.name = "アサヒ工業株式会社"
    company.save()

    assert _key(first).endswith(" あさひ工業株式会社")
    assert _key(second).endswith(" あさひ工業株式会社")
    assert [_key(first), _key(second)] == [_expected(first), _expected(second)]
    assert _key(elsewhere) == untouched


def test_the_key_follows_a_lead_moving_company_and_leaving_it(kanto):
    handoff = make_mql(company=CompanyFactory(name="株式会社ミライ"))
    other = CompanyFactory(name="株式会社アサヒ")
    lead = Lead.objects.get(pk=handoff.lead_id)

    lead.company = other
    lead.save()
    moved = _key(handoff)
    Lead.objects.filter(pk=lead.pk).update(company=None)  # a bulk path, no save()

    assert moved.endswith(" 株式会社あさひ")
    assert "みらい" not in moved
    assert _key(handoff) == Lead.objects.get(pk=lead.pk).search_key
    assert _key(handoff) == _expected(handoff)


def test_a_save_of_a_copy_loaded_before_a_rename_cannot_write_the_old_key_back(kanto):
    handoff = make_mql(last_name="佐藤", first_name="花子")
    stale = Handoff.objects.get(pk=handoff.pk)
    lead = Lead.objects.get(pk=handoff.lead_id)
    lead.last_name = "高橋"
    lead.save()

    stale.rejection_comment = "メモ"
    stale.save()  # a full save: writes the search_key it loaded

    assert _key(handoff).startswith("高橋花子 ")
    assert _key(handoff) == _expected(handoff)


def test_a_merge_moving_a_handoff_gives_it_the_kept_leads_key(kanto):
    merged = make_mql(last_name="合併元")
    handoff_reject(handoff=merged, actor=merged.assigned_to, reason="duplicate", comment="重複")
    keep = LeadFactory(stage=Stage.SQL, last_name="存続先", first_name="花子")

    lead_merge(keep=keep, merge=merged.lead, actor="marketing-review")

    assert _key(merged).startswith("存続先花子 ")
    assert _key(merged) == _expected(merged)


def test_the_migration_fills_the_keys_of_existing_handoffs(kanto):
    first = make_mql(company=CompanyFactory(name="株式会社ミライ"))
    second = make_mql()
    Lead.objects.filter(pk=second.lead_id).update(company=None)
    with connection.cursor() as cursor:
        # As the rows stood before 0012 (the update trigger would refill them; rolled back).
        on_table = " ON handoff_handoff" if connection.vendor == "postgresql" else ""
        cursor.execute(f"DROP TRIGGER handoff_search_key_update{on_table}")
        cursor.execute("UPDATE handoff_handoff SET search_key = ''")
    assert [_key(first), _key(second)] == ["", ""]
    migration = importlib.import_module("handoff.migrations.0012_handoff_search_key")

    with connection.cursor() as cursor:
        cursor.execute(migration.BACKFILL)

    assert _key(first) == _expected(first)
    assert _key(second) == Lead.objects.get(pk=second.lead_id).search_key


def test_the_list_search_reads_the_handoffs_key_after_a_company_rename(client, kanto):
    _team, _reps, manager = kanto
    company = CompanyFactory(name="株式会社ミライ")
    handoff = make_mql(company=company)
    Company.objects.filter(pk=company.pk).update(search_key=search_fold("株式会社ヒカリ"))
    client.force_login(manager)

    found = client.get("/inbox/list/", {"q": "ヒカリ"}).context["rows"]
    gone = client.get("/inbox/list/", {"q": "ミライ"}).context["rows"]

    assert [h.pk for h in found] == [handoff.pk]
    assert list(gone) == []


@pytest.mark.postgres
@pytest.mark.django_db
def test_postgresql_indexes_the_handoffs_key_with_trigrams_and_not_the_leads():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE indexdef LIKE '%%gin_trgm_ops%%'"
            " ORDER BY indexname"
        )
        assert [row[0] for row in cursor.fetchall()] == ["handoff_search_trgm_idx"]
