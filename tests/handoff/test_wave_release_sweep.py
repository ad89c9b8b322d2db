"""The beat backs up a lost release: a wave's held MQL whose lead raised its hand, when the
release sent after the event's commit never ran (a broker down, a worker killed)."""

from __future__ import annotations

import pytest
import time_machine

from handoff import waves
from handoff.models import Handoff
from handoff.tasks import release_from_wave_task
from leadflow.models import EngagementEvent
from sla import tasks
from sla.models import SlaTimer
from tests.factories import LeadFactory
from tests.handoff.helpers import make_team, make_wave, set_profile
from tests.handoff.test_mql_waves import LATER, NOW, _hand_raiser_published, _raise_hand
from tests.integrations.conftest import deliver, make_source

pytestmark = pytest.mark.django_db


@pytest.fixture
def lost(monkeypatch):
    """Every release sent after a commit is lost on its way to the broker."""
    monkeypatch.setattr(release_from_wave_task, "apply_async", lambda *args, **kwargs: None)


def _held_pair():
    """One rep with room for one; a wave of three executives: one given, two held."""
    _team, (rep,), _manager = make_team("Kanto", reps=1, default=True)
    set_profile(rep, max_open_handoffs=1)
    _hand_raiser_published()
    leads = sorted(LeadFactory.create_batch(3, role="executive"), key=lambda lead: lead.pk)
    make_wave(leads)
    return rep, list(Handoff.objects.filter(lead__in=leads).order_by("lead_id"))


def test_the_sweep_releases_a_held_hand_raiser_whose_release_was_lost(
    client, lost, django_capture_on_commit_callbacks
):
    with time_machine.travel(NOW, tick=False):
        _rep, (_given, older, raiser) = _held_pair()
        source = make_source("generic")
    with time_machine.travel(LATER, tick=False):
        _raise_hand(client, source, raiser.lead, django_capture_on_commit_callbacks)
        raiser.refresh_from_db()
        assert raiser.clock_waits  # the release was lost

        result = tasks.sweep_task()
        again = waves.held_hand_raisers_release()

    raiser.refresh_from_db()
    older.refresh_from_db()
    assert result["released"] == 1
    assert again == []
    assert (raiser.clock_waits, raiser.wave_released_at) == (False, LATER)
    event = EngagementEvent.objects.get(lead=raiser.lead, kind="consultation")
    assert {t.started_at for t in SlaTimer.objects.filter(handoff=raiser)} == {event.created_at}
    # The rep has no room: it waits as any queued MQL does, its clock running.
    assert raiser.assigned_to_id is None
    # The older held MQL raised no hand: it stays held.
    assert older.clock_waits and not SlaTimer.objects.filter(handoff=older).exists()


def test_the_sweep_leaves_held_mqls_alone_without_a_hand_raise_after_their_mql():
    with time_machine.travel(NOW, tick=False):
        _rep, (_given, *held) = _held_pair()
    with time_machine.travel(LATER, tick=False):
        assert waves.held_hand_raisers_release() == []

    assert all(Handoff.objects.get(pk=h.pk).clock_waits for h in held)


def test_the_sweep_releases_a_raise_that_happened_before_the_mql_and_arrived_after(
    client, lost, django_capture_on_commit_callbacks
):
    """MA tools sync late: the consultation happened at 09:00, before the 10:00 wave, and
    reached LeadFlow at 13:00. The event path releases it; so must the backstop."""
    with time_machine.travel(NOW, tick=False):
        _rep, (_given, _older, raiser) = _held_pair()
        source = make_source("generic")
    late = {
        "id": "evt-late",
        "type": "consultation",
        "occurred_at": "2026-11-02T09:00:00+09:00",
        "lead": {"email": raiser.lead.email},
    }
    with time_machine.travel(LATER, tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            deliver(client, source, late)
        assert Handoff.objects.get(pk=raiser.pk).clock_waits  # the release was lost

        assert waves.held_hand_raisers_release() == [raiser.pk]

    raiser.refresh_from_db()
    assert (raiser.clock_waits, raiser.wave_released_at) == (False, LATER)
