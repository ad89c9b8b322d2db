"""Account owner first: an MQL of a company someone already owns goes to that rep when
they can take it, else through the round robin; each kind of owner, and the switch."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from handoff.models import Assignment, AssignmentVia, Handoff, RoutingRule, Team
from handoff.verdicts import handoff_accept
from leadflow.lifecycle import lead_transition
from leadflow.models import Lead, Stage
from tests.factories import CompanyFactory, LeadFactory
from tests.handoff.helpers import make_mql, make_team, set_profile

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 11, 2, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))


@pytest.fixture(autouse=True)
def _pinned_clock():
    with time_machine.travel(NOW, tick=False):
        yield


# The assignment history says why, in the site's language (English in tests).
REASON = {
    "company": "Account owner: set on the company",
    "open": "Account owner: holds an open handoff of the company",
    "opportunity": "Account owner: works an SQL or opportunity of the company",
    "customer": "Account owner: owns a customer of the company",
}


@pytest.fixture
def kanto():
    return make_team("Kanto", reps=3, default=True)


def only_assignment(handoff: Handoff) -> Assignment:
    return Assignment.objects.get(handoff=handoff)


def test_the_owner_set_on_the_company_gets_its_mqls(kanto):
    _team, reps, _manager = kanto
    company = CompanyFactory(owner=reps[1])

    # The round robin alone would give three MQLs to three reps.
    handoffs = [make_mql(company=company) for _ in range(3)]

    assert [h.assigned_to for h in handoffs] == [reps[1]] * 3
    assignment = only_assignment(handoffs[0])
    assert (assignment.via, assignment.reason) == (AssignmentVia.ACCOUNT_OWNER, REASON["company"])
    assert Lead.objects.get(pk=handoffs[0].lead_id).owner == reps[1]


def test_the_rep_of_an_open_handoff_of_the_company_gets_its_next_mql(kanto):
    _team, _reps, _manager = kanto
    company = CompanyFactory()
    earlier = make_mql(company=company)

    # The round robin alone would give the next MQL to another rep.
    handoff = make_mql(company=company)

    assert handoff.assigned_to == earlier.assigned_to
    assert only_assignment(handoff).reason == REASON["open"]


def test_the_rep_of_an_sql_of_the_company_gets_its_next_mql(kanto):
    company = CompanyFactory()
    earlier = make_mql(company=company)
    handoff_accept(handoff=earlier, actor=earlier.assigned_to, bant={"budget": True, "need": True})

    handoff = make_mql(company=company)

    assert handoff.assigned_to == earlier.assigned_to
    assert only_assignment(handoff).reason == REASON["opportunity"]


def test_the_owner_of_a_customer_of_the_company_gets_its_mql(kanto):
    _team, reps, _manager = kanto
    company = CompanyFactory()
    LeadFactory(company=company, stage=Stage.CUSTOMER, owner=reps[2])

    handoff = make_mql(company=company)

    assert handoff.assigned_to == reps[2]
    assert only_assignment(handoff).reason == REASON["customer"]


def test_an_open_handoff_counts_before_a_customer(kanto):
    _team, reps, _manager = kanto
    company = CompanyFactory()
    LeadFactory(company=company, stage=Stage.CUSTOMER, owner=reps[2])
    holder = next(rep for rep in reps if rep != reps[2])
    LeadFactory(company=company, stage=Stage.MQL, owner=holder)

    handoff = make_mql(company=company)

    assert handoff.assigned_to == holder
    assert only_assignment(handoff).reason == REASON["open"]


def test_an_owner_who_is_away_leaves_the_mql_to_the_round_robin(kanto):
    _team, reps, _manager = kanto
    company = CompanyFactory(owner=reps[0])
    set_profile(reps[0], away=True)

    handoff = make_mql(company=company)

    assert handoff.assigned_to in reps[1:]
    assert only_assignment(handoff).via == AssignmentVia.ROUTING


def test_an_owner_at_capacity_leaves_the_mql_to_the_round_robin(kanto):
    _team, reps, _manager = kanto
    set_profile(reps[0], max_open_handoffs=0)
    company = CompanyFactory(owner=reps[0])

    handoff = make_mql(company=company)

    assert handoff.assigned_to in reps[1:]
    assert only_assignment(handoff).via == AssignmentVia.ROUTING


def test_a_team_can_switch_account_owner_first_off(kanto):
    team, _reps, _manager = kanto
    Team.objects.filter(pk=team.pk).update(account_owner_first=False)
    company = CompanyFactory()
    first = make_mql(company=company)

    second = make_mql(company=company)

    assert second.assigned_to != first.assigned_to  # the round robin's next rep
    assert only_assignment(second).via == AssignmentVia.ROUTING


def test_an_owner_in_another_team_gets_the_mql_in_their_team(kanto):
    team, _reps, _manager = kanto
    enterprise, (account_rep,), _boss = make_team("Enterprise", reps=1)
    RoutingRule.objects.create(name="All of Tokyo", prefectures=["東京都"], team=team)
    company = CompanyFactory(prefecture="東京都", owner=account_rep)

    handoff = make_mql(company=company)

    assert (handoff.team, handoff.assigned_to) == (enterprise, account_rep)
    assert only_assignment(handoff).reason == REASON["company"]


def test_a_lead_of_no_company_is_routed_as_before(kanto):
    lead = LeadFactory(company=None)

    lead_transition(lead=lead, to_stage=Stage.MQL, actor="scoring")

    assert only_assignment(Handoff.objects.get(lead=lead)).via == AssignmentVia.ROUTING


def test_the_reason_is_written_in_the_site_language(kanto, settings):
    settings.LANGUAGE_CODE = "ja"
    _team, reps, _manager = kanto

    handoff = make_mql(company=CompanyFactory(owner=reps[0]))

    assert only_assignment(handoff).reason == "担当企業の担当者（企業に設定）"
