import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from leadflow.duplicates import duplicates_detect
from leadflow.models import DuplicateCandidate, Lead, Stage
from leadflow.services import lead_upsert
from leadflow.tasks import duplicates_detect_task
from tests.factories import CompanyFactory, LeadFactory


def pairs():
    return {
        (c.lead_a_id, c.lead_b_id): sorted(e["kind"] for e in c.evidence)
        for c in DuplicateCandidate.objects.all()
    }


@pytest.mark.django_db
def test_same_phone_in_two_spellings_is_a_candidate_with_evidence():
    a = LeadFactory(phone="03-1234-5678", last_name="佐藤")
    b = LeadFactory(phone="+81 3 1234 5678", last_name="鈴木")
    LeadFactory(phone="03-9999-0000")

    assert duplicates_detect() == 1

    candidate = DuplicateCandidate.objects.get()
    assert (candidate.lead_a_id, candidate.lead_b_id) == (a.pk, b.pk)
    assert candidate.evidence == [{"kind": "same_phone", "value": "+81312345678"}]
    assert candidate.status == "open"


@pytest.mark.django_db
def test_same_name_at_the_same_company_is_a_candidate_but_not_at_another_company():
    company = CompanyFactory()
    a = LeadFactory(last_name="山田", first_name="太郎", company=company, phone="")
    b = LeadFactory(last_name="山田 ", first_name="太郎", company=company, phone="")
    LeadFactory(last_name="山田", first_name="太郎", phone="")  # another company

    duplicates_detect()

    assert pairs() == {(a.pk, b.pk): ["same_name_and_company"]}


@pytest.mark.django_db
def test_both_kinds_of_evidence_on_one_pair_and_rescans_add_nothing():
    company = CompanyFactory()
    a = LeadFactory(last_name="林", first_name="亮", company=company, phone="06-6123-4567")
    b = LeadFactory(last_name="林", first_name="亮", company=company, phone="0661234567")

    assert duplicates_detect() == 1
    assert duplicates_detect_task() == 0
    assert pairs() == {(a.pk, b.pk): ["same_name_and_company", "same_phone"]}


@pytest.mark.django_db
def test_dismissed_pairs_stay_dismissed_and_disqualified_leads_are_skipped():
    a = LeadFactory(phone="03-1111-2222")
    b = LeadFactory(phone="03-1111-2222")
    LeadFactory(phone="03-1111-2222", stage=Stage.DISQUALIFIED)
    duplicates_detect()
    DuplicateCandidate.objects.update(status="dismissed")

    duplicates_detect()

    candidate = DuplicateCandidate.objects.get()
    assert (candidate.lead_a_id, candidate.lead_b_id, candidate.status) == (a.pk, b.pk, "dismissed")


@pytest.mark.django_db
def test_intake_finds_a_duplicate_by_phone_at_once():
    first = lead_upsert(email="taro@old.example.jp", attributes={"phone": "090-1234-5678"})
    second = lead_upsert(email="taro@new.example.jp", attributes={"phone": "09012345678"})

    assert pairs() == {(first.lead.pk, second.lead.pk): ["same_phone"]}


@pytest.mark.django_db
def test_an_external_id_that_is_another_leads_is_evidence_not_a_merge():
    mautic = lead_upsert(email="hanako@a.example.jp", external_ids={"mautic": "77"})
    from_csv = lead_upsert(email="hanako@b.example.jp", source="csv")

    other = lead_upsert(email="hanako@b.example.jp", external_ids={"mautic": "77"})

    assert other.lead.pk == from_csv.lead.pk != mautic.lead.pk
    assert DuplicateCandidate.objects.get().evidence == [
        {"kind": "same_external_id", "value": "mautic:77"}
    ]
    assert mautic.lead.external_ids.get().external_id == "77"


@pytest.mark.django_db
def test_admin_lists_candidates_and_dismisses(admin_client):
    LeadFactory(phone="03-1111-2222")
    LeadFactory(phone="03-1111-2222")
    duplicates_detect()
    candidate = DuplicateCandidate.objects.get()

    page = admin_client.get("/admin/leadflow/duplicatecandidate/")
    assert "same_phone: +81311112222" in page.content.decode()
    admin_client.post(
        "/admin/leadflow/duplicatecandidate/",
        {"action": "dismiss", "_selected_action": [candidate.pk]},
    )
    candidate.refresh_from_db()
    assert candidate.status == "dismissed"
    assert candidate.resolved_by.username == "admin"


@pytest.mark.django_db
def test_a_new_address_for_a_known_external_id_updates_that_lead():
    first = lead_upsert(email="old@example.jp", external_ids={"mautic": "5"})
    moved = lead_upsert(email="new@example.jp", external_ids={"mautic": "5"})

    assert moved.lead.pk == first.lead.pk
    assert moved.lead.email == "new@example.jp"
    assert moved.changed == ["email"]
    assert DuplicateCandidate.objects.count() == 0


def _same_person(n: int) -> int:
    """Queries lead_upsert made for the n-th copy of one person."""
    with CaptureQueriesContext(connection) as queries:
        lead_upsert(
            email=f"taro{n}@example.jp",
            attributes={"last_name": "山田", "first_name": "太郎", "phone": "03-1234-5678"},
            company={"name": "株式会社サンプル"},
        )
    return len(queries)


@pytest.mark.django_db
def test_a_new_lead_is_paired_with_the_latest_twenty_of_its_name_and_phone_in_fixed_queries():
    # One person entered thirty times (a form sent over and over): each new copy read and
    # paired with every earlier one, a query and an INSERT per pair, so a batch of such
    # copies cost the square of its length.
    counts = [_same_person(n) for n in range(31)]

    newest = Lead.objects.get(email="taro30@example.jp")
    pairs = DuplicateCandidate.objects.filter(lead_b=newest)
    latest = Lead.objects.exclude(pk=newest.pk).order_by("-pk")[:20]
    assert sorted(pairs.values_list("lead_a_id", flat=True)) == sorted(lead.pk for lead in latest)
    assert {len(pair.evidence) for pair in pairs} == {2}  # phone and name, one row
    assert counts[30] == counts[25] == counts[3]
