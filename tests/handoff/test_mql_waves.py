"""A wave of MQLs (a publish) does not flood sales: above the teams' free capacity its
MQLs wait in the queue with their SLA clocks stopped, the clocks start when a rep gets
them, and a hand-raiser is never held back."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from handoff.models import Handoff, QueueNotice
from handoff.routing import handoff_assign_from_queue
from leadflow.lifecycle import BulkMove, leads_transition_bulk, mql_wave_start
from leadflow.models import MqlWave, Stage, WaveKind
from scoring.models import ModelStatus, RescoreRun, ScoringModel
from scoring.services import rescore_run_execute
from sla.models import SlaTimer, TimerKind
from sla.selectors import timer_policies_with_calendars
from sla.services import timer_deadline
from tests.factories import EngagementEventFactory, LeadFactory
from tests.handoff.helpers import make_team, set_profile
from tests.scoring.conftest import make_model, publish

TOKYO = dt.timezone(dt.timedelta(hours=9))
NOW = dt.datetime(2026, 11, 2, 10, 0, tzinfo=TOKYO)  # a Monday, in business hours
LATER = NOW + dt.timedelta(hours=3)

pytestmark = pytest.mark.django_db


def _first_contact_due(start: dt.datetime) -> dt.datetime:
    policy, calendar = next(
        (p, c) for p, c in timer_policies_with_calendars() if p.kind == TimerKind.FIRST_CONTACT
    )
    return timer_deadline(policy=policy, start=start, calendar=calendar)[0]


def _wave_of_five():
    team, (rep,), _boss = make_team("Kanto", reps=1, default=True)
    set_profile(rep, max_open_handoffs=2)
    leads = sorted(LeadFactory.create_batch(5), key=lambda lead: lead.pk)
    wave = mql_wave_start(kind=WaveKind.PUBLISH, key="rescore:1", label="Scoring model v2")
    leads_transition_bulk(
        moves=[BulkMove(lead_id=lead.pk, expected_from=Stage.KNOWN) for lead in leads],
        to_stage=Stage.MQL,
        actor="scoring",
        wave=wave,
    )
    return team, rep, leads, wave


def test_a_wave_above_the_teams_free_capacity_waits_in_the_queue_without_clocks():
    with time_machine.travel(NOW, tick=False):
        _team, rep, leads, wave = _wave_of_five()

    handoffs = list(Handoff.objects.filter(lead__in=leads).order_by("lead_id"))
    assert [h.assigned_to_id for h in handoffs] == [rep.pk, rep.pk, None, None, None]
    assert all(h.wave_id == wave.pk for h in handoffs)
    # The two the rep got now: their clocks run from the MQL.
    for handoff in handoffs[:2]:
        timer = SlaTimer.objects.get(handoff=handoff, kind=TimerKind.FIRST_CONTACT)
        assert (timer.started_at, timer.due_at) == (NOW, _first_contact_due(NOW))
        assert handoff.next_due_at == _first_contact_due(NOW)
    # The three that wait: no clock, no deadline, and no notice per lead to the managers.
    assert not SlaTimer.objects.filter(handoff__in=handoffs[2:]).exists()
    assert [h.next_due_at for h in handoffs[2:]] == [None, None, None]
    assert not QueueNotice.objects.exists()
    wave.refresh_from_db()
    assert (wave.mqls, wave.assigned, wave.held) == (5, 2, 3)


def test_a_held_mql_starts_its_clocks_when_a_rep_gets_it_from_the_queue():
    with time_machine.travel(NOW, tick=False):
        team, rep, leads, _wave = _wave_of_five()
    with time_machine.travel(LATER, tick=False):
        set_profile(rep, max_open_handoffs=3)  # room for one more
        (given,) = handoff_assign_from_queue(team=team)

    assert given.lead_id == leads[2].pk
    timers = {t.kind: t for t in SlaTimer.objects.filter(handoff=given)}
    first_contact = timers[TimerKind.FIRST_CONTACT]
    assert (first_contact.started_at, first_contact.due_at) == (LATER, _first_contact_due(LATER))
    assert (first_contact.rep_id, first_contact.rep_since) == (rep.pk, LATER)
    assert {t.started_at for t in timers.values()} == {LATER}
    given.refresh_from_db()
    assert given.next_due_at == _first_contact_due(LATER)
    # The two still waiting have no clock yet.
    assert not SlaTimer.objects.filter(handoff__lead__in=leads[3:]).exists()


def test_without_a_wave_a_queued_mql_keeps_todays_rule_its_clock_runs_from_the_mql():
    with time_machine.travel(NOW, tick=False):
        make_team("Kanto", reps=0, default=True)
        lead = LeadFactory()
        leads_transition_bulk(
            moves=[BulkMove(lead_id=lead.pk, expected_from=Stage.KNOWN)],
            to_stage=Stage.MQL,
            actor="scoring",
        )

    handoff = Handoff.objects.get(lead=lead)
    assert handoff.assigned_to_id is None and handoff.wave_id is None
    timer = SlaTimer.objects.get(handoff=handoff, kind=TimerKind.FIRST_CONTACT)
    assert timer.started_at == NOW


def _model_with_a_hand_raiser() -> ScoringModel:
    """Executives 40 fit points, an e-mail click 60, a consultation a hand-raiser from
    fit 30; the published model archived, so this one is published next."""
    model = make_model(
        fit=[{"field": "role", "operator": "equals", "value": "executive", "points": 40}],
        engagement=[{"kind": "email_click", "points": 60}],
        hand_raiser_kind="consultation",
        hand_raiser_min_fit=30,
    )
    ScoringModel.objects.filter(status=ModelStatus.PUBLISHED).update(status=ModelStatus.ARCHIVED)
    return model


def test_a_publish_makes_one_wave_and_a_hand_raiser_is_never_held_in_it(monkeypatch):
    from scoring.tasks import rescore_run_task

    monkeypatch.setattr(rescore_run_task, "apply_async", lambda *args, **kwargs: None)
    with time_machine.travel(NOW, tick=False):
        make_team("Kanto", reps=0, default=True)  # nobody has room: all of a wave waits
        model = _model_with_a_hand_raiser()
        by_score, by_hand = LeadFactory(role="executive"), LeadFactory(role="executive")
        EngagementEventFactory(lead=by_score, kind="email_click", occurred_at=NOW)
        EngagementEventFactory(lead=by_hand, kind="email_click", occurred_at=NOW)
        EngagementEventFactory(lead=by_hand, kind="consultation", occurred_at=NOW)
        run = publish(model)
        rescore_run_execute(run_id=run.pk)

    wave = MqlWave.objects.get()
    assert (wave.kind, wave.label, wave.key) == (
        WaveKind.PUBLISH,
        f"Scoring model v{model.version} published",
        f"rescore:{run.pk}",
    )
    assert wave.finished_at == NOW
    assert (wave.mqls, wave.assigned, wave.held) == (1, 0, 1)
    held = Handoff.objects.get(lead=by_score)
    assert (held.wave_id, held.assigned_to_id) == (wave.pk, None)
    assert not SlaTimer.objects.filter(handoff=held).exists()
    # The hand-raiser took the one-by-one path: no wave, its clock runs from the MQL.
    raised = Handoff.objects.get(lead=by_hand)
    assert (raised.wave_id, raised.assigned_to_id) == (None, None)
    assert SlaTimer.objects.get(handoff=raised, kind=TimerKind.FIRST_CONTACT).started_at == NOW
    assert RescoreRun.objects.get(pk=run.pk).moved_to_mql == 2


def test_a_publish_hands_its_hand_raisers_to_the_reps_before_the_wave(monkeypatch):
    """One rep with room for one; the lead made MQL by its score has the lower id, yet
    the hand-raiser gets the rep, and the other waits in the wave with no clock."""
    from scoring.tasks import rescore_run_task

    monkeypatch.setattr(rescore_run_task, "apply_async", lambda *args, **kwargs: None)
    with time_machine.travel(NOW, tick=False):
        _team, (rep,), _boss = make_team("Kanto", reps=1, default=True)
        set_profile(rep, max_open_handoffs=1)
        model = _model_with_a_hand_raiser()
        by_score, by_hand = LeadFactory(role="executive"), LeadFactory(role="executive")
        EngagementEventFactory(lead=by_score, kind="email_click", occurred_at=NOW)
        EngagementEventFactory(lead=by_hand, kind="consultation", occurred_at=NOW)
        run = publish(model)
        rescore_run_execute(run_id=run.pk)

    assert by_score.pk < by_hand.pk
    raised = Handoff.objects.get(lead=by_hand)
    assert (raised.wave_id, raised.assigned_to_id) == (None, rep.pk)
    assert SlaTimer.objects.get(handoff=raised, kind=TimerKind.FIRST_CONTACT).started_at == NOW
    held = Handoff.objects.get(lead=by_score)
    assert (held.wave_id, held.assigned_to_id) == (MqlWave.objects.get().pk, None)
    assert not SlaTimer.objects.filter(handoff=held).exists()
    assert (MqlWave.objects.get().assigned, MqlWave.objects.get().held) == (0, 1)


@pytest.mark.parametrize("chunk", [2000, 2, 1])
def test_the_forecast_says_per_team_how_many_a_wave_hands_out_and_how_many_wait(chunk, monkeypatch):
    """With chunks of 2 or 1 the forecast routes the first two leads (the rep's room)
    and only counts the rest by their company, which must come to the same rows."""
    from handoff.bulk import wave_forecast

    monkeypatch.setattr("handoff.bulk.FORECAST_CHUNK", chunk)
    with time_machine.travel(NOW, tick=False):
        team, (rep,), _boss = make_team("Kanto", reps=1, default=True)
        set_profile(rep, max_open_handoffs=2)
        west, (west_rep,), _boss = make_team("Kansai", reps=1)
        set_profile(west_rep, away=True)
        from handoff.models import RoutingRule

        RoutingRule.objects.create(name="west", prefectures=["大阪府"], team=west)
        from tests.factories import CompanyFactory

        east = sorted(LeadFactory.create_batch(4), key=lambda lead: lead.pk)
        osaka = LeadFactory(company=CompanyFactory(prefecture="大阪府"))

        rows = wave_forecast(
            lead_ids=[*(lead.pk for lead in east), osaka.pk], never_held={east[3].pk}
        )

    assert rows == [
        {"team": "Kansai", "team_id": west.pk, "leads": 1, "free": 0, "handed": 0, "waiting": 1},
        # The hand-raiser queued too, but it is not held: its clock runs from the MQL.
        {"team": "Kanto", "team_id": team.pk, "leads": 4, "free": 2, "handed": 2, "waiting": 1},
    ]
    # A forecast writes nothing.
    assert not Handoff.objects.exists()


def test_managers_see_the_wave_in_the_queue_banner(client):
    with time_machine.travel(NOW, tick=False):
        _team, _rep, _leads, wave = _wave_of_five()
    manager = _team.managers.get()

    client.force_login(manager)
    body = client.get("/inbox/").content.decode()

    assert (
        f'<p class="queue-alert" id="queue-wave-{wave.pk}" role="status">A wave of MQLs: '
        "Scoring model v2 (2026-11-02 10:00) made 5 MQLs; 2 went to reps at once and 3 of "
        "them wait here. Their SLA clocks start when a rep gets them.</p>"
    ) in body


def _directors_qualify():
    """A published model that makes every director an MQL, events or not."""
    model = make_model(
        fit=[{"field": "role", "operator": "equals", "value": "director", "points": 40}],
        fit_threshold=30,
        engagement_threshold=0,
    )
    ScoringModel.objects.filter(status=ModelStatus.PUBLISHED).update(status=ModelStatus.ARCHIVED)
    ScoringModel.objects.filter(pk=model.pk).update(status=ModelStatus.PUBLISHED)
    return model


def _csv(rows: int) -> bytes:
    lines = ["メールアドレス,役職"] + [f"buyer{n}@example.jp,営業部長" for n in range(rows)]
    return "\r\n".join(lines).encode("utf-8")


def test_a_large_csv_import_makes_its_mqls_one_wave_held_above_the_teams_room():
    from integrations.services import leads_import_csv
    from scoring.services import IMPORT_WAVE_MIN

    with time_machine.travel(NOW, tick=False):
        _team, (rep,), _boss = make_team("Kanto", reps=1, default=True)
        set_profile(rep, max_open_handoffs=2)
        _directors_qualify()
        report = leads_import_csv(data=_csv(IMPORT_WAVE_MIN), source="fair")

    wave = MqlWave.objects.get()
    assert (wave.kind, wave.label) == (WaveKind.IMPORT, f"Import of {IMPORT_WAVE_MIN} rows (fair)")
    assert (report.created, report.mqls) == (IMPORT_WAVE_MIN, IMPORT_WAVE_MIN)
    assert (wave.mqls, wave.assigned, wave.held) == (IMPORT_WAVE_MIN, 2, IMPORT_WAVE_MIN - 2)
    assert wave.finished_at == NOW
    assert Handoff.objects.filter(wave=wave, assigned_to=rep).count() == 2
    assert SlaTimer.objects.filter(kind=TimerKind.FIRST_CONTACT).count() == 2


def test_a_small_csv_import_keeps_the_one_by_one_path_and_its_clocks():
    from integrations.services import leads_import_csv

    with time_machine.travel(NOW, tick=False):
        make_team("Kanto", reps=0, default=True)
        _directors_qualify()
        report = leads_import_csv(data=_csv(3), source="fair")

    assert (report.created, report.mqls) == (3, 0)
    assert not MqlWave.objects.exists()
    assert Handoff.objects.filter(wave__isnull=True, assigned_to__isnull=True).count() == 3
    assert SlaTimer.objects.filter(kind=TimerKind.FIRST_CONTACT, started_at=NOW).count() == 3
