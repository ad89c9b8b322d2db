"""A transaction busy with one lead does not hold up work on other leads that refer to it.

A lead is locked while intake, scoring or a verdict changes it. Rows of *other* leads'
work refer to it by foreign key (a duplicate candidate naming both, an engagement event),
and each such INSERT takes FOR KEY SHARE on the lead: with FOR UPDATE it waits for the
whole other transaction, and two workers that each hold one lead and name the other
deadlock. FOR NO KEY UPDATE (we never change a lead's id) lets those inserts through.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.db import connection, connections, transaction

from leadflow import services as lead_services
from leadflow.lifecycle import lead_transition
from leadflow.models import Company, DuplicateCandidate, Lead, Stage
from leadflow.services import lead_upsert
from tests.factories import CompanyFactory, LeadFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _hold_in_thread(work: Callable[[], object]) -> tuple[threading.Thread, threading.Event]:
    """Run `work` in a transaction of another connection and keep it open until released."""
    inside, release = threading.Event(), threading.Event()

    def run() -> None:
        try:
            with transaction.atomic():
                work()
                inside.set()
                release.wait(timeout=30)
        finally:
            inside.set()
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    assert inside.wait(timeout=30)
    return thread, release


def _fail_fast() -> None:
    # Waiting for the other transaction's lock fails here instead of hanging the run.
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '2s'")


def test_intake_of_one_lead_does_not_block_a_duplicate_found_for_another():
    company = CompanyFactory()
    busy = LeadFactory(
        email="busy@example.jp", last_name="山田", first_name="太郎", company=company
    )
    other = LeadFactory(
        email="other@example.jp", last_name="佐藤", first_name="花子", company=company
    )
    thread, release = _hold_in_thread(
        lambda: lead_upsert(email=busy.email, attributes={"job_title": "部長"}, source="test")
    )
    try:
        _fail_fast()
        # The other lead now has the busy one's name at the same company: a duplicate
        # candidate naming both is written while the busy lead is locked.
        with transaction.atomic():
            result = lead_upsert(
                email=other.email,
                attributes={"last_name": "山田", "first_name": "太郎"},
                source="test",
            )
    finally:
        release.set()
        thread.join(timeout=30)

    assert result.changed == ["last_name", "first_name"]
    candidate = DuplicateCandidate.objects.get()
    assert (candidate.lead_a_id, candidate.lead_b_id) == (busy.pk, other.pk)
    assert Lead.objects.get(pk=busy.pk).job_title == "部長"


def test_a_stage_change_in_progress_does_not_block_a_duplicate_naming_the_lead():
    company = CompanyFactory()
    moving = LeadFactory(
        email="moving@example.jp", last_name="山田", first_name="太郎", company=company
    )
    other = LeadFactory(
        email="other@example.jp", last_name="佐藤", first_name="花子", company=company
    )
    thread, release = _hold_in_thread(
        lambda: lead_transition(lead=moving.pk, to_stage=Stage.DISQUALIFIED, actor="test")
    )
    try:
        _fail_fast()
        with transaction.atomic():
            lead_upsert(
                email=other.email,
                attributes={"last_name": "山田", "first_name": "太郎"},
                source="test",
            )
    finally:
        release.set()
        thread.join(timeout=30)

    assert DuplicateCandidate.objects.filter(lead_a=moving, lead_b=other).count() == 1
    assert Lead.objects.get(pk=moving.pk).stage == Stage.DISQUALIFIED


def test_two_workers_updating_two_copies_of_one_person_do_not_deadlock(monkeypatch):
    # Two copies of one person, not yet seen as such; each worker updates one copy (a new
    # phone number), finds the other by name and company, and writes the same candidate.
    company = CompanyFactory()
    first = LeadFactory(
        email="first@example.jp", last_name="山田", first_name="太郎", company=company
    )
    second = LeadFactory(
        email="second@example.jp", last_name="山田", first_name="太郎", company=company
    )
    both_locked = threading.Barrier(2, timeout=30)
    errors: list[BaseException] = []
    original = lead_services.duplicates_for_lead

    def after_both_locked(lead: Lead) -> int:
        both_locked.wait()  # each worker holds its own lead, then names the other one
        return original(lead)

    def work(email: str, phone: str) -> None:
        try:
            _fail_fast()
            with transaction.atomic():
                lead_upsert(email=email, attributes={"phone": phone}, source="test")
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    monkeypatch.setattr(lead_services, "duplicates_for_lead", after_both_locked)
    threads = [
        threading.Thread(target=work, args=(first.email, "03-1111-2222")),
        threading.Thread(target=work, args=(second.email, "06-3333-4444")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    candidate = DuplicateCandidate.objects.get()
    assert (candidate.lead_a_id, candidate.lead_b_id) == (first.pk, second.pk)
    assert [item["kind"] for item in candidate.evidence] == ["same_name_and_company"]
    assert sorted(Lead.objects.values_list("phone", flat=True)) == ["03-1111-2222", "06-3333-4444"]


def test_two_workers_creating_the_same_new_company_make_one_company():
    # Colleagues from one company not seen before, processed by two workers at once: the
    # second waits for the first's commit and takes its company instead of a copy.
    def first_worker() -> None:
        lead_upsert(
            email="a@newco.example.jp",
            company={"name": "株式会社ニューコ", "domain": "newco.example.jp"},
            source="test",
        )

    thread, release = _hold_in_thread(first_worker)
    threading.Timer(1.0, release.set).start()  # commits a second later
    try:
        _fail_fast()
        with transaction.atomic():
            second = lead_upsert(
                email="b@newco.example.jp",
                company={"name": "(株)ニューコ", "domain": "newco.example.jp"},
                source="test",
            )
    finally:
        release.set()
        thread.join(timeout=30)

    company = Company.objects.get()
    assert (company.name, company.domain) == ("株式会社ニューコ", "newco.example.jp")
    assert second.lead.company_id == company.pk
    assert sorted(Lead.objects.values_list("company_id", flat=True)) == [company.pk, company.pk]
