import datetime as dt

import pytest

from leadflow.errors import DomainError
from leadflow.models import Company, EngagementEvent, Lead, LeadExternalId, Stage, StageTransition
from leadflow.services import company_find_or_create, event_record, lead_upsert
from tests.factories import TOKYO, CompanyFactory, LeadFactory

WHEN = dt.datetime(2026, 11, 2, 10, 0, tzinfo=TOKYO)


@pytest.mark.django_db
def test_upsert_creates_a_known_lead_with_normalised_email():
    result = lead_upsert(
        email="  Ｔａｒｏ.Yamada@Example.CO.JP ",
        attributes={"last_name": "山田", "first_name": "太郎", "job_title": "部長"},
        source="mautic",
    )

    assert result.created is True
    assert result.lead.email == "taro.yamada@example.co.jp"
    assert result.lead.stage == Stage.KNOWN
    assert result.lead.source == "mautic"
    assert sorted(result.changed) == ["first_name", "job_title", "last_name"]


@pytest.mark.django_db
def test_upsert_finds_the_same_lead_whatever_the_case_of_the_email():
    first = lead_upsert(email="hanako@example.jp")
    again = lead_upsert(email="HANAKO@EXAMPLE.JP", attributes={"phone": "03-1234-5678"})

    assert again.created is False
    assert again.lead.pk == first.lead.pk
    assert again.changed == ["phone"]
    assert Lead.objects.count() == 1


@pytest.mark.django_db
def test_upsert_with_nothing_new_reports_no_change():
    lead_upsert(email="a@example.jp", attributes={"last_name": "佐藤"})
    result = lead_upsert(email="a@example.jp", attributes={"last_name": "佐藤"})
    assert result.changed == []


@pytest.mark.django_db
def test_unknown_keys_become_custom_attributes():
    result = lead_upsert(email="a@example.jp", attributes={"budget_range": "500万円"})
    assert result.lead.attributes == {"budget_range": "500万円"}
    assert result.changed == ["budget_range"]


@pytest.mark.django_db
def test_upsert_by_known_external_id_without_email():
    created = lead_upsert(email="b@example.jp", external_ids={"mautic": "42"})
    result = lead_upsert(external_ids={"mautic": 42}, attributes={"department": "情報システム部"})

    assert result.lead.pk == created.lead.pk
    assert result.lead.department == "情報システム部"
    assert LeadExternalId.objects.get().external_id == "42"


@pytest.mark.django_db
def test_no_email_and_no_known_id_is_a_domain_error_and_writes_nothing():
    with pytest.raises(DomainError) as caught:
        lead_upsert(external_ids={"hubspot": "999"}, attributes={"first_name": "X"})
    assert caught.value.code == "no_identity"
    assert Lead.objects.count() == 0
    assert LeadExternalId.objects.count() == 0


@pytest.mark.django_db
def test_anonymous_visitor_becomes_known_when_the_email_arrives():
    visitor = LeadFactory(email="", stage=Stage.ANONYMOUS, company=None)
    LeadExternalId.objects.create(lead=visitor, system="mautic", external_id="7")

    result = lead_upsert(email="new@example.jp", external_ids={"mautic": "7"}, source="mautic")

    assert result.lead.pk == visitor.pk
    visitor.refresh_from_db()
    assert visitor.email == "new@example.jp"
    assert visitor.stage == Stage.KNOWN
    transition = StageTransition.objects.get(lead=visitor)
    assert (transition.from_stage, transition.to_stage) == ("anonymous", "known")
    assert transition.actor_system == "source:mautic"


@pytest.mark.django_db
def test_company_is_found_by_domain_then_by_name_and_updated():
    existing = CompanyFactory(name="株式会社サクラ", domain="sakura.example.jp", employee_count=10)

    by_domain = company_find_or_create(data={"domain": "SAKURA.example.jp", "employee_count": 120})
    by_name = company_find_or_create(data={"name": "株式会社サクラ"})
    new = company_find_or_create(data={"name": "株式会社モミジ", "prefecture": "大阪府"})

    assert by_domain.pk == existing.pk == by_name.pk
    existing.refresh_from_db()
    assert existing.employee_count == 120
    assert new.region == "kinki"
    assert Company.objects.count() == 2
    assert company_find_or_create(data={"industry": "it"}) is None


@pytest.mark.django_db
def test_upsert_links_the_company():
    result = lead_upsert(
        email="c@example.jp", company={"name": "株式会社カエデ", "prefecture": "福岡県"}
    )
    assert result.lead.company.name == "株式会社カエデ"
    assert result.lead.company.region == "kyushu"
    assert "company" in result.changed


@pytest.mark.django_db
def test_event_redelivery_is_recorded_once():
    lead = LeadFactory()
    first, created = event_record(
        lead=lead, kind="page_view", occurred_at=WHEN, source="mautic", external_id="hit-1"
    )
    again, created_again = event_record(
        lead=lead, kind="page_view", occurred_at=WHEN, source="mautic", external_id="hit-1"
    )

    assert (created, created_again) == (True, False)
    assert again.pk == first.pk
    assert EngagementEvent.objects.count() == 1


@pytest.mark.django_db
def test_events_without_external_id_are_never_merged():
    lead = LeadFactory()
    event_record(lead=lead, kind="email_open", occurred_at=WHEN)
    event_record(lead=lead, kind="email_open", occurred_at=WHEN)
    assert EngagementEvent.objects.count() == 2


@pytest.mark.django_db
def test_event_with_unknown_kind_or_naive_time_is_refused():
    lead = LeadFactory()
    with pytest.raises(DomainError, match="“tweet” is not an engagement event kind"):
        event_record(lead=lead, kind="tweet", occurred_at=WHEN)
    with pytest.raises(DomainError, match="no time zone"):
        event_record(lead=lead, kind="page_view", occurred_at=dt.datetime(2026, 1, 1))
    assert EngagementEvent.objects.count() == 0
