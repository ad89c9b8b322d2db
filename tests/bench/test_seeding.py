"""bench/seeding.py: a bench seed either stores what the app would, or stops loudly.

The scoring bench's hand-written INSERT went stale when save() started deriving
matching keys (match_key, name_key); these tests pin the three checks that replace it.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from bench.seeding import (
    SeedError,
    audit,
    insert_select,
    remember_seeded_size,
    required_columns,
    seeded_size_at,
)
from handoff.models import Handoff
from leadflow.models import Company, Lead, StageTransition
from leadflow.normalize import company_key, name_key, phone_key
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db

COMPANY = {
    "name": "'株式会社ベンチ' || g",
    "name_kana": "''",
    "domain": "''",
    "revenue_band": "''",
    "industry": "''",
    "prefecture": "'大阪府'",
    "created_at": "now()",
    "updated_at": "now()",
}
SERIES = "generate_series(1, %s) AS s(g)"


def test_the_required_columns_come_from_the_model_including_the_matching_keys():
    assert {"match_key", "region", "name", "created_at"} <= required_columns(Company)
    assert {"name_key", "phone_key", "email", "stage"} <= required_columns(Lead)
    assert "id" not in required_columns(Lead)
    assert "employee_count" not in required_columns(Company)  # nullable
    assert "company_id" not in required_columns(Lead)


def test_a_seed_that_leaves_out_a_required_column_stops_before_any_sql(
    django_assert_num_queries,
):
    values = {k: v for k, v in COMPANY.items() if k not in ("name_kana", "updated_at")}
    with (
        django_assert_num_queries(0),
        pytest.raises(SeedError, match=r"requires \(NOT NULL\): \['name_kana', 'updated_at'\]"),
    ):
        insert_select(Company, values, SERIES, [3])
    assert Company.objects.count() == 0


def test_a_seed_may_not_write_a_column_that_save_derives(django_assert_num_queries):
    values = {**COMPANY, "match_key": "'ベンチ'"}
    with (
        django_assert_num_queries(0),
        pytest.raises(SeedError, match=r"sets columns save\(\) derives .*\['match_key'\]"),
    ):
        insert_select(Company, values, SERIES, [3])


def test_a_seed_naming_a_column_the_model_lacks_stops(django_assert_num_queries):
    with (
        django_assert_num_queries(0),
        pytest.raises(SeedError, match=r"columns the model does not have: \['nickname'\]"),
    ):
        insert_select(Company, {**COMPANY, "nickname": "''"}, SERIES, [3])


@pytest.mark.postgres
def test_seeded_rows_carry_the_keys_the_app_computes_in_source_order():
    insert_select(Company, COMPANY, SERIES, [3])
    companies = list(Company.objects.order_by("pk").values_list("name", "match_key", "region"))
    assert companies == [
        ("株式会社ベンチ1", "ベンチ1", "kinki"),
        ("株式会社ベンチ2", "ベンチ2", "kinki"),
        ("株式会社ベンチ3", "ベンチ3", "kinki"),
    ]
    assert companies[0][1] == company_key("株式会社ベンチ1")
    first = Company.objects.order_by("pk").first()
    insert_select(
        Lead,
        {
            "email": "'l' || g || '@bench.invalid'",
            "last_name": "'Ｙａｍａｄａ '",
            "first_name": "'タロウ' || g",
            "last_name_kana": "''",
            "first_name_kana": "''",
            "company_id": "%s",
            "department": "''",
            "job_title": "''",
            "role": "''",
            "phone": "CASE WHEN g %% 2 = 0 THEN '' ELSE '０３-1234-567' || g END",
            "source": "'bench'",
            "stage": "'known'",
            "stage_changed_at": "%s",
            "attributes": "'{}'::jsonb",
            "created_at": "%s",
            "updated_at": "%s",
        },
        SERIES,
        [first.pk, timezone.now(), timezone.now(), timezone.now(), 3],
    )
    leads = list(Lead.objects.order_by("pk").values_list("email", "name_key", "phone_key"))
    assert leads == [
        ("l1@bench.invalid", "yamadaタロウ1", "+81312345671"),
        ("l2@bench.invalid", "yamadaタロウ2", ""),
        ("l3@bench.invalid", "yamadaタロウ3", "+81312345673"),
    ]
    assert leads[0][1:] == (name_key("Ｙａｍａｄａ ", "タロウ1"), phone_key("０３-1234-5671"))
    assert audit(Company) == 3
    assert audit(Lead) == 3


@pytest.mark.postgres
def test_the_audit_fails_on_a_row_whose_key_is_not_what_save_stores():
    insert_select(Company, COMPANY, SERIES, [2])
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE leadflow_company SET match_key = 'stale' WHERE name = '株式会社ベンチ2'"
        )
    with pytest.raises(SeedError, match=r"match_key: seeded 'stale', save\(\) stores 'ベンチ2'"):
        audit(Company)
    # Rolled back: the audit never writes what save() would have stored.
    assert Company.objects.get(name="株式会社ベンチ2").match_key == "stale"


def test_the_audit_reads_back_what_the_database_derives_a_handoffs_search_key():
    lead = LeadFactory(last_name="佐藤", first_name="花子", company=None)
    transition = StageTransition.objects.create(
        lead=lead, from_stage="known", to_stage="mql", actor_system="scoring"
    )
    # As a seed that computed the key wrongly: an insert that brings a key keeps it.
    Handoff.objects.create(
        lead=lead, mql_transition=transition, status="accepted", search_key="stale"
    )

    with pytest.raises(SeedError, match=r"search_key: seeded 'stale', save\(\) stores '佐藤花子 "):
        audit(Handoff)
    Handoff.objects.filter(search_key="stale").update(search_key="")  # the trigger's key
    assert Handoff.objects.get().search_key == lead.search_key
    assert audit(Handoff) == 1


def test_the_audit_fails_on_a_seed_that_inserted_nothing():
    with pytest.raises(SeedError, match="leadflow_company inserted no rows"):
        audit(Company)


def _indexes(table: str) -> dict[str, bool]:
    """name → unique, of the table's indexes other than its primary key."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT ci.relname, x.indisunique FROM pg_index x"
            " JOIN pg_class ci ON ci.oid = x.indexrelid JOIN pg_class ct ON ct.oid = x.indrelid"
            " WHERE ct.relname = %s AND NOT x.indisprimary",
            [table],
        )
        return dict(cursor.fetchall())


