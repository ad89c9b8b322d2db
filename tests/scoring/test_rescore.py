"""Publishing: the bulk rescore (batches, progress, MQL moves, re-runs) and its equality
with the incremental path."""

import datetime as dt
import random

import pytest
import time_machine
from django.db import connection

from leadflow.models import Stage, StageTransition
from scoring.models import LeadScore, ModelStatus, RescoreRun, RunStatus, ScoringModel
from scoring.selectors import lead_score_explain
from scoring.services import (
    lead_score_event,
    rescore_run_start,
    rescore_run_step,
    scoring_model_clone,
    scoring_model_publish,
)
from scoring.tasks import rescore_run_task
from tests.factories import CompanyFactory, EngagementEventFactory, LeadFactory
from tests.scoring.conftest import T0, make_model, publish

KINDS = [
    "page_view",
    "page_view",
    "page_view",
    "email_open",
    "email_click",
    "document_download",
    "unsubscribe",
    "consultation",
    "form_submit",
]
URLS = ["/product/a", "/pricing", "/blog/x", "/PRODUCT/b", None]


def rich_model():
    return make_model(
        categories=[{"name": "size", "min_points": 0, "max_points": 20}],
        fit=[
            {
                "category": "size",
                "field": "company.employee_count",
                "operator": "between",
                "min_value": 100,
                "points": 15,
            },
            {
                "category": "size",
                "field": "attributes.budget",
                "operator": "between",
                "min_value": 1000,
                "points": 10,
            },
            {"field": "role", "operator": "one_of", "value": "executive\ndirector", "points": 20},
            {"field": "email", "operator": "contains", "value": "@free.jp", "points": -10},
        ],
        engagement=[
            {
                "label": "pricing",
                "kind": "page_view",
                "property_key": "url",
                "operator": "contains",
                "value": "/pricing",
                "points": 15,
                "half_life_days": 7,
            },
            {
                "label": "product",
                "kind": "page_view",
                "property_key": "url",
                "operator": "contains",
                "value": "/product",
                "points": 5,
                "cap_points": 12,
                "half_life_days": 30,
            },
            {"label": "views", "kind": "page_view", "points": 2, "cap_points": 5},
            {
                "label": "open",
                "kind": "email_open",
                "points": 1,
                "cap_points": 3,
                "cap_period": "week",
                "half_life_days": 3,
            },
            {"label": "click", "kind": "email_click", "points": 3},
            {
                "label": "download",
                "kind": "document_download",
                "points": 10,
                "cap_points": 15,
                "cap_period": "month",
                "half_life_days": 90,
            },
            {"label": "unsub", "kind": "unsubscribe", "points": -20},
            {"label": "consult", "kind": "consultation", "points": 25, "half_life_days": 1},
        ],
        fit_threshold=30,
        engagement_threshold=50,
        hand_raiser_kind="consultation",
        hand_raiser_min_fit=20,
    )


def seed_history(leads, n_events, rng):
    """Events spread over 40 days, several per day, in one global time order."""
    events = []
    for lead in leads:
        for _ in range(n_events):
            at = T0 + dt.timedelta(minutes=rng.randrange(0, 40 * 24 * 60))
            kind = rng.choice(KINDS)
            url = rng.choice(URLS) if kind == "page_view" else None
            events.append((at, lead, kind, {"url": url} if url else {}))
    events.sort(key=lambda e: e[0])
    return events


def snapshot(at):
    rows = {}
    for score in LeadScore.objects.order_by("lead_id"):
        explained = lead_score_explain(score=score, at=at)
        rows[score.lead_id] = (
            score.fit,
            explained.engagement,
            sorted(score.fit_rules),
            {k: (v[0], v[1], v[3], v[4]) for k, v in score.engagement_state.items()},
            {line.rule_id: line.points for line in explained.engagement_lines},
            score.last_event_at,
            score.hand_raised_at,
        )
    return rows


