"""A wave of MQLs (a publish) does not flood sales: above the teams' free capacity its
MQLs wait in the queue with their SLA clocks stopped, the clocks start when a rep gets
them, and a hand-raiser is never held back."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from handoff.models import Assignment, AssignmentVia, Handoff, HandoffTimeline, QueueNotice
from handoff.routing import handoff_assign_from_queue
from handoff.tasks import notify_queued_task, release_from_wave_task
from leadflow.lifecycle import BulkMove, leads_transition_bulk, mql_wave_start
from leadflow.models import EngagementEvent, MqlWave, Stage, WaveKind
from scoring.models import ModelStatus, RescoreRun, ScoringModel
from scoring.services import rescore_run_execute
from sla.models import SlaTimer, TimerKind
from sla.selectors import timer_policies_with_calendars
from sla.services import timer_deadline
from tests.factories import EngagementEventFactory, LeadFactory
from tests.handoff.helpers import make_team, make_wave, set_profile
from tests.integrations.conftest import deliver, make_source, post
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


def test_a_large_csv_import_makes_its_mqls_one_wave_held_above_the_teams_room(settings):
    from integrations.models import LeadImport
    from integrations.services import leads_import_csv
    from integrations.tasks import hand_off_lead_import
    from scoring.services import IMPORT_WAVE_MIN

    settings.LANGUAGE_CODE = "en"  # the wave's name is in the site's language
    with time_machine.travel(NOW, tick=False):
        _team, (rep,), _boss = make_team("Kanto", reps=1, default=True)
        set_profile(rep, max_open_handoffs=2)
        _directors_qualify()
        report = leads_import_csv(data=_csv(IMPORT_WAVE_MIN), source="fair")
        assert not MqlWave.objects.exists()  # the MQLs go on in the task, after the rows
        hand_off_lead_import(report.lead_import_id)

    wave = MqlWave.objects.get()
    assert (wave.kind, wave.label) == (WaveKind.IMPORT, f"Import of {IMPORT_WAVE_MIN} rows (fair)")
    assert report.created == IMPORT_WAVE_MIN
    assert LeadImport.objects.get(pk=report.lead_import_id).mqls == IMPORT_WAVE_MIN
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

    assert (report.created, report.lead_import_id) == (3, None)
    assert not MqlWave.objects.exists()
    assert Handoff.objects.filter(wave__isnull=True, assigned_to__isnull=True).count() == 3
    assert SlaTimer.objects.filter(kind=TimerKind.FIRST_CONTACT, started_at=NOW).count() == 3


# --- a held lead that raises its hand is held back no longer (handoff.waves) ----------------


def _hand_raiser_published() -> ScoringModel:
    model = _model_with_a_hand_raiser()
    ScoringModel.objects.filter(pk=model.pk).update(status=ModelStatus.PUBLISHED)
    return model


def _held_wave(*, room: int = 1, **lead_fields):
    """Kanto's one rep with room for `room`; a publish's wave of three executives (fit 40,
    a hand-raiser from 30): the first goes to the rep, the other two are held."""
    team, (rep,), manager = make_team("Kanto", reps=1, default=True)
    set_profile(rep, max_open_handoffs=room)
    _hand_raiser_published()
    leads = sorted(
        LeadFactory.create_batch(3, **{"role": "executive", **lead_fields}),
        key=lambda lead: lead.pk,
    )
    wave = make_wave(leads)
    handoffs = list(Handoff.objects.filter(lead__in=leads).order_by("lead_id"))
    assert [h.clock_waits for h in handoffs] == [False, True, True]
    return team, rep, manager, handoffs, wave


@pytest.fixture
def releases(monkeypatch):
    """The releases sent to the broker after a commit: (handoff id, event id) each."""
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(
        release_from_wave_task, "apply_async", lambda args, **options: sent.append(tuple(args))
    )
    return sent


def _event(lead, kind: str, event_id: str) -> dict:
    return {
        "id": event_id,
        "type": kind,
        "occurred_at": "2026-11-02T12:55:00+09:00",
        "lead": {"email": lead.email},
    }


def _raise_hand(client, source, lead, capture, *, kind="consultation", event_id="evt-1"):
    """An event from the MA tool, processed as the worker does, its commit's tasks sent."""
    with capture(execute=True):
        inbound = deliver(client, source, _event(lead, kind, event_id))
    return inbound


def _release_all(releases) -> list[bool]:
    """What the worker does with the releases sent: run each task."""
    return [release_from_wave_task(*args) for args in releases]


