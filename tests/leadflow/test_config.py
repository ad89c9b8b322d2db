"""Per-process copies of the configuration each event reads (leadflow.config): loaded
once, loaded again as soon as a write to a watched table commits — bulk updates and
rolled-back writes included — and never for a table nobody watches."""

from __future__ import annotations

import pytest
from django.db import transaction

from handoff.models import RoutingRule, Team
from handoff.selectors import routing_team_for
from leadflow import config
from leadflow.config import config_cached, config_version
from leadflow.models import ConfigVersion
from sla.models import BusinessCalendar, CalendarClosure, TimerKind, TimerPolicy
from sla.selectors import timer_policies_with_calendars
from tests.factories import CompanyFactory, LeadFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_copies():
    config._copies.clear()
    ConfigVersion.objects.update_or_create(pk=1, defaults={"version": 1})
    yield
    config._copies.clear()


def counting_loader(value="loaded"):
    calls: list[int] = []

    def load():
        calls.append(1)
        return value

    return load, calls


def test_a_copy_is_loaded_once_while_nothing_changes():
    load, calls = counting_loader()

    assert config_cached("thing", load) == "loaded"
    assert config_cached("thing", load) == "loaded"

    assert len(calls) == 1


@pytest.mark.parametrize(
    "write",
    [
        lambda team: Team.objects.create(name="Kinki"),
        lambda team: Team.objects.filter(name="Kanto").update(is_default=True),
        lambda team: Team.objects.filter(name="Kanto").update(name="Kanto 1"),
        lambda team: RoutingRule.objects.create(name="Osaka", regions=["kinki"], team=team),
        lambda team: RoutingRule.objects.all().delete(),
        lambda team: TimerPolicy.objects.filter(kind=TimerKind.VERDICT).update(is_active=False),
        lambda team: BusinessCalendar.objects.update(opens_at="10:00"),
        lambda team: CalendarClosure.objects.all().delete(),
    ],
)
def test_every_write_to_a_watched_table_changes_the_version(write):
    team = Team.objects.create(name="Kanto")
    RoutingRule.objects.create(name="Tokyo", prefectures=["東京都"], team=team)
    calendar = BusinessCalendar.objects.filter(is_default=True).first() or (
        BusinessCalendar.objects.create(name="Tokyo", is_default=True)
    )
    CalendarClosure.objects.create(
        calendar=calendar, name="年末年始", start_date="2026-12-29", end_date="2027-01-03"
    )
    ConfigVersion.objects.filter(pk=1).update(version=1)

    write(team)

    assert config_version() not in (None, 1)


def test_a_team_s_assignment_counter_does_not_change_the_version():
    team = Team.objects.create(name="Kanto")
    before = config_version()

    team.assignment_counter += 1
    team.save(update_fields=["assignment_counter"])
    Team.objects.filter(pk=team.pk).update(assignment_counter=7)

    assert config_version() == before


def test_routing_sees_a_rule_switched_off_by_a_bulk_update_at_once():
    kanto = Team.objects.create(name="Kanto")
    fallback = Team.objects.create(name="Inside sales", is_default=True)
    RoutingRule.objects.create(name="Tokyo", order=10, prefectures=["東京都"], team=kanto)
    lead = LeadFactory(company=CompanyFactory(prefecture="東京都"))
    assert routing_team_for(lead=lead) == kanto

    RoutingRule.objects.filter(name="Tokyo").update(is_active=False)  # no signal is sent

    assert routing_team_for(lead=lead) == fallback


def test_a_copy_loaded_inside_a_rolled_back_transaction_is_not_used_after_it():
    lead = LeadFactory(company=CompanyFactory(prefecture="東京都"))
    assert routing_team_for(lead=lead) is None

    with transaction.atomic():
        Team.objects.create(name="Inside sales", is_default=True)
        assert routing_team_for(lead=lead).name == "Inside sales"
        transaction.set_rollback(True)

    assert routing_team_for(lead=lead) is None


def test_timer_setup_follows_a_policy_change():
    kinds = [policy.kind for policy, _calendar in timer_policies_with_calendars()]
    assert kinds == [TimerKind.FIRST_CONTACT, TimerKind.VERDICT]  # as seeded

    TimerPolicy.objects.filter(kind=TimerKind.VERDICT).update(is_active=False)

    kinds = [policy.kind for policy, _calendar in timer_policies_with_calendars()]
    assert kinds == [TimerKind.FIRST_CONTACT]


def test_without_a_version_row_nothing_is_kept():
    ConfigVersion.objects.all().delete()
    load, calls = counting_loader()

    config_cached("thing", load)
    config_cached("thing", load)

    assert config_version() is None
    assert len(calls) == 2