@pytest.mark.django_db
def test_bulk_rescore_gives_the_same_numbers_as_event_by_event_scoring():
    rng = random.Random(20261102)
    model = rich_model()
    publish(model)
    leads = [
        LeadFactory(
            stage=Stage.SQL,  # keep the policy out of this comparison
            role=rng.choice(["executive", "staff", ""]),
            email=f"p{i}@{rng.choice(['free.jp', 'corp.jp'])}",
            attributes={"budget": rng.choice([500, 1500, "2000", "n/a"])},
            company=CompanyFactory(employee_count=rng.choice([50, 150, None])),
        )
        for i in range(8)
    ]
    for at, lead, kind, props in seed_history(leads, 30, rng):
        event = EngagementEventFactory(lead=lead, kind=kind, occurred_at=at, properties=props)
        # The worker sees each event a few minutes after it happened.
        with time_machine.travel(at + dt.timedelta(minutes=rng.randrange(0, 30)), tick=False):
            lead_score_event(event=event)
    end = T0 + dt.timedelta(days=41)
    incremental = snapshot(end)

    with time_machine.travel(end, tick=False):
        run = rescore_run_start(model=model, enqueue=False)
        rescore_run_step(run_id=run.pk, batch_size=3)
    bulk = snapshot(end)

    assert bulk == incremental
    assert {row[1] for row in bulk.values()} != {0}  # the history did score something
    # Explanations add up to the stored scores, line by line.
    for score in LeadScore.objects.all():
        explained = lead_score_explain(score=score)
        assert sum(line.points for line in explained.fit_lines) == explained.fit == score.fit
        assert sum(line.points for line in explained.engagement_lines) == score.engagement
        for line in explained.engagement_lines:
            assert line.raw + line.capped + line.decayed == line.points


@pytest.mark.django_db
def test_publishing_archives_the_old_model_and_queues_a_rescore_after_commit(
    django_capture_on_commit_callbacks,
):
    old = ScoringModel.objects.get(status=ModelStatus.PUBLISHED)
    draft = scoring_model_clone(source=old)
    leads = LeadFactory.create_batch(3)

    with django_capture_on_commit_callbacks() as callbacks:
        run = scoring_model_publish(model=draft)

    old.refresh_from_db()
    assert old.status == ModelStatus.ARCHIVED
    assert draft.status == ModelStatus.PUBLISHED
    assert (run.status, run.total, run.done) == (RunStatus.QUEUED, 3, 0)
    assert len(callbacks) == 2  # one task per slice
    split = leads[1].pk
    assert list(run.slices.values_list("lower", "upper", "cursor", "finished")) == [
        (0, split, 0, False),
        (split, None, split, False),
    ]
    assert LeadScore.objects.count() == 0  # nothing is scored inside the publish


@pytest.mark.django_db
def test_a_rescore_run_scores_in_batches_shows_progress_and_moves_new_mqls():
    model = make_model(
        fit=[{"field": "role", "operator": "equals", "value": "executive", "points": 40}],
        engagement=[{"kind": "email_click", "points": 25}],
    )
    qualified = LeadFactory(role="executive")
    at_sql = LeadFactory(role="executive", stage=Stage.SQL)
    low = LeadFactory(role="staff")
    more = LeadFactory.create_batch(2)
    for lead in (qualified, at_sql, low):
        EngagementEventFactory.create_batch(2, lead=lead, kind="email_click", occurred_at=T0)
    run = publish(model)

    with time_machine.travel(T0 + dt.timedelta(hours=1), tick=False):
        assert rescore_run_step(run_id=run.pk, time_budget=0, batch_size=2, stage_size=2) is True
        run.refresh_from_db()
        assert (run.status, run.done, run.total, run.percent) == (RunStatus.RUNNING, 2, 5, 40)
        rescore_run_task(run.pk)  # the task finishes it (budget not reached)

    run.refresh_from_db()
    assert (run.status, run.done, run.moved_to_mql) == (RunStatus.DONE, 5, 1)
    assert LeadScore.objects.filter(model=model).count() == 5
    assert LeadScore.objects.get(lead=qualified).engagement == 50
    qualified.refresh_from_db()
    at_sql.refresh_from_db()
    assert qualified.stage == Stage.MQL
    assert at_sql.stage == Stage.SQL
    assert StageTransition.objects.get().lead == qualified
    assert {lead.pk for lead in more} <= set(LeadScore.objects.values_list("lead_id", flat=True))

    # Safe to run again: a finished run does nothing; a new run gives the same numbers.
    before = list(LeadScore.objects.order_by("lead_id").values_list("fit", "engagement"))
    assert rescore_run_step(run_id=run.pk) is False
    with time_machine.travel(T0 + dt.timedelta(hours=1), tick=False):
        again = rescore_run_start(model=model, enqueue=False)
        rescore_run_task(again.pk)
    again.refresh_from_db()
    assert again.status == RunStatus.DONE
    assert again.moved_to_mql == 0
    assert list(LeadScore.objects.order_by("lead_id").values_list("fit", "engagement")) == before
    assert StageTransition.objects.count() == 1


