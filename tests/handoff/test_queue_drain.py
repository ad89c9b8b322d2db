"""The queue's drain after a wave: a queued MQL whose SLA clock runs goes before the held
wave MQLs whose clocks wait, and each drain reads and locks only the rows it may assign."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from handoff.models import Handoff
from handoff.routing import handoff_assign_from_queue
from sla.models import SlaTimer
from tests.factories import LeadFactory
from tests.handoff.helpers import make_mql, make_team, make_wave, retime, set_profile

TOKYO = dt.timezone(dt.timedelta(hours=9))
NOW = dt.datetime(2026, 11, 2, 10, 0, tzinfo=TOKYO)  # a Monday, in business hours
HOUR = dt.timedelta(hours=1)

pytestmark = pytest.mark.django_db


def _held_wave(*, held: int):
    """A team of one rep with room for 2, and a wave at NOW of `held` + 2 MQLs: the rep
    gets two, the rest wait in the queue with no clock."""
    team, (rep,), _boss = make_team("Kanto", reps=1, default=True)
    set_profile(rep, max_open_handoffs=2)
    leads = sorted(LeadFactory.create_batch(held + 2), key=lambda lead: lead.pk)
    with time_machine.travel(NOW, tick=False):
        make_wave(leads)
    waiting = list(
        Handoff.objects.filter(assigned_to__isnull=True).order_by("pk").values_list("pk", flat=True)
    )
    assert len(waiting) == held
    return team, rep, waiting


def _queued_with_clock(at: dt.datetime) -> Handoff:
    """An MQL made by an event at `at` while the rep is full: queued, its clock running."""
    with time_machine.travel(at, tick=False):
        handoff = make_mql()
    assert handoff.assigned_to_id is None and handoff.wave_id is None
    assert handoff.next_due_at is not None
    return handoff


def test_a_queued_mql_whose_clock_runs_goes_before_the_held_wave():
    team, rep, _held = _held_wave(held=5)
    event_mql = _queued_with_clock(NOW + HOUR)

    with time_machine.travel(NOW + 3 * HOUR, tick=False):
        set_profile(rep, max_open_handoffs=3)  # room for one more
        given = handoff_assign_from_queue(team=team)

    assert [h.pk for h in given] == [event_mql.pk]
    assert Handoff.objects.get(pk=event_mql.pk).assigned_to_id == rep.pk
    # The wave still waits, its clocks stopped.
    assert Handoff.objects.filter(wave__isnull=False, assigned_to__isnull=True).count() == 5
    assert not SlaTimer.objects.filter(handoff__wave__isnull=False, handoff__assigned_to=None)


def test_running_clocks_go_nearest_deadline_first_then_the_held_ones_oldest_first():
    team, rep, held = _held_wave(held=3)
    # The held ones were made at one instant; make their ages differ, the newest id oldest.
    for age, pk in enumerate(held):
        Handoff.objects.filter(pk=pk).update(created_at=NOW - age * HOUR)
    earlier = _queued_with_clock(NOW + HOUR)
    later = _queued_with_clock(NOW + 2 * HOUR)
    # The earlier MQL's deadline moved past the later one's (another policy, say).
    retime(SlaTimer.objects.filter(handoff=earlier), due_at=NOW + 72 * HOUR)

    with time_machine.travel(NOW + 3 * HOUR, tick=False):
        set_profile(rep, max_open_handoffs=2 + 4)  # room for four
        given = handoff_assign_from_queue(team=team)

    assert [h.pk for h in given] == [later.pk, earlier.pk, held[2], held[1]]
    assert list(Handoff.objects.filter(assigned_to__isnull=True).values_list("pk", flat=True)) == [
        held[0]
    ]


def _queue_selects(queries) -> list[str]:
    """The drain's SELECTs of the team's queued handoffs."""
    return [
        q["sql"]
        for q in queries
        if q["sql"].startswith("SELECT")
        and 'FROM "handoff_handoff"' in q["sql"]
        and '"handoff_handoff"."assigned_to_id" IS NULL' in q["sql"]
    ]


def test_a_drain_reads_and_locks_only_as_many_queued_rows_as_the_reps_have_room_for():
    team, rep, _held = _held_wave(held=60)

    with time_machine.travel(NOW + HOUR, tick=False):
        set_profile(rep, max_open_handoffs=3)  # room for one of the 60
        with CaptureQueriesContext(connection) as captured:
            given = handoff_assign_from_queue(team=team)

    assert len(given) == 1
    (select,) = _queue_selects(captured.captured_queries)
    assert select.endswith("LIMIT 1") or select.endswith("LIMIT 1 FOR UPDATE")
    if connection.vendor == "postgresql":
        assert select.endswith("LIMIT 1 FOR UPDATE")


def test_a_drain_with_no_room_reads_no_queued_row():
    team, _rep, _held = _held_wave(held=3)

    with time_machine.travel(NOW + HOUR, tick=False), CaptureQueriesContext(connection) as captured:
        given = handoff_assign_from_queue(team=team)

    assert given == []
    assert _queue_selects(captured.captured_queries) == []
    assert Handoff.objects.filter(assigned_to__isnull=True).count() == 3
