"""The wave forecast routes leads one by one only while one of them may still get a rep;
a rep with room whom none of the leads left can reach does not keep it routing. The
forecast and the routing ask one test of a rep's room."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from handoff import bulk, routing
from handoff.bulk import wave_forecast
from handoff.models import Handoff, RoutingRule, TeamMembership
from tests.factories import CompanyFactory, LeadFactory
from tests.handoff.helpers import make_team, set_profile

TOKYO = dt.timezone(dt.timedelta(hours=9))
NOW = dt.datetime(2026, 11, 2, 10, 0, tzinfo=TOKYO)  # a Monday, in business hours

pytestmark = pytest.mark.django_db


@pytest.fixture
def routed(monkeypatch) -> list[int]:
    """The leads the forecast routes one by one, per chunk (the rest it counts in SQL)."""
    sizes: list[int] = []
    route = bulk._route

    def counting(leads, state, at):
        sizes.append(len(leads))
        return route(leads, state, at)

    monkeypatch.setattr(bulk, "_route", counting)
    return sizes


def _kanto_full_after_two_and_an_idle_kansai():
    """Kanto (default) has one rep with room for 2; Kansai, which takes Osaka's
    companies, one rep with room for 20 and nothing of the wave routes there."""
    kanto, (kanto_rep,), _boss = make_team("Kanto", reps=1, default=True)
    set_profile(kanto_rep, max_open_handoffs=2)
    kansai, (kansai_rep,), _boss = make_team("Kansai", reps=1)
    set_profile(kansai_rep, max_open_handoffs=20)
    RoutingRule.objects.create(name="west", prefectures=["大阪府"], team=kansai)
    return kanto, kansai, kansai_rep


def test_an_idle_rep_of_a_team_no_lead_left_reaches_does_not_keep_the_forecast_routing(
    routed, monkeypatch
):
    monkeypatch.setattr(bulk, "FORECAST_CHUNK", 2)
    with time_machine.travel(NOW, tick=False):
        kanto, _kansai, _kansai_rep = _kanto_full_after_two_and_an_idle_kansai()
        east = sorted(LeadFactory.create_batch(10), key=lambda lead: lead.pk)

        rows = wave_forecast(lead_ids=[lead.pk for lead in east])

    assert rows == [
        {"team": "Kanto", "team_id": kanto.pk, "leads": 10, "free": 2, "handed": 2, "waiting": 8},
    ]
    # The first chunk fills Kanto; the other eight are counted, not routed.
    assert routed == [2]


def test_the_forecast_routes_on_while_a_later_lead_routes_to_the_idle_team(routed, monkeypatch):
    monkeypatch.setattr(bulk, "FORECAST_CHUNK", 2)
    with time_machine.travel(NOW, tick=False):
        kanto, kansai, _kansai_rep = _kanto_full_after_two_and_an_idle_kansai()
        east = sorted(LeadFactory.create_batch(6), key=lambda lead: lead.pk)
        osaka = LeadFactory(company=CompanyFactory(prefecture="大阪府"))

        rows = wave_forecast(lead_ids=[*(lead.pk for lead in east), osaka.pk])

    assert rows == [
        {"team": "Kansai", "team_id": kansai.pk, "leads": 1, "free": 20, "handed": 1, "waiting": 0},
        {"team": "Kanto", "team_id": kanto.pk, "leads": 6, "free": 2, "handed": 2, "waiting": 4},
    ]
    # The Osaka lead is the last: every chunk up to it is routed, nothing is left.
    assert routed == [2, 2, 2, 1]


@pytest.mark.parametrize("chunk", [2000, 2, 1])
def test_an_idle_account_owner_in_another_team_keeps_the_forecast_routing_to_their_lead(
    chunk, routed, monkeypatch
):
    """The idle Kansai rep owns a Tokyo company: its MQL, the last, goes to them (both
    teams put account owners first), which only the routing finds."""
    monkeypatch.setattr(bulk, "FORECAST_CHUNK", chunk)
    with time_machine.travel(NOW, tick=False):
        kanto, kansai, kansai_rep = _kanto_full_after_two_and_an_idle_kansai()
        east = sorted(LeadFactory.create_batch(5), key=lambda lead: lead.pk)
        owned = LeadFactory(company=CompanyFactory(owner=kansai_rep))

        rows = wave_forecast(lead_ids=[*(lead.pk for lead in east), owned.pk])

    assert rows == [
        {"team": "Kansai", "team_id": kansai.pk, "leads": 1, "free": 20, "handed": 1, "waiting": 0},
        {"team": "Kanto", "team_id": kanto.pk, "leads": 5, "free": 2, "handed": 2, "waiting": 3},
    ]
    assert sum(routed) == 6


def test_an_idle_rep_in_a_team_that_does_not_put_owners_first_stops_the_routing(
    routed, monkeypatch
):
    """The Kansai rep owns the company of a lead left, but may take it only as its account
    owner, and Kansai gives MQLs to owners no precedence: the rest is counted."""
    monkeypatch.setattr(bulk, "FORECAST_CHUNK", 2)
    with time_machine.travel(NOW, tick=False):
        kanto, kansai, kansai_rep = _kanto_full_after_two_and_an_idle_kansai()
        kansai.account_owner_first = False
        kansai.save(update_fields=["account_owner_first"])
        east = sorted(LeadFactory.create_batch(5), key=lambda lead: lead.pk)
        owned = LeadFactory(company=CompanyFactory(owner=kansai_rep))

        rows = wave_forecast(lead_ids=[*(lead.pk for lead in east), owned.pk])

    assert rows == [
        {"team": "Kanto", "team_id": kanto.pk, "leads": 6, "free": 2, "handed": 2, "waiting": 4},
    ]
    assert routed == [2]
    assert not Handoff.objects.exists()


@pytest.mark.parametrize(
    ("profile", "held", "room"),
    [
        (None, 0, routing.DEFAULT_CAPACITY),
        ({"max_open_handoffs": 3}, 1, 2),
        ({"max_open_handoffs": 2}, 3, 0),  # over: a manager gave them one more by hand
        ({"max_open_handoffs": 3, "away": True}, 0, 0),
        ({"max_open_handoffs": 3, "away": True, "away_until": NOW - dt.timedelta(hours=1)}, 1, 2),
    ],
)
def test_the_routing_and_the_forecast_ask_one_test_of_a_reps_room(profile, held, room):
    with time_machine.travel(NOW, tick=False):
        _team, (rep,), _boss = make_team("Kanto", reps=1, default=True)
        if profile is not None:
            set_profile(rep, **profile)
        membership = TeamMembership.objects.select_related("rep__rep_profile").get(rep=rep)
        state = bulk.BatchState({membership.team_id: membership.team}, [])
        state.open[rep.pk] = held

        assert routing.rep_room(membership, held, NOW) == room
        assert bulk._room(state, state.by_rep[rep.pk][0], NOW) == room
        assert routing._with_room([membership], NOW, state) == ([membership] if room else [])
        # The forecast's free capacity is that room (nothing open in the tables here).
        if held == 0:
            (row,) = wave_forecast(lead_ids=[LeadFactory().pk])
            assert row["free"] == room