@pytest.mark.django_db
def test_a_run_for_a_model_that_is_no_longer_published_stops():
    first = make_model(engagement=[{"kind": "email_click", "points": 1}])
    run = publish(first)
    second = scoring_model_clone(source=first)
    newer = publish(second)

    run.refresh_from_db()
    assert run.status == RunStatus.SUPERSEDED
    assert rescore_run_step(run_id=run.pk) is False
    assert newer.status == RunStatus.QUEUED


@pytest.mark.django_db
def test_the_bulk_rescore_skips_rows_scored_incrementally_after_it_started():
    model = make_model(engagement=[{"kind": "email_click", "points": 10}])
    lead = LeadFactory(stage=Stage.SQL)
    with time_machine.travel(T0, tick=False):
        run = publish(model)
    EngagementEventFactory(lead=lead, kind="email_click", occurred_at=T0)
    # An event scored after the run started writes a fresh row under the new model...
    late = EngagementEventFactory(lead=lead, kind="email_click", occurred_at=T0)
    with time_machine.travel(T0 + dt.timedelta(minutes=5), tick=False):
        lead_score_event(event=late)
    LeadScore.objects.filter(lead=lead).update(engagement=999)  # mark it
    # ...which the batch, working from an older snapshot in real life, leaves alone.
    with time_machine.travel(T0 + dt.timedelta(minutes=6), tick=False):
        rescore_run_step(run_id=run.pk)

    assert LeadScore.objects.get(lead=lead).engagement == 999


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_share_a_run_without_sharing_a_batch(monkeypatch):
    import threading

    from django.db import connections

    model = make_model(
        fit=[{"field": "role", "operator": "equals", "value": "executive", "points": 40}],
        engagement=[{"kind": "email_click", "points": 30}],
    )
    ScoringModel.objects.filter(status=ModelStatus.PUBLISHED).update(status=ModelStatus.ARCHIVED)
    leads = LeadFactory.create_batch(40, role="executive")
    for lead in leads[::2]:
        EngagementEventFactory.create_batch(2, lead=lead, kind="email_click", occurred_at=T0)
    # These threads are the workers; the commit must not queue real tasks.
    monkeypatch.setattr(rescore_run_task, "apply_async", lambda *args, **kwargs: None)
    run = publish(model)
    start = threading.Barrier(2)

    def worker() -> None:
        try:
            start.wait()
            while rescore_run_step(run_id=run.pk, batch_size=3):
                pass
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    run.refresh_from_db()
    assert (run.status, run.done, run.total, run.moved_to_mql) == (RunStatus.DONE, 40, 40, 20)
    assert LeadScore.objects.filter(model=model).count() == 40
    assert StageTransition.objects.filter(to_stage=Stage.MQL).count() == 20
    assert not run.slices.filter(finished=False).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_second_worker_claims_the_other_slice_while_the_first_is_still_claiming(monkeypatch):
    import threading

    from django.db import connections, transaction

    from scoring import services

    model = make_model(engagement=[{"kind": "email_click", "points": 30}])
    ScoringModel.objects.filter(status=ModelStatus.PUBLISHED).update(status=ModelStatus.ARCHIVED)
    LeadFactory.create_batch(4)
    monkeypatch.setattr(rescore_run_task, "apply_async", lambda *args, **kwargs: None)
    run = publish(model)  # two slices (SCORING_RESCORE_WORKERS = 2)
    first_slice, second_slice = run.slices.order_by("lower").values_list("pk", flat=True)
    claimed, release = threading.Event(), threading.Event()
    first: list[int | None] = []

    def first_worker() -> None:
        try:
            # Its claim's transaction is still open when the second worker claims.
            with transaction.atomic():
                first.append(services._slice_claim(run.pk))
                claimed.set()
                assert release.wait(timeout=30)
        finally:
            claimed.set()
            connections.close_all()

    thread = threading.Thread(target=first_worker)
    thread.start()
    try:
        assert claimed.wait(timeout=30)
        second = services._slice_claim(run.pk)
    finally:
        release.set()
        thread.join(timeout=30)
    services._slice_release(second_slice)

    assert (first, second) == ([first_slice], second_slice)


