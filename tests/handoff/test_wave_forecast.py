"""The forecast and the routing ask one test of a rep's room."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from handoff import bulk, routing
from handoff.bulk import wave_forecast
from handoff.models import TeamMembership
from tests.factories import LeadFactory
from tests.handoff.helpers import make_team, set_profile

TOKYO = dt.timezone(dt.timedelta(hours=9))
NOW = dt.datetime(2026, 11, 2, 10, 0, tzinfo=TOKYO)  # a Monday, in business hours

pytestmark = pytest.mark.django_db


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