def test_a_held_lead_that_raises_its_hand_goes_to_a_rep_with_room_at_once(
    client, releases, django_capture_on_commit_callbacks
):
    with time_machine.travel(NOW, tick=False):
        _team, rep, _manager, (_given, older, raiser), wave = _held_wave()
        source = make_source("generic")
    with time_machine.travel(LATER, tick=False):
        set_profile(rep, max_open_handoffs=2)  # room for one more, nobody drained the queue
        _raise_hand(client, source, raiser.lead, django_capture_on_commit_callbacks)
        event = EngagementEvent.objects.get(lead=raiser.lead, kind="consultation")
        assert releases == [(raiser.pk, event.pk)]
        assert _release_all(releases) == [True]

    raiser.refresh_from_db()
    # The hand-raiser, not the older MQL first in the queue, got the rep's room.
    assert (raiser.assigned_to_id, raiser.assigned_at, raiser.wave_released_at) == (
        rep.pk,
        LATER,
        LATER,
    )
    assert raiser.wave_id == wave.pk  # what made it an MQL stays on record
    timers = {t.kind: t for t in SlaTimer.objects.filter(handoff=raiser)}
    first_contact = timers[TimerKind.FIRST_CONTACT]
    assert (first_contact.started_at, first_contact.due_at) == (LATER, _first_contact_due(LATER))
    assert (first_contact.rep_id, first_contact.rep_since) == (rep.pk, LATER)
    assert {t.started_at for t in timers.values()} == {LATER}
    assert raiser.next_due_at == _first_contact_due(LATER)
    (assignment,) = Assignment.objects.filter(handoff=raiser)
    assert (assignment.via, assignment.rep_id, assignment.assigned_at) == (
        AssignmentVia.ROUTING,
        rep.pk,
        LATER,
    )
    assert assignment.reason == (
        "Raised a hand (Individual consultation) while waiting in the MQL wave "
        "“Scoring model v2”: left the wave and routed at once."
    )
    assert HandoffTimeline.objects.get(handoff=raiser).assigned_at == LATER
    # The older one still waits in the wave, its clock stopped.
    older.refresh_from_db()
    assert older.clock_waits and not SlaTimer.objects.filter(handoff=older).exists()


def test_a_held_lead_that_raises_its_hand_with_nobody_free_waits_as_any_queued_mql(
    client, releases, django_capture_on_commit_callbacks, monkeypatch
):
    notices: list[int] = []
    monkeypatch.setattr(
        notify_queued_task, "apply_async", lambda args, **options: notices.extend(args)
    )
    with time_machine.travel(NOW, tick=False):
        _team, _rep, manager, (_given, older, raiser), _wave = _held_wave()
        source = make_source("generic")
    with time_machine.travel(LATER, tick=False):
        _raise_hand(client, source, raiser.lead, django_capture_on_commit_callbacks)
        with django_capture_on_commit_callbacks(execute=True):
            assert _release_all(releases) == [True]

    raiser.refresh_from_db()
    assert (raiser.assigned_to_id, raiser.wave_released_at, raiser.clock_waits) == (
        None,
        LATER,
        False,
    )
    # Out of the wave's hold: its clocks run from the hand-raise, the managers are told.
    first_contact = SlaTimer.objects.get(handoff=raiser, kind=TimerKind.FIRST_CONTACT)
    assert (first_contact.started_at, first_contact.rep_id) == (LATER, None)
    assert raiser.next_due_at == _first_contact_due(LATER)
    notice = QueueNotice.objects.get()
    assert (notice.handoff_id, notice.created_at) == (raiser.pk, LATER)
    assert notices == [notice.pk]
    assert not Assignment.objects.filter(handoff=raiser).exists()
    # The queue's banner counts only the one still held; the page says why it left.
    client.force_login(manager)
    inbox = client.get("/inbox/").content.decode()
    assert "2 went to reps at once" not in inbox
    assert "1 went to reps at once and 1 of them wait here." in inbox
    page = client.get(f"/inbox/handoffs/{raiser.pk}/").content.decode()
    assert '<li id="wave-released">' in page
    assert "The lead raised its hand while its MQL waited in the wave" in page
    older.refresh_from_db()
    assert older.clock_waits


def test_a_lead_not_held_keeps_todays_path_when_it_raises_its_hand(
    client, releases, django_capture_on_commit_callbacks
):
    with time_machine.travel(NOW, tick=False):
        _team, rep, _manager, (given, _older, _raiser), _wave = _held_wave()
        fresh = LeadFactory(role="executive")
        source = make_source("generic")
        timers_before = list(SlaTimer.objects.order_by("pk").values_list("pk", "started_at"))
    with time_machine.travel(LATER, tick=False):
        # The wave's MQL the rep already has, and a known lead the hand-raise makes an MQL.
        _raise_hand(client, source, given.lead, django_capture_on_commit_callbacks)
        _raise_hand(client, source, fresh, django_capture_on_commit_callbacks, event_id="evt-fresh")

    assert releases == []
    given.refresh_from_db()
    assert (given.assigned_to_id, given.wave_released_at) == (rep.pk, None)
    assert Assignment.objects.filter(handoff=given).count() == 1
    made = Handoff.objects.get(lead=fresh)
    # One by one, never in a wave: queued (the rep is full), its clock from the MQL.
    assert (made.wave_id, made.assigned_to_id, made.created_at) == (None, None, LATER)
    assert SlaTimer.objects.get(handoff=made, kind=TimerKind.FIRST_CONTACT).started_at == LATER
    assert (
        list(SlaTimer.objects.exclude(handoff=made).order_by("pk").values_list("pk", "started_at"))
        == timers_before
    )