@pytest.mark.django_db
def test_a_row_its_chunk_did_not_stage_is_scored_by_its_batch_and_moved(monkeypatch):
    from scoring import services

    old = make_model(engagement=[{"kind": "email_click", "points": 25}])
    lead = LeadFactory(role="executive")
    EngagementEventFactory.create_batch(2, lead=lead, kind="email_click", occurred_at=T0)
    with time_machine.travel(T0, tick=False):
        publish(old)
        rescore_run_task(RescoreRun.objects.get(model=old).pk)
    new = make_model(
        fit=[{"field": "role", "operator": "equals", "value": "executive", "points": 40}],
        engagement=[{"kind": "email_click", "points": 25}],
    )
    stage = services.stage_scores

    def stage_without_the_lead(model, *, table, leads, now):
        staged = stage(model, table=table, leads=leads, now=now)
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {table} WHERE lead_id = %s", [lead.pk])
        return staged - 1

    monkeypatch.setattr(services, "stage_scores", stage_without_the_lead)
    with time_machine.travel(T0 + dt.timedelta(hours=1), tick=False):
        run = publish(new)
        rescore_run_task(run.pk)

    score = LeadScore.objects.get(lead=lead)
    assert (score.model_id, score.fit, score.engagement) == (new.pk, 40, 50)
    lead.refresh_from_db()
    assert lead.stage == Stage.MQL
    run.refresh_from_db()
    assert (run.status, run.moved_to_mql) == (RunStatus.DONE, 1)


@pytest.mark.django_db
def test_a_row_under_another_model_past_the_last_batch_is_scored_when_the_run_ends(monkeypatch):
    from scoring import services

    old = make_model(engagement=[{"kind": "email_click", "points": 1}])
    new = make_model(engagement=[{"kind": "email_click", "points": 3}])
    first = LeadFactory(stage=Stage.SQL)
    finish = services._run_finish
    late = []

    def lead_appears_then_finish(run_id, now):
        # Every slice is written; a lead past them has a row under the old model.
        lead = LeadFactory(stage=Stage.SQL)
        EngagementEventFactory(lead=lead, kind="email_click", occurred_at=T0)
        LeadScore.objects.create(lead=lead, model=old, engagement=1, computed_at=T0)
        late.append(lead)
        finish(run_id, now)

    monkeypatch.setattr(services, "_run_finish", lead_appears_then_finish)
    with time_machine.travel(T0, tick=False):
        publish(old)
        run = publish(new)
        rescore_run_task(run.pk)

    assert LeadScore.objects.get(lead=first).model_id == new.pk
    late_score = LeadScore.objects.get(lead=late[0])
    assert (late_score.model_id, late_score.engagement) == (new.pk, 3)
    run.refresh_from_db()
    assert run.status == RunStatus.DONE
