"""A bulk rescore and intake scoring the same lead at the same moment do not deadlock,
and a rescore batch does not hold a team's routing lock while it works."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections, transaction

from handoff.models import Handoff, Team
from leadflow.models import Lead, Stage, StageTransition
from scoring import services
from scoring.models import ModelStatus, RunStatus, ScoringModel
from scoring.tasks import rescore_run_task
from tests.factories import EngagementEventFactory, LeadFactory
from tests.scoring.conftest import T0, make_model, publish

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _qualifying_model_and_lead(monkeypatch):
    model = make_model(
        fit=[{"field": "role", "operator": "equals", "value": "executive", "points": 40}],
        engagement=[{"kind": "email_click", "points": 25}],
    )
    ScoringModel.objects.filter(status=ModelStatus.PUBLISHED).update(status=ModelStatus.ARCHIVED)
    lead = LeadFactory(role="executive")
    EngagementEventFactory.create_batch(2, lead=lead, kind="email_click", occurred_at=T0)
    monkeypatch.setattr(rescore_run_task, "apply_async", lambda *args, **kwargs: None)
    return model, lead


def _fail_fast() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '5s'")


def test_intake_scoring_a_lead_while_a_rescore_batch_promotes_it_does_not_deadlock(monkeypatch):
    model, lead = _qualifying_model_and_lead(monkeypatch)
    run = publish(model)
    locked, scored = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def intake() -> None:
        # What intake does: lock the lead (lead_upsert), then score it (its score row).
        try:
            _fail_fast()
            with transaction.atomic():
                held = Lead.objects.select_for_update(no_key=True).get(pk=lead.pk)
                locked.set()
                assert scored.wait(timeout=30)
                services.lead_score_changes(lead=held)
        except BaseException as error:
            errors.append(error)
        finally:
            locked.set()
            connections.close_all()

    original = services.upsert_scores

    def upsert_then_let_intake_wait(*args, **kwargs):
        written = original(*args, **kwargs)  # the batch now holds the lead's score row
        scored.set()
        time.sleep(1)  # intake is waiting for that row by now
        return written

    monkeypatch.setattr(services, "upsert_scores", upsert_then_let_intake_wait)
    thread = threading.Thread(target=intake)
    thread.start()
    try:
        assert locked.wait(timeout=30)
        _fail_fast()
        services.rescore_run_step(run_id=run.pk)
    except BaseException as error:
        errors.append(error)
    finally:
        scored.set()
        thread.join(timeout=30)

    assert errors == []
    assert Lead.objects.get(pk=lead.pk).stage == Stage.MQL
    assert StageTransition.objects.filter(lead=lead, to_stage=Stage.MQL).count() == 1
    run.refresh_from_db()
    assert run.status == RunStatus.DONE


def test_a_rescore_batch_does_not_hold_the_team_lock_it_routed_with(monkeypatch):
    model, lead = _qualifying_model_and_lead(monkeypatch)
    team = Team.objects.create(name="east", is_default=True)
    run = publish(model)
    batch_committed: list[bool] = []
    original = services._promote_leads

    def promote_then_check_the_team(*args, **kwargs):
        moved = original(*args, **kwargs)
        if moved:
            # Another connection routes the next MQL of the team: it must get the lock.
            def other_worker() -> None:
                try:
                    _fail_fast()
                    with transaction.atomic():
                        Team.objects.select_for_update(no_key=True).get(pk=team.pk)
                    batch_committed.append(True)
                except BaseException:
                    batch_committed.append(False)
                finally:
                    connections.close_all()

            thread = threading.Thread(target=other_worker)
            thread.start()
            thread.join(timeout=30)
        return moved

    monkeypatch.setattr(services, "_promote_leads", promote_then_check_the_team)
    services.rescore_run_step(run_id=run.pk)

    assert batch_committed == [True]
    assert Handoff.objects.get(lead=lead).team == team
