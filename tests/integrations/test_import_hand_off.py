"""A large CSV import hands its MQLs on in a task after its rows (one wave), so a crash or
a killed web worker mid-file still hands on every row it committed, and leads that were
busy during the hand-off are tried again."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import translation

from integrations import services, tasks
from integrations.models import ImportedLead, LeadImport
from leadflow import locks
from leadflow.models import Lead, MqlWave, Stage, WaveKind
from scoring.services import IMPORT_WAVE_MIN
from tests.factories import UserFactory
from tests.handoff.helpers import make_team
from tests.handoff.test_mql_waves import _csv, _directors_qualify

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 2, 1, 0, tzinfo=dt.UTC)
ROWS = IMPORT_WAVE_MIN + 5


@pytest.fixture
def qualifying(settings):
    """Every director becomes an MQL; a team with nobody, so the MQLs wait in its queue."""
    settings.LANGUAGE_CODE = "en"
    make_team("Kanto", reps=0, default=True)
    _directors_qualify()


@pytest.fixture
def sent(monkeypatch) -> list[tuple[int, float]]:
    """The hand-off tasks handed to the broker: (import id, countdown)."""
    calls: list[tuple[int, float]] = []
    monkeypatch.setattr(
        tasks.hand_off_lead_import,
        "apply_async",
        lambda args, countdown=0.0: calls.append((args[0], countdown)),
    )
    return calls


def _mqls() -> list[str]:
    return sorted(Lead.objects.filter(stage=Stage.MQL).values_list("email", flat=True))


def test_a_large_import_sends_its_hand_off_at_the_start_and_at_the_end_after_commit(
    qualifying, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        report = services.leads_import_csv(data=_csv(ROWS), source="fair")

    lead_import = LeadImport.objects.get()
    assert report.lead_import_id == lead_import.pk
    # The watchdog (runs if the import goes silent), then the hand-off at the end.
    assert sent == [(lead_import.pk, services.IMPORT_STALL_SECONDS), (lead_import.pk, 0.0)]
    assert (lead_import.rows, lead_import.finished_at is not None) == (ROWS, True)
    assert ImportedLead.objects.filter(lead_import=lead_import, pending=True).count() == ROWS
    assert _mqls() == []  # nothing in the request


def test_the_task_hands_every_imported_lead_on_once_as_one_wave(qualifying, sent):
    user = UserFactory(username="marketer")
    with time_machine.travel(NOW, tick=False):
        report = services.leads_import_csv(data=_csv(ROWS), source="fair", started_by=user)
        tasks.hand_off_lead_import(report.lead_import_id)
        tasks.hand_off_lead_import(report.lead_import_id)  # a redelivery

    assert _mqls() == sorted(f"buyer{n}@example.jp" for n in range(ROWS))
    wave = MqlWave.objects.get()
    assert (wave.kind, wave.label, wave.started_by, wave.mqls) == (
        WaveKind.IMPORT,
        f"Import of {ROWS} rows (fair)",
        user,
        ROWS,
    )
    lead_import = LeadImport.objects.get()
    assert (lead_import.mqls, lead_import.hand_off_runs, lead_import.handed_off_at) == (
        ROWS,
        1,
        NOW,
    )
    assert not ImportedLead.objects.filter(pending=True).exists()
    assert sent == []  # nothing to run again


def test_an_error_mid_file_still_hands_on_the_rows_that_committed(
    qualifying, sent, monkeypatch, django_capture_on_commit_callbacks
):
    committed = IMPORT_WAVE_MIN + 2
    calls = [0]
    original = services.lead_upsert

    def failing(**kwargs):
        calls[0] += 1
        if calls[0] > committed:
            raise RuntimeError("worker bug")
        return original(**kwargs)

    monkeypatch.setattr(services, "lead_upsert", failing)

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        services.leads_import_csv(data=_csv(ROWS), source="fair")
    lead_import = LeadImport.objects.get()
    assert sent[-1] == (lead_import.pk, 0.0)  # the end's send, with the error

    tasks.hand_off_lead_import(lead_import.pk)

    assert _mqls() == sorted(f"buyer{n}@example.jp" for n in range(committed))
    assert Lead.objects.count() == committed
    assert MqlWave.objects.get().label == f"Import of {committed + 1} rows (fair)"


def test_an_import_killed_without_its_end_is_handed_on_once_it_went_silent(
    qualifying, sent, monkeypatch
):
    # A web worker killed at its timeout runs no `finally`: as if the end never came.
    monkeypatch.setattr(services, "_lead_import_finish", lambda lead_import, rows: None)
    with time_machine.travel(NOW, tick=False):
        report = services.leads_import_csv(data=_csv(ROWS), source="fair")
    assert LeadImport.objects.get().finished_at is None

    # The watchdog comes early: the import may still be going, it waits for the rest.
    with time_machine.travel(NOW + dt.timedelta(seconds=60), tick=False):
        tasks.hand_off_lead_import(report.lead_import_id)
    assert sent == [(report.lead_import_id, services.IMPORT_STALL_SECONDS - 60)]
    assert _mqls() == []

    with time_machine.travel(NOW + dt.timedelta(seconds=301), tick=False):
        tasks.hand_off_lead_import(report.lead_import_id)
    assert len(_mqls()) == ROWS
    assert sent == [(report.lead_import_id, services.IMPORT_STALL_SECONDS - 60)]


def _busy(monkeypatch, lead_id: int, times: int | None) -> None:
    """`lead_id` is held by another transaction for the first `times` bulk moves (all,
    with None): the bulk lock (SKIP LOCKED) leaves it out, as on PostgreSQL."""
    original = locks.leads_for_bulk_change
    held = [0]

    def skipping(lead_ids, *, stages):
        locked = original(lead_ids, stages=stages)
        if lead_id in locked and (times is None or held[0] < times):
            held[0] += 1
            del locked[lead_id]
        return locked

    monkeypatch.setattr(locks, "leads_for_bulk_change", skipping)


def test_a_lead_busy_during_the_hand_off_is_tried_again_later(qualifying, sent, monkeypatch):
    report = services.leads_import_csv(data=_csv(ROWS), source="fair")
    busy = Lead.objects.get(email="buyer3@example.jp")
    _busy(monkeypatch, busy.pk, times=1)

    tasks.hand_off_lead_import(report.lead_import_id)

    assert len(_mqls()) == ROWS - 1
    assert sent == [(report.lead_import_id, services.IMPORT_RETRY_SECONDS)]
    assert list(ImportedLead.objects.filter(pending=True).values_list("lead_id", flat=True)) == [
        busy.pk
    ]
    assert LeadImport.objects.get().handed_off_at is None

    tasks.hand_off_lead_import(report.lead_import_id)  # the retry, a minute later

    assert len(_mqls()) == ROWS
    lead_import = LeadImport.objects.get()
    assert (lead_import.mqls, lead_import.hand_off_runs) == (ROWS, 2)
    assert lead_import.handed_off_at is not None
    assert sent == [(report.lead_import_id, services.IMPORT_RETRY_SECONDS)]
    # The retry's MQL joined the import's one wave.
    assert list(MqlWave.objects.values_list("key", "mqls")) == [(f"import:{lead_import.pk}", ROWS)]


def test_a_lead_busy_every_time_is_given_up_after_a_bounded_number_of_runs(
    qualifying, sent, monkeypatch
):
    report = services.leads_import_csv(data=_csv(ROWS), source="fair")
    busy = Lead.objects.get(email="buyer3@example.jp")
    _busy(monkeypatch, busy.pk, times=None)

    for _run in range(services.IMPORT_HAND_OFF_RUNS):
        tasks.hand_off_lead_import(report.lead_import_id)

    assert len(sent) == services.IMPORT_HAND_OFF_RUNS - 1
    assert Lead.objects.get(pk=busy.pk).stage == Stage.KNOWN
    assert not ImportedLead.objects.filter(pending=True).exists()
    assert LeadImport.objects.get().handed_off_at is not None


def test_a_small_import_keeps_no_record_and_sends_no_task(qualifying, sent):
    report = services.leads_import_csv(data=_csv(3), source="fair")

    assert report.lead_import_id is None
    assert not LeadImport.objects.exists()
    assert (len(_mqls()), sent) == (3, [])  # each row's MQL in the row's transaction


def test_the_beat_sweep_sends_again_the_hand_off_of_an_import_nobody_handed_on(qualifying, sent):
    with time_machine.travel(NOW, tick=False):
        report = services.leads_import_csv(data=_csv(ROWS), source="fair")
    lead_import = LeadImport.objects.get()

    with time_machine.travel(NOW + dt.timedelta(seconds=599), tick=False):
        assert tasks.hand_off_stale_lead_imports() == 0  # its own tasks may still come
    with time_machine.travel(NOW + dt.timedelta(seconds=601), tick=False):
        assert tasks.hand_off_stale_lead_imports() == 1
    assert sent == [(lead_import.pk, 0.0)]
    tasks.hand_off_lead_import(report.lead_import_id)
    with time_machine.travel(NOW + dt.timedelta(seconds=900), tick=False):
        assert tasks.hand_off_stale_lead_imports() == 0


def test_a_hand_off_that_keeps_failing_is_sent_again_only_while_it_has_runs_left(
    qualifying, sent, monkeypatch
):
    def broken(**kwargs):
        raise RuntimeError("a bug in the hand-off")

    monkeypatch.setattr(services, "leads_hand_off_imported", broken)
    with time_machine.travel(NOW, tick=False):
        report = services.leads_import_csv(data=_csv(ROWS), source="fair")

    later = NOW
    for _run in range(services.IMPORT_HAND_OFF_RUNS):
        later += dt.timedelta(seconds=601)
        with time_machine.travel(later, tick=False):
            assert tasks.hand_off_stale_lead_imports() == 1
            with pytest.raises(RuntimeError):
                tasks.hand_off_lead_import(report.lead_import_id)
    with time_machine.travel(later + dt.timedelta(seconds=601), tick=False):
        assert tasks.hand_off_stale_lead_imports() == 0

    lead_import = LeadImport.objects.get()
    assert (lead_import.hand_off_runs, lead_import.handed_off_at) == (
        services.IMPORT_HAND_OFF_RUNS,
        None,
    )


@pytest.mark.parametrize(
    "language, text",
    [
        (
            "en",
            "The leads of this import that qualify are made MQLs and handed on to sales in "
            "the background, as one wave; they reach the queue within a few minutes.",
        ),
        (
            "ja",
            "このインポートで条件を満たしたリードは、バックグラウンドでまとめて MQL "
            "になり営業に引き渡されます。数分以内にキューに表示されます。",
        ),
    ],
)
def test_the_admin_import_says_the_hand_off_runs_in_the_background_and_by_whom(
    client, admin_pages, qualifying, sent, language, text
):
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(admin)
    upload = SimpleUploadedFile("fair.csv", _csv(ROWS), content_type="text/csv")

    with translation.override(language):
        response = client.post(
            "/admin/integrations/source/import-csv/",
            {"file": upload, "source": "fair", "dry_run": ""},
            HTTP_ACCEPT_LANGUAGE=language,
        )

    assert response.status_code == 200
    assert f'<li class="info">{text}</li>' in response.content.decode()
    assert LeadImport.objects.get().started_by == admin
    assert _mqls() == []