def test_a_second_hand_raise_and_a_redelivered_webhook_change_nothing_more(
    client, releases, django_capture_on_commit_callbacks
):
    with time_machine.travel(NOW, tick=False):
        _team, rep, _manager, (_given, _older, raiser), _wave = _held_wave(room=1)
        source = make_source("generic")
    with time_machine.travel(LATER, tick=False):
        set_profile(rep, max_open_handoffs=2)
        _raise_hand(client, source, raiser.lead, django_capture_on_commit_callbacks)
        with django_capture_on_commit_callbacks(execute=True):
            again = post(client, source, _event(raiser.lead, "consultation", "evt-1"))
        assert (again.status_code, again.json()["status"]) == (200, "duplicate")
        # The worker runs the one release twice (a redelivered task): the second finds
        # nothing held.
        assert _release_all(releases * 2) == [True, False]
    with time_machine.travel(LATER + dt.timedelta(hours=1), tick=False):
        _raise_hand(
            client, source, raiser.lead, django_capture_on_commit_callbacks, event_id="evt-2"
        )

    assert len(releases) == 1  # neither the duplicate nor the later hand-raise sent one
    assert EngagementEvent.objects.filter(lead=raiser.lead, kind="consultation").count() == 2
    raiser.refresh_from_db()
    assert (raiser.assigned_to_id, raiser.wave_released_at) == (rep.pk, LATER)
    assert Assignment.objects.filter(handoff=raiser).count() == 1
    assert set(SlaTimer.objects.filter(handoff=raiser).values_list("started_at", flat=True)) == {
        LATER
    }


@pytest.mark.parametrize(
    ("role", "kind"),
    [
        ("executive", "email_click"),  # fit 40, but not the hand-raiser's event
        ("staff", "consultation"),  # the hand-raiser's event, with fit 0 below its 30
    ],
)
def test_a_held_lead_stays_held_on_another_event_or_a_hand_raise_below_the_fit(
    client, releases, django_capture_on_commit_callbacks, role, kind
):
    with time_machine.travel(NOW, tick=False):
        _team, _rep, _manager, (_given, held, _other), _wave = _held_wave(role=role)
        source = make_source("generic")
    with time_machine.travel(LATER, tick=False):
        _raise_hand(client, source, held.lead, django_capture_on_commit_callbacks, kind=kind)

    assert EngagementEvent.objects.filter(lead=held.lead, kind=kind).count() == 1
    assert releases == []
    held.refresh_from_db()
    assert held.clock_waits and held.wave_released_at is None
    assert not SlaTimer.objects.filter(handoff=held).exists()


def test_a_release_that_comes_after_the_queue_gave_the_handoff_out_does_nothing(
    client, releases, django_capture_on_commit_callbacks
):
    with time_machine.travel(NOW, tick=False):
        team, rep, _manager, (_given, older, _raiser), _wave = _held_wave()
        source = make_source("generic")
    with time_machine.travel(LATER, tick=False):
        _raise_hand(client, source, older.lead, django_capture_on_commit_callbacks)
        set_profile(rep, max_open_handoffs=2)
        (drained,) = handoff_assign_from_queue(team=team)  # before the worker's release
        assert drained.pk == older.pk
        assert _release_all(releases) == [False]

    older.refresh_from_db()
    assert (older.assigned_to_id, older.wave_released_at) == (rep.pk, None)
    assert list(Assignment.objects.filter(handoff=older).values_list("via", flat=True)) == [
        AssignmentVia.QUEUE
    ]


def test_the_release_note_is_written_in_the_sites_language(
    client, releases, django_capture_on_commit_callbacks, settings
):
    with time_machine.travel(NOW, tick=False):
        _team, rep, _manager, (_given, _older, raiser), _wave = _held_wave()
        source = make_source("generic")
    with time_machine.travel(LATER, tick=False):
        set_profile(rep, max_open_handoffs=2)
        _raise_hand(client, source, raiser.lead, django_capture_on_commit_callbacks)
        settings.LANGUAGE_CODE = "ja"
        _release_all(releases)

    assert Assignment.objects.get(handoff=raiser).reason == (
        "MQLウェーブ「Scoring model v2」で待機中にハンドレイザーのイベント（個別相談会）が"
        "ありました。ウェーブを離れ、すぐに振り分けました。"
    )