@pytest.mark.postgres
def test_a_seed_runs_without_the_plain_indexes_and_gets_them_back_even_when_it_fails():
    from bench.seeding import indexes_deferred

    before = _indexes("leadflow_lead") | _indexes("handoff_handoff")
    plain = sorted(name for name, unique in before.items() if not unique)
    assert {"lead_created_idx", "handoff_search_trgm_idx"} <= set(plain)

    with pytest.raises(ZeroDivisionError), indexes_deferred(Lead, Handoff) as rebuilt:
        assert sorted(rebuilt) == plain
        # Only the unique ones stay while the rows go in: they are rules, not speed.
        after = _indexes("leadflow_lead") | _indexes("handoff_handoff")
        assert after == {n: u for n, u in before.items() if u}
        1 / 0  # noqa: B018 - the seed fails half-way

    assert _indexes("leadflow_lead") | _indexes("handoff_handoff") == before


@pytest.mark.postgres
def test_a_remembered_seed_size_is_found_again_only_for_that_size():
    size = {"leads": 1000, "open": 10}
    assert seeded_size_at("bench_test_seed", size) is None  # nothing seeded yet

    remember_seeded_size("bench_test_seed", size)

    assert seeded_size_at("bench_test_seed", {"open": 10, "leads": 1000}) is not None
    assert seeded_size_at("bench_test_seed", {**size, "open": 11}) is None
