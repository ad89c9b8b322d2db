"""Scoring writes: per-lead scoring (incremental), model clone/publish, bulk rescore.

Called by the intake pipeline inside its processing transaction:

    lead_score_event(event=...)        after a NEW event was recorded (not a redelivery)
    lead_score_attributes(lead=...)    after lead or company fields changed

Both update one LeadScore row from its running state (O(1) rows: the published model id,
the locked score row, the update), then apply the MQL policy through
`leadflow.lifecycle.lead_transition`. They fall back to a one-lead SQL recompute (the
same statement the bulk rescore runs, so the numbers are the same by construction) when
the row was made by another model version, does not exist yet (unless the lead itself
was created in the same transaction: then its few events are all there is, and they are
applied to an empty row), or when an event for a capped rule arrives older than the
newest event already counted: caps are awarded in time order, so only a recompute can
say which event the cap cut.

Publishing vs. concurrent scoring (PostgreSQL): each scoring transaction holds a shared
advisory lock; publishing takes it exclusively. So once a publish commits, no
transaction is still scoring with the old model, and a bulk batch that runs later sees
every event those transactions committed. (SQLite serialises writers anyway.)
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from enum import Enum
from functools import partial
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, Max, OuterRef, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from leadflow import reactions
from leadflow.errors import DomainError, InvalidTransition
from leadflow.lifecycle import (
    BulkMove,
    lead_transition,
    leads_transition_bulk,
    mql_wave_finish,
    mql_wave_start,
)
from leadflow.models import (
    EngagementEvent,
    Lead,
    MqlWave,
    Stage,
    StageTransition,
    User,
    WaveKind,
)
from leadflow.transactions import enqueue_on_commit
from scoring import engine, policy, selectors
from scoring.engine import CompiledModel
from scoring.models import (
    FIELD_PATHS,
    DraftLeadScore,
    FitSnapshot,
    LeadScore,
    ModelStatus,
    PreviewRun,
    PreviewSlice,
    PreviewStatus,
    RescoreRun,
    RescoreSlice,
    RunStatus,
    ScoringModel,
    snapshot_column,
)
from scoring.sql import (
    NUMBER_FIELDS,
    LeadFilter,
    drop_staged,
    stage_scores,
    upsert_scores,
    upsert_staged,
)

logger = logging.getLogger(__name__)

ACTOR = "scoring"
# Leads written per transaction of a bulk rescore, and leads staged (scored in one
# statement into a temporary table, see rescore_run_step) per chunk.
BATCH_SIZE = 20_000
STAGE_SIZE = 250_000
STAGE_WORK_MEM = "512MB"
# New MQLs moved per transaction of hand_off_new_mqls: the batch holds every team's lock
# to its commit, so an MQL routed one by one meanwhile waits for one batch at most.
HAND_OFF_BATCH = 2_000
# Arbitrary constant naming "the published scoring model" for pg advisory locks.
_PUBLISH_LOCK_KEY = 7_301_001
# The same for "a rescore slice" (a session advisory lock, with the slice's id).
_SLICE_LOCK_KEY = 7_301_002


def _publish_lock(*, exclusive: bool) -> None:
    if connection.vendor != "postgresql":
        return
    function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s)", [_PUBLISH_LOCK_KEY])


def published_model() -> CompiledModel | None:
    published = ScoringModel.objects.filter(status=ModelStatus.PUBLISHED)
    model_id = published.values_list("pk", flat=True).first()
    return None if model_id is None else engine.compiled(model_id)


def _locked_score(lead_id: int, now: datetime) -> LeadScore:
    score = LeadScore.objects.select_for_update().filter(lead_id=lead_id).first()
    if score is None:
        # Two first events of one lead at once: the loser of the insert waits for the
        # winner's commit, then locks and continues from the winner's row.
        LeadScore.objects.bulk_create(
            [LeadScore(lead_id=lead_id, computed_at=now)], ignore_conflicts=True
        )
        score = LeadScore.objects.select_for_update().get(lead_id=lead_id)
    return score


def _recompute(lead_id: int, model: CompiledModel, now: datetime) -> LeadScore:
    upsert_scores(model, leads=LeadFilter.one(lead_id), now=now)
    return LeadScore.objects.get(lead_id=lead_id)


def lead_score_event(*, event: EngagementEvent) -> LeadScore | None:
    """Add one newly recorded engagement event to its lead's score, then apply the MQL
    policy. Returns None when no model is published.

    Call it once per new event (not for a redelivery: the running state would count it
    twice), right after recording it. Recording several events of one lead first? Use
    `lead_score_changes(lead=..., events=[...])`, which knows which are not yet counted."""
    return lead_score_changes(lead=event.lead, events=[event])


def lead_score_attributes(*, lead: Lead) -> LeadScore | None:
    """Re-evaluate the fit of a lead whose fields (or company) changed, then apply the
    MQL policy. Engagement is only carried forward to now (decay)."""
    return lead_score_changes(lead=lead, attributes_changed=True)


def lead_score_changes(
    *,
    lead: Lead,
    events: Sequence[EngagementEvent] = (),
    attributes_changed: bool = False,
    lead_created: bool = False,
    apply_policy: bool = True,
) -> LeadScore | None:
    """Score what changed for one lead in the caller's transaction: its fields (fit) and
    the engagement events just recorded for it, then apply the MQL policy once (unless
    `apply_policy` is false: a large import hands its MQLs on together afterwards,
    `leads_hand_off_imported`).

    A one-lead recompute (when the row is missing, from another model version, or an
    event of a capped rule is older than one already counted) reads every event in the
    database, including the ones in `events` not yet applied, so after it the rest of
    `events` is not applied again.

    `lead_created`: the caller's transaction created the lead, so no other transaction
    can hold (or be writing) a score for it, and `events` are all the events it has: its
    row is computed from them incrementally and inserted, with no placeholder row to
    lock first and no SQL recompute (the same numbers: tests hold the Python and SQL
    scoring to each other)."""
    # No savepoint of its own: it only groups the writes; an error goes up to the caller.
    with transaction.atomic(savepoint=False):
        _publish_lock(exclusive=False)
        model = published_model()
        if model is None:
            return None
        now = timezone.now()
        if lead_created:
            score = LeadScore(lead_id=lead.pk, model_id=model.id, computed_at=now)
            attributes_changed = True
        else:
            score = _locked_score(lead.pk, now)
        if score.model_id != model.id:
            score = _recompute(lead.pk, model, now)
        else:
            if attributes_changed:
                fresh = Lead.objects.select_related("company").get(pk=lead.pk)
                score.fit, score.fit_rules = model.fit(fresh)
            state = engine.reanchor(model, score.engagement_state, score.computed_at, now)
            recomputed = False
            for event in sorted(events, key=lambda e: (e.occurred_at, e.pk)):
                rule = model.rule_for(event.kind, event.properties)
                late = score.last_event_at is not None and event.occurred_at < score.last_event_at
                if rule is not None and rule.cap is not None and late:
                    recomputed = True
                    break
                if rule is not None:
                    state = engine.apply_event(model, rule, state, now, event.occurred_at, now)
                    if score.last_event_at is None or event.occurred_at > score.last_event_at:
                        score.last_event_at = event.occurred_at
                if event.kind == model.hand_raiser_kind and (
                    score.hand_raised_at is None or event.occurred_at > score.hand_raised_at
                ):
                    score.hand_raised_at = event.occurred_at
            if recomputed:
                score = _recompute(lead.pk, model, now)
            else:
                score.engagement_state = state
                score.engagement = model.engagement_at(state, now, now)
                score.computed_at = now
                if lead_created:
                    score.save(force_insert=True)
                else:
                    score.save(
                        update_fields=[
                            "fit",
                            "fit_rules",
                            "engagement",
                            "engagement_state",
                            "last_event_at",
                            "hand_raised_at",
                            "computed_at",
                        ]
                    )
        # Read before the policy moves it: only a lead that was an MQL already can be
        # waiting in a wave's hold (one the policy makes an MQL now is handed on alone).
        was_mql = lead.stage == Stage.MQL
        if apply_policy:
            _apply_policy(lead=lead, score=score, model=model, now=now)
        if was_mql:
            _hand_raised(lead=lead, score=score, model=model, events=events)
    return score


def _hand_raised(
    *, lead: Lead, score: LeadScore, model: CompiledModel, events: Sequence[EngagementEvent]
) -> None:
    """An MQL's new event of the model's hand-raiser kind, with the fit the policy asks
    of a hand-raiser: the person asked for contact (HAND_RAISED: an MQL held in a wave
    is held back no longer). Also under a large import's deferred policy: the lead is an
    MQL already, the import's wave has nothing to decide for it."""
    raised = [event for event in events if model.hand_raiser_kind == event.kind]
    if raised and policy.raised_hand(model, score.fit, score.hand_raised_at):
        newest = max(raised, key=lambda event: (event.created_at, event.pk))
        reactions.run(reactions.HAND_RAISED, lead=lead, event=newest)


def lead_score_recompute(*, lead: Lead) -> LeadScore | None:
    """Score one lead from its whole history under the published model (admin repair)."""
    with transaction.atomic():
        _publish_lock(exclusive=False)
        model = published_model()
        if model is None:
            return None
        now = timezone.now()
        _locked_score(lead.pk, now)
        score = _recompute(lead.pk, model, now)
        _apply_policy(lead=lead, score=score, model=model, now=now)
    return score


def _last_recycled_at(lead_id: int) -> datetime | None:
    return StageTransition.objects.filter(lead_id=lead_id, to_stage=Stage.RECYCLED).aggregate(
        at=Max("occurred_at")
    )["at"]


def _mql_text(model: CompiledModel, score: LeadScore, reason: str) -> str:
    """The StageTransition's reason for an MQL scoring made (single and bulk alike)."""
    if reason == policy.THRESHOLDS:
        return _(
            "Scoring v%(version)s: fit %(fit)s ≥ %(fit_min)s and "
            "engagement %(engagement)s ≥ %(engagement_min)s."
        ) % {
            "version": model.version,
            "fit": score.fit,
            "fit_min": model.fit_threshold,
            "engagement": score.engagement,
            "engagement_min": model.engagement_threshold,
        }
    return _("Scoring v%(version)s: hand-raiser event with fit %(fit)s ≥ %(fit_min)s.") % {
        "version": model.version,
        "fit": score.fit,
        "fit_min": model.hand_raiser_min_fit,
    }


def _mql_context(model: CompiledModel, score: LeadScore, reason: str) -> dict[str, Any]:
    return {
        "scoring_model": model.id,
        "version": model.version,
        "rule": reason,
        "fit": score.fit,
        "engagement": score.engagement,
    }


def _apply_policy(
    *,
    lead: Lead,
    score: LeadScore,
    model: CompiledModel,
    now: datetime,
    recycled_at: Callable[[], datetime | None] | None = None,
) -> StageTransition | None:
    stage = lead.stage
    reason = policy.mql_reason(
        model,
        stage=stage,
        fit=score.fit,
        engagement=score.engagement,
        hand_raised_at=score.hand_raised_at,
        recycled_at=recycled_at or partial(_last_recycled_at, lead.pk),
        now=now,
    )
    if reason is None:
        return None
    try:
        return lead_transition(
            lead=lead,
            to_stage=Stage.MQL,
            actor=ACTOR,
            reason=_mql_text(model, score, reason),
            expected_from=stage,
            context=_mql_context(model, score, reason),
        )
    except InvalidTransition:
        # Someone (a rep, another worker) moved the lead since we read its stage: their
        # decision stands, scoring never overrides a stage it did not expect.
        return None


# --- models: clone, publish -------------------------------------------------------------


def scoring_model_clone(
    *, source: ScoringModel, actor: User | None = None, name: str = ""
) -> ScoringModel:
    """Copy a model (usually the published one) with all its rules into a new draft."""
    with transaction.atomic():
        draft = ScoringModel.objects.create(
            name=name or source.name,
            based_on=source,
            notes="",
            fit_threshold=source.fit_threshold,
            engagement_threshold=source.engagement_threshold,
            hand_raiser_kind=source.hand_raiser_kind,
            hand_raiser_min_fit=source.hand_raiser_min_fit,
            recycle_cooldown_days=source.recycle_cooldown_days,
            created_by=actor,
        )
        categories = {}
        for category in source.categories.all():
            old_id = category.pk
            category.pk = None
            category.model = draft
            category.save()
            categories[old_id] = category
        for rule in source.fit_rules.all():
            rule.pk = None
            rule.model = draft
            rule.category = categories.get(rule.category_id) if rule.category_id else None
            rule.save()
        for erule in source.engagement_rules.all():
            erule.pk = None
            erule.model = draft
            erule.save()
    return draft


# --- the preview of a draft, as a background job ------------------------------------

PREVIEW_BATCH_SIZE = 50_000
PREVIEW_NOW = "now"  # phase 1: every lead's scores now, under both models
PREVIEW_HISTORY = "history"  # phase 2: the leads handed to sales, as of their handoff


def preview_run_start(
    *, draft: ScoringModel, actor: User | None = None, fresh: bool = False, enqueue: bool = True
) -> PreviewRun:
    """The draft's preview job for what the draft is now: the run already finished or
    going for this content, else a new one, queued after commit. `fresh`: start a new
    one even if one finished (leads and events have moved since). Returns at once."""
    if not draft.is_draft:
        raise DomainError(_("Only a draft can be previewed."), code="model_read_only")
    with transaction.atomic():
        # One start at a time per draft: two tabs opening the preview share one job.
        ScoringModel.objects.select_for_update().filter(pk=draft.pk).first()
        fingerprint, published = selectors.preview_run_fingerprint(draft=draft)
        current = (
            PreviewRun.objects.filter(model=draft, fingerprint=fingerprint).order_by("-id").first()
        )
        if current is not None and (current.is_active or not fresh):
            return current
        run = PreviewRun.objects.create(
            model=draft,
            baseline_id=published.id if published is not None else draft.pk,
            fingerprint=fingerprint,
            as_of=timezone.now(),
            # Leads created after this are not in the picture (the job does not chase them).
            upto=Lead.objects.aggregate(top=Max("id"))["top"] or 0,
            created_by=actor,
        )
        if enqueue:
            from scoring.tasks import preview_run_task

            # One task per slice, so the workers score the slices side by side.
            for _worker in range(settings.SCORING_PREVIEW_WORKERS):
                enqueue_on_commit(preview_run_task, run.pk)
    return run


def preview_run_step(
    *, run_id: int, time_budget: float, batch_size: int = PREVIEW_BATCH_SIZE
) -> bool:
    """Score batches of the run for about `time_budget` seconds; True while work remains."""
    deadline = time.monotonic() + time_budget
    while _preview_batch(run_id, batch_size):
        if time.monotonic() >= deadline:
            return True
    return False


def preview_run_execute(*, run_id: int, batch_size: int = PREVIEW_BATCH_SIZE) -> None:
    """Run the whole job here (tests, benches, small databases)."""
    while _preview_batch(run_id, batch_size):
        pass


def _preview_batch(run_id: int, size: int) -> bool:
    """One step in one commit: the run's start (older runs removed, totals counted,
    slices cut), or one batch of a slice no other worker holds, or the run's end (the
    summary) once every slice is finished. A batch that fails is done again from the
    same cursor. False when nothing is left for this caller: the run is finished, gone
    (a newer run of the draft deleted it), stale (the draft changed under it: its rows
    would mix two versions), or its last slices are in other workers' hands."""
    with transaction.atomic():
        run = PreviewRun.objects.filter(pk=run_id).first()
        if run is None or run.status == PreviewStatus.DONE:
            return False
        draft = engine.compiled(run.model_id)
        baseline = engine.compiled(run.baseline_id or run.model_id)
        compared = None if baseline.id == draft.id else baseline
        if selectors.scoring_model_fingerprint(draft=draft, baseline=compared) != run.fingerprint:
            return False
        if run.status == PreviewStatus.QUEUED:
            # Workers that start together wait here for the first one's start.
            locked = PreviewRun.objects.select_for_update().filter(pk=run_id).first()
            if locked is not None and locked.status == PreviewStatus.QUEUED:
                _preview_begin(locked)
            return locked is not None
        part = (
            PreviewSlice.objects.select_for_update(skip_locked=True)
            .filter(run_id=run_id, finished=False)
            .order_by("lower")
            .first()
        )
        if part is None:
            _preview_finish(run_id)
            return False
        _set_local_work_mem()
        upper, count = _next_batch(part.cursor, part.upper, size)
        leads = LeadFilter.id_range(part.cursor, upper)
        counter = "done" if part.phase == PREVIEW_NOW else "history_done"
        if count and part.phase == PREVIEW_NOW:
            scored = _preview_insert_now(run, draft, baseline, leads)
        else:
            scored = _preview_insert_history(run, draft, baseline, leads) if count else 0
        part.cursor = upper
        if count < size and part.phase == PREVIEW_NOW:
            part.phase, part.cursor = PREVIEW_HISTORY, part.lower
        elif count < size:
            part.finished = True
        part.save(update_fields=["cursor", "phase", "finished"])
        # Last statement of the batch: the run row is locked only until the commit.
        PreviewRun.objects.filter(pk=run_id).update(**{counter: F(counter) + scored})
    return True


def _preview_begin(run: PreviewRun) -> None:
    # The draft's older runs are out of date, and runs of models published since are of
    # no use: a million rows each, removed here rather than in a page request.
    PreviewRun.objects.filter(model_id=run.model_id, pk__lt=run.pk).delete()
    PreviewRun.objects.exclude(model__status=ModelStatus.DRAFT).delete()
    run.total = Lead.objects.filter(pk__lte=run.upto).count()
    run.history_total = (
        StageTransition.objects.filter(to_stage__in=(Stage.MQL, Stage.SQL), lead_id__lte=run.upto)
        .values("lead_id")
        .distinct()
        .count()
    )
    bounds = [0, *_slice_bounds(run.total, settings.SCORING_PREVIEW_WORKERS), run.upto]
    PreviewSlice.objects.bulk_create(
        PreviewSlice(run=run, lower=lower, upper=upper, cursor=lower)
        for lower, upper in itertools.pairwise(bounds)
        if upper > lower
    )
    run.status, run.started_at = PreviewStatus.RUNNING, timezone.now()
    run.save(update_fields=["total", "history_total", "status", "started_at"])


def _preview_finish(run_id: int) -> None:
    """Sum the run up once its last slice is finished (by whichever worker sees it)."""
    run = PreviewRun.objects.select_for_update().filter(pk=run_id).first()
    if run is None or run.status != PreviewStatus.RUNNING:
        return
    if PreviewSlice.objects.filter(run_id=run_id, finished=False).exists():
        return  # another worker is on the last slice: it finishes the run
    run.summary = _preview_summary(run)
    run.summary["wave"] = _preview_wave(run)
    run.status, run.finished_at = PreviewStatus.DONE, timezone.now()
    run.save(update_fields=["summary", "status", "finished_at"])


def _preview_insert_now(
    run: PreviewRun, draft: CompiledModel, baseline: CompiledModel, leads: LeadFilter
) -> int:
    extra = ", d.hand_raised_at AS dh, p.hand_raised_at AS ph"
    sql = selectors.now_scores_sql(draft, baseline, run.as_of, extra, leads)
    sql.add(
        " INSERT INTO scoring_draftleadscore (run_id, lead_id, fit, engagement, hand_raised_at,"
        " outcome, published_fit, published_engagement, published_hand_raised_at,"
        " published_outcome) SELECT %s, id, df, de, dh, dout, pf, pe, ph, pout FROM x",
        [run.pk],
    )
    return _inserted(sql)


def _inserted(sql) -> int:
    """Run an INSERT and return how many rows it wrote."""
    with connection.cursor() as cursor:
        cursor.execute(sql.text, sql.params)
        if cursor.rowcount >= 0:
            return cursor.rowcount
        # Python's sqlite3 gives -1 for a statement that starts with WITH.
        cursor.execute("SELECT changes()")
        return int(cursor.fetchone()[0])


def _preview_insert_history(
    run: PreviewRun, draft: CompiledModel, baseline: CompiledModel, leads: LeadFilter
) -> int:
    sql = selectors.handoff_scores_sql(draft, baseline, leads)
    sql.add(
        " INSERT INTO scoring_drafthandoffscore (run_id, lead_id, handed_at, fit, engagement,"
        " hand_raised_at, qualifies, published_fit, published_engagement,"
        " published_hand_raised_at, published_qualifies, won, rejected, fit_from_snapshot,"
        " decided, customer, history_missing, lost, engagement_state,"
        " published_engagement_state)"
        " SELECT %s, lead_id, as_of, df, de, dh, dq = 1, pf, pe, ph, pq = 1, won = 1,"
        " rejected = 1, snap = 1, decided = 1, customer = 1, missing = 1, lost = 1, ds, ps"
        " FROM bt",
        [run.pk],
    )
    return _inserted(sql)


def _preview_wave(run: PreviewRun) -> list[dict]:
    """Per team, what the leads publishing moves would do to sales now (handoff's
    forecast, leadflow.reactions.WAVE_FORECAST): the page and the publish's confirmation
    show it beside the count. The hand-raisers among them (policy.hand_raise_counts: a
    recycled lead's raise only after its last recycle) are never held. The ids go as
    subqueries: a publish may move most of a million leads."""
    draft = engine.compiled(run.model_id)
    moves = DraftLeadScore.objects.filter(run_id=run.pk, outcome=selectors.MOVES)
    answered_before = StageTransition.objects.filter(
        lead_id=OuterRef("lead_id"),
        to_stage=Stage.RECYCLED,
        occurred_at__gte=OuterRef("hand_raised_at"),
    )
    raisers = (
        moves.filter(fit__gte=draft.hand_raiser_min_fit, hand_raised_at__isnull=False).exclude(
            Q(lead__stage=Stage.RECYCLED) & Exists(answered_before)
        )
        if draft.hand_raiser_kind
        else moves.none()
    )
    forecast = reactions.resolve(reactions.WAVE_FORECAST)
    return forecast(lead_ids=moves.values("lead_id"), never_held=raisers.values("lead_id"))


def _preview_summary(run: PreviewRun) -> dict:
    """The totals the page shows, summed once over the run's rows."""
    names = {
        "won": "won",
        "rejected": "rejected",
        "pq": "published_qualifies",
        "dq": "qualifies",
        "snap": "fit_from_snapshot",
        "missing": "history_missing",
    }
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT published_outcome, outcome, COUNT(*) FROM scoring_draftleadscore"
            " WHERE run_id = %s GROUP BY published_outcome, outcome",
            [run.pk],
        )
        outcomes = [list(row) for row in cursor.fetchall()]
        cursor.execute(
            # Fixed column names only; the run id is a parameter.
            f"SELECT {selectors.backtest_sums_sql(names.__getitem__)}"  # noqa: S608
            " FROM scoring_drafthandoffscore WHERE run_id = %s",
            [run.pk],
        )
        figures = selectors.BacktestFigures(*(int(v) for v in cursor.fetchone()))
    return {"outcomes": outcomes, "backtest": dataclasses.asdict(figures)}


# --- the fit a lead had when it was handed to sales -----------------------------------


def fit_snapshot_take(*, lead: Lead, at: datetime) -> None:
    """Keep the lead's scored attributes (every field a fit rule may test, and its
    custom attributes) as they are at `at`, the moment it became an MQL, for the
    backtest to score it as it was. Call it where the handoff is created, in that
    transaction (the lead is locked there). Idempotent per lead and moment."""
    fit_snapshots_take(leads=[lead], at=at)


def fit_snapshots_take(*, leads: Sequence[Lead], at: datetime) -> None:
    """fit_snapshot_take for many leads (a bulk move's handoffs): one INSERT."""
    rows = []
    for lead in leads:
        values: dict[str, Any] = {}
        for path in FIELD_PATHS:
            value = engine.read_field(lead, path)
            # Without a company: blank (see FitSnapshot), NULL only for the number.
            values[snapshot_column(path)] = (
                value if value is not None or path in NUMBER_FIELDS else ""
            )
        attributes = lead.attributes if isinstance(lead.attributes, dict) else {}
        rows.append(FitSnapshot(lead=lead, taken_at=at, attributes=attributes, **values))
    FitSnapshot.objects.bulk_create(rows, ignore_conflicts=True)


def fit_snapshot_erase(*, lead_ids: Iterable[int]) -> dict[str, int]:
    """An erased person's fit snapshots hold their name, e-mail and phone: they go (the
    backtest then scores those leads with today's, erased, fields)."""
    deleted, _rows = FitSnapshot.objects.filter(lead_id__in=list(lead_ids)).delete()
    return {"scoring.FitSnapshot": deleted}


def _validation_problems(model: ScoringModel) -> list[str]:
    from django.core.exceptions import ValidationError

    problems = []
    if not model.fit_rules.exists() and not model.engagement_rules.exists():
        problems.append(_("The model has no rules."))
    items: list = [*model.categories.all(), *model.fit_rules.all(), *model.engagement_rules.all()]
    for item in items:
        try:
            item.full_clean(exclude=["model"])
        except ValidationError as error:
            detail = "; ".join(m for messages in error.message_dict.values() for m in messages)
            problems.append(f"{item}: {detail}")
    return problems


def scoring_model_publish(*, model: ScoringModel, actor: User | None = None) -> RescoreRun:
    """Publish a draft: archive the published model, and start a bulk rescore of every
    lead (a Celery task, enqueued once this transaction commits)."""
    with transaction.atomic():
        # Waits for every transaction scoring with the current model to finish.
        _publish_lock(exclusive=True)
        locked = ScoringModel.objects.select_for_update().get(pk=model.pk)
        if locked.status != ModelStatus.DRAFT:
            raise DomainError(
                _("Only a draft can be published; version %(version)s is %(status)s.")
                % {"version": locked.version, "status": locked.get_status_display()},
                code="not_a_draft",
            )
        problems = _validation_problems(locked)
        if problems:
            raise DomainError(
                _("The draft cannot be published: %(problems)s")
                % {"problems": " / ".join(problems)},
                code="invalid_model",
            )
        now = timezone.now()
        # Archive first: the partial unique index allows one published row at any moment.
        ScoringModel.objects.filter(status=ModelStatus.PUBLISHED).update(
            status=ModelStatus.ARCHIVED, archived_at=now
        )
        ScoringModel.objects.filter(pk=locked.pk).update(
            status=ModelStatus.PUBLISHED, published_at=now
        )
        run = _run_create(model=locked, now=now, kind=WaveKind.PUBLISH, actor=actor)
    model.refresh_from_db()
    logger.info("Scoring model v%s published by %s; rescore run %s", model.version, actor, run.pk)
    return run


def rescore_run_start(*, model: ScoringModel, enqueue: bool = True) -> RescoreRun:
    """Rescore every lead under the published model again (e.g. after a data import).
    With enqueue=False the caller runs it itself (rescore_run_execute)."""
    with transaction.atomic():
        if model.status != ModelStatus.PUBLISHED:
            raise DomainError(
                _("Only the published model can rescore leads."), code="not_published"
            )
        # As publishing does: wait for every transaction scoring now. One that began
        # before the run and committed after its chunk was staged would write a row
        # stamped before the run, which the run then overwrites with a state older
        # than that row.
        _publish_lock(exclusive=True)
        return _run_create(model=model, now=timezone.now(), enqueue=enqueue, kind=WaveKind.RESCORE)


def _run_create(
    *,
    model: ScoringModel,
    now: datetime,
    kind: str,
    enqueue: bool = True,
    actor: User | None = None,
) -> RescoreRun:
    from scoring.tasks import rescore_run_task

    RescoreRun.objects.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).update(
        status=RunStatus.SUPERSEDED, finished_at=now
    )
    total = Lead.objects.count()
    run = RescoreRun.objects.create(model=model, total=total, created_at=now)
    workers = max(1, settings.SCORING_RESCORE_WORKERS)
    bounds = _slice_bounds(total, workers)
    RescoreSlice.objects.bulk_create(
        RescoreSlice(run=run, lower=lower, upper=upper, cursor=lower)
        for lower, upper in zip([0, *bounds], [*bounds, None], strict=True)
    )
    # The MQLs the run makes are one wave (handoff holds them above the teams' room). Its
    # label is stored in the site's language, as the assignment log's reasons are, not in
    # whichever language the marketer who published reads the admin in.
    with translation.override(settings.LANGUAGE_CODE):
        if kind == WaveKind.PUBLISH:
            label = _("Scoring model v%(version)s published") % {"version": model.version}
        else:
            label = _("Rescore with scoring model v%(version)s") % {"version": model.version}
    mql_wave_start(kind=kind, key=_wave_key(run.pk), label=label, started_by=actor)
    for _worker in range(workers if enqueue else 0):
        enqueue_on_commit(rescore_run_task, run.pk)
    return run


def _wave_key(run_id: int) -> str:
    return f"rescore:{run_id}"


def _wave(run_id: int) -> MqlWave | None:
    return MqlWave.objects.filter(key=_wave_key(run_id)).first()


def _slice_bounds(total: int, workers: int) -> list[int]:
    """Lead ids that split the leads into `workers` ranges of about equal size."""
    bounds: list[int] = []
    for k in range(1, workers):
        bound = (
            Lead.objects.order_by("pk")
            .values_list("pk", flat=True)[k * total // workers : k * total // workers + 1]
            .first()
        )
        if bound is not None and (not bounds or bound > bounds[-1]):
            bounds.append(bound)
    return bounds


# --- bulk rescore -----------------------------------------------------------------------


def rescore_run_step(
    *,
    run_id: int,
    time_budget: float | None = None,
    batch_size: int = BATCH_SIZE,
    stage_size: int = STAGE_SIZE,
) -> bool:
    """Score one run's leads until the run is done or `time_budget` seconds have passed
    (checked between chunks: a chunk once staged is written to its end). Returns True
    while work remains for this caller.

    A worker claims a slice no one else holds (`_slice_claim`), then goes through it a
    chunk at a time: it computes the scores of the next `stage_size` leads in one
    statement into a temporary table (`scoring.sql.stage_scores`: the events table is
    read once per chunk rather than once per batch), then writes them `batch_size` leads
    per transaction, each moving the slice's cursor in its commit. So several workers
    share a run, no batch holds more than its own leads' rows, and after a crash the
    batch that was lost is simply done again.

    The leads a batch makes MQLs are handed on after its commit (`hand_off_new_mqls`). In
    the batch they would be locked after their scores (intake locks a lead, then its
    score: a deadlock), and each move routes the MQL under its team's lock, which every
    other MQL of that team then waited for until the whole batch committed. A crash
    between the commit and the hand-off loses nothing: the run's end promotes whoever
    still qualifies."""
    started = time.monotonic()
    while True:
        part_id = _slice_claim(run_id)
        if part_id is None:
            return False
        try:
            state = _slice_chunk(run_id, part_id, batch_size, stage_size)
        finally:
            _slice_release(part_id)
        if state is _Chunk.STOP:
            return False
        if time_budget is not None and time.monotonic() - started >= time_budget:
            return True


class _Chunk(Enum):
    DONE = "done"  # the chunk (or the slice) is written; go on
    STOP = "stop"  # the run is over or superseded


def _slice_claim(run_id: int) -> int | None:
    """The id of an unfinished slice of the run that this worker now holds (a session
    advisory lock: it outlives the chunk's transactions, and dies with the connection
    of a crashed worker), or None when the run has nothing left for it: then the run
    is finished here if every slice is done (the last worker to finish closes it)."""
    with _run_transaction(run_id) as (run, now):
        if run is None:
            return None
        # No row locks here: FOR UPDATE over the open slices would lock them all for
        # this claim, so a second worker claiming at the same moment skipped every one
        # and left the whole run to the first. The advisory lock is the claim.
        open_slices = (
            RescoreSlice.objects.filter(run_id=run_id, finished=False)
            .order_by("lower")
            .values_list("pk", flat=True)
        )
        for part_id in list(open_slices):
            if _slice_lock(part_id):
                return part_id
        _run_finish(run_id, now)
    return None


def _slice_lock(part_id: int) -> bool:
    if connection.vendor != "postgresql":
        return True  # SQLite: one writer at a time anyway
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_SLICE_LOCK_KEY, part_id])
        return cursor.fetchone()[0]


def _slice_release(part_id: int) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_SLICE_LOCK_KEY, part_id])


@contextmanager
def _run_transaction(run_id: int) -> Iterator[tuple[RescoreRun | None, datetime]]:
    """One transaction of a run's work, under the shared publish lock: yields the run
    (locked by nothing) and the time, or None for the run once it is over or its model
    is no longer the published one (which closes it as superseded)."""
    with transaction.atomic():
        _publish_lock(exclusive=False)
        now = timezone.now()
        run = RescoreRun.objects.select_related("model").get(pk=run_id)
        if run.status not in (RunStatus.QUEUED, RunStatus.RUNNING):
            yield None, now
        elif run.model.status != ModelStatus.PUBLISHED:
            _run_close(run_id, RunStatus.SUPERSEDED, now)
            yield None, now
        else:
            yield run, now


def _slice_chunk(run_id: int, part_id: int, batch_size: int, stage_size: int) -> _Chunk:
    """Stage the next chunk of a slice this worker holds and write it batch by batch."""
    table = f"scoring_stage_{part_id}"
    with _run_transaction(run_id) as (run, staged_at):
        if run is None:
            return _Chunk.STOP
        part = RescoreSlice.objects.get(pk=part_id)
        end, count = _next_batch(part.cursor, part.upper, stage_size)
        if count == 0:
            RescoreSlice.objects.filter(pk=part_id).update(finished=True)
            return _Chunk.DONE
        model = engine.compiled(run.model_id)
        # A chunk's events (2.5M at 10 a lead) outgrow 128MB in the ranking sort, which
        # then merges through temporary files: some 6% of the chunk's time. The memory is
        # the database backend's, for this one statement, not the worker's.
        _set_local_work_mem(STAGE_WORK_MEM)
        stage_scores(model, table=table, leads=LeadFilter.id_range(part.cursor, end), now=staged_at)
    try:
        cursor_at = part.cursor
        while cursor_at < end:
            candidates: list[int] = []
            with _run_transaction(run_id) as (run, now):
                if run is None:
                    return _Chunk.STOP
                part = RescoreSlice.objects.select_for_update().get(pk=part_id)
                if part.cursor != cursor_at:
                    return _Chunk.DONE  # moved by someone else: stage again from there
                upper, count = _next_batch(cursor_at, end, batch_size)
                upsert_staged(
                    model,
                    table=table,
                    leads=LeadFilter.id_range(cursor_at, upper),
                    computed_at=staged_at,
                    skip_fresh_since=run.created_at,
                )
                _rescore_stale(model, now, after=cursor_at, upto=upper)
                candidates = _promotion_candidates(model, now, after=cursor_at, upto=upper)
                part.cursor = upper
                part.save(update_fields=["cursor"])
                # Last statement of the batch: the run row is locked only until the commit.
                RescoreRun.objects.filter(pk=run_id).update(
                    done=F("done") + count,
                    status=RunStatus.RUNNING,
                    started_at=Coalesce(F("started_at"), Value(now)),
                )
            cursor_at = upper
            moved = hand_off_new_mqls(model, candidates, now, wave=_wave(run_id))
            if moved:
                RescoreRun.objects.filter(pk=run_id).update(moved_to_mql=F("moved_to_mql") + moved)
    finally:
        drop_staged(table)
    return _Chunk.DONE


def rescore_run_execute(
    *, run_id: int, batch_size: int = BATCH_SIZE, stage_size: int = STAGE_SIZE
) -> None:
    """Run a rescore to the end in this process (bench, management shell)."""
    while rescore_run_step(run_id=run_id, batch_size=batch_size, stage_size=stage_size):
        pass


def _run_close(run_id: int, status: str, now: datetime) -> None:
    RescoreRun.objects.filter(pk=run_id, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).update(
        status=status, finished_at=now
    )


def _run_finish(run_id: int, now: datetime) -> None:
    run = RescoreRun.objects.select_for_update().get(pk=run_id)
    if run.status not in (RunStatus.QUEUED, RunStatus.RUNNING):
        return
    if run.slices.filter(finished=False).exists():
        return
    model = engine.compiled(run.model_id)
    wave = _wave(run_id)
    # Each batch checked its own range; past the last one (the last slice's cursor) are
    # leads created after it was staged, scored by intake under this model.
    tail = run.slices.filter(upper__isnull=True).values_list("cursor", flat=True).first() or 0
    moved = hand_off_new_mqls(model, _rescore_stale(model, now, after=tail), now, wave=wave)
    # Leads a batch scored but whose move was lost (a worker that died right after the
    # batch's commit), or that someone held while their batch moved: normally none, so
    # this is one small query.
    moved += hand_off_new_mqls(model, _promotion_candidates(model, now), now, wave=wave)
    mql_wave_finish(key=_wave_key(run_id), at=now)
    RescoreRun.objects.filter(pk=run_id).update(
        status=RunStatus.DONE,
        finished_at=now,
        moved_to_mql=F("moved_to_mql") + moved,
        started_at=Coalesce(F("started_at"), Value(now)),
    )


def _next_batch(after: int, upto: int | None, size: int) -> tuple[int, int]:
    """The id that ends the next batch of `size` leads after `after`, and its size."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT MAX(id), COUNT(*) FROM (SELECT id FROM leadflow_lead WHERE id > %s"
            " AND id <= %s ORDER BY id LIMIT %s) batch",
            [after, upto if upto is not None else 2**62, size],
        )
        upper, count = cursor.fetchone()
    return (upper or after), count


def _set_local_work_mem(size: str = "128MB") -> None:
    # The ranking sort of one batch's events fits in memory instead of spilling to disk;
    # LOCAL ends with this batch's transaction.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL work_mem = '{size}'")


def _rescore_stale(
    model: CompiledModel, now: datetime, *, after: int, upto: int | None = None
) -> list[int]:
    """Rows of the id range still under another model once its batch wrote it (rows a
    chunk did not stage): score them one by one; they are few, normally none. Returns
    their lead ids. A range read by the primary key: `model` has no index (see
    LeadScore.model), and a scan of the whole table at the run's end would add to the
    run the time the floor takes to read it."""
    rows = LeadScore.objects.filter(lead_id__gt=after)
    if upto is not None:
        rows = rows.filter(lead_id__lte=upto)
    # In key order: a planner with stale statistics otherwise scans the whole table
    # for a range it takes to be large (the tail, past every batch, is usually empty).
    ids = rows.exclude(model_id=model.id).order_by("lead_id").values_list("lead_id", flat=True)
    stale = list(ids[:10_000])
    for lead_id in stale:
        upsert_scores(model, leads=LeadFilter.one(lead_id), now=now)
    return stale


def _promotion_candidates(
    model: CompiledModel, now: datetime, *, after: int = 0, upto: int | None = None
) -> list[int]:
    """Leads (of one batch's id range, or all) that the MQL policy moves now: stage,
    thresholds, hand-raiser, the cool-down after a recycle, all in `policy.mql_reason_sql`,
    the same SQL the draft preview counts with. `hand_off_new_mqls` re-checks each under its
    lock (the lead may have moved on since)."""
    recycled, recycled_params = policy.last_recycled_sql()
    reason, reason_params = policy.mql_reason_sql(
        model,
        stage="l.stage",
        fit="s.fit",
        engagement="s.engagement",
        hand_raised_at="s.hand_raised_at",
        recycled_at="r.recycled_at",
        now=now,
    )
    marks = ", ".join(["%s"] * len(policy.MOVABLE_STAGES))
    # Fragments from scoring.policy and bound parameters only.
    sql = (
        "SELECT s.lead_id FROM scoring_leadscore s JOIN leadflow_lead l ON l.id = s.lead_id"  # noqa: S608
        f" LEFT JOIN {recycled} r ON r.lead_id = s.lead_id"
        " WHERE s.model_id = %s AND s.lead_id > %s AND s.lead_id <= %s"
        # The same range on the leads (the planner does not carry it over the join):
        # else it reads every movable lead of the table, once per batch.
        " AND l.id > %s AND l.id <= %s"
        f" AND l.stage IN ({marks}) AND {reason} IS NOT NULL ORDER BY s.lead_id"
    )
    upper = upto if upto is not None else 2**62
    params = [
        *recycled_params,
        model.id,
        after,
        upper,
        after,
        upper,
        *policy.MOVABLE_STAGES,
        *reason_params,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def hand_off_new_mqls(
    model: CompiledModel, lead_ids: list[int], now: datetime, *, wave: MqlWave | None = None
) -> int:
    """Move the leads a rescore found crossing into MQL (`_promotion_candidates`), after
    the batch that scored them committed; returns how many moved. The one place a
    rescore hands its new MQLs on.

    Set-based, `HAND_OFF_BATCH` leads per transaction: the policy re-checked for each
    under the shared publish lock (the score as it is now, nothing if another model was
    published meanwhile), then one `leads_transition_bulk` per batch, whose reactions write
    the handoffs, routing, timers, outbox rows and KPI marks a table at a time, the rows
    the per-lead path writes. A lead a rep (or an event) holds or moved meanwhile is
    skipped; the run's end promotes it if it still qualifies. Hand-raisers move in
    the same transaction, first and without the wave: a person who asked for contact is
    never part of a wave. `wave`: the MqlWave the moves belong to (the run's: see
    handoff.bulk for what a wave changes)."""
    if not lead_ids:
        return 0
    recycled = dict(
        StageTransition.objects.filter(lead_id__in=lead_ids, to_stage=Stage.RECYCLED)
        .values("lead_id")
        .annotate(at=Max("occurred_at"))
        .values_list("lead_id", "at")
    )
    moved = 0
    ordered = sorted(lead_ids)
    for start in range(0, len(ordered), HAND_OFF_BATCH):
        batch = ordered[start : start + HAND_OFF_BATCH]
        hand_raisers: list[BulkMove] = []
        with transaction.atomic():
            _publish_lock(exclusive=False)
            scores = LeadScore.objects.filter(
                lead_id__in=batch, model_id=model.id, model__status=ModelStatus.PUBLISHED
            ).select_related("lead")
            moves = []
            for score in sorted(scores, key=lambda s: s.lead_id):
                reason = policy.mql_reason(
                    model,
                    stage=score.lead.stage,
                    fit=score.fit,
                    engagement=score.engagement,
                    hand_raised_at=score.hand_raised_at,
                    recycled_at=partial(recycled.get, score.lead_id),
                    now=now,
                )
                if reason is None:
                    continue
                move = BulkMove(
                    lead_id=score.lead_id,
                    expected_from=score.lead.stage,
                    reason=_mql_text(model, score, reason),
                    context=_mql_context(model, score, reason),
                )
                if policy.hand_raise_counts(
                    model,
                    stage=score.lead.stage,
                    fit=score.fit,
                    hand_raised_at=score.hand_raised_at,
                    recycled_at=partial(recycled.get, score.lead_id),
                ):
                    # A hand-raiser (even one the thresholds also make an MQL) asked for
                    # contact: never part of a wave, never held in the queue.
                    hand_raisers.append(move)
                else:
                    moves.append(move)
            # The hand-raisers first, outside the wave: they take the reps' room before
            # the wave does, and queued they wait with their clock running from the MQL,
            # as after any single move (the bulk move without a wave writes the same rows).
            for group, group_wave in ((hand_raisers, None), (moves, wave)):
                moved += len(
                    leads_transition_bulk(
                        moves=group, to_stage=Stage.MQL, actor=ACTOR, wave=group_wave
                    )
                )
    return moved


# Rows of an import from which its MQLs are one wave, handed on together after the rows
# (below it each row's MQL goes on in the row's transaction, as an event's does).
IMPORT_WAVE_MIN = 20


def leads_hand_off_imported(
    *, lead_ids: Sequence[int], key: str, label: str, started_by: User | None = None
) -> int:
    """The MQLs a large import makes (its rows scored with apply_policy=False and
    committed): the policy applied to each lead now, and those crossing into MQL handed
    on set-based as one wave (kind import), as a publish's are: above the teams' room
    they wait in the queue with their clocks stopped. Hand-raisers move set-based too,
    first and outside the wave (hand_off_new_mqls).

    `key` names the import's wave: every run of its hand-off (a retry of leads that were
    busy, the end of an import handed on half-way) adds to the same wave. Returns how
    many moved; a wave still without MQLs is not kept."""
    model = published_model()
    if model is None or not lead_ids:
        return 0
    wave = mql_wave_start(kind=WaveKind.IMPORT, key=key, label=label, started_by=started_by)
    now = timezone.now()
    moved = hand_off_new_mqls(model, sorted(set(lead_ids)), now, wave=wave)
    if moved:
        mql_wave_finish(key=wave.key, at=timezone.now())
    MqlWave.objects.filter(pk=wave.pk, mqls=0).delete()
    return moved


def scoring_model_accept_suggestion(
    *, model: ScoringModel, rule_key: str, points: int, actor: User | None = None
) -> ScoringModel:
    """A marketer accepts a suggestion (scoring.suggestions): the engagement rule with
    lineage key `rule_key` gets `points` in a draft. On a draft, that draft; on a published
    or archived model, a new draft cloned from it, so the published model never changes.
    Returns the draft."""
    if not -1000 <= points <= 1000:
        raise DomainError(_("Points must be between -1000 and 1000."), code="invalid_points")
    with transaction.atomic():
        draft = model if model.is_draft else scoring_model_clone(source=model, actor=actor)
        rule = draft.engagement_rules.filter(key=rule_key).first()
        if rule is None:
            raise DomainError(
                _("The draft has no such engagement rule; it may have been removed."),
                code="rule_not_found",
            )
        before = rule.points
        rule.points = points
        rule.save(update_fields=["points"])
        note = _("Suggestion accepted: %(rule)s %(before)s → %(after)s points.") % {
            "rule": rule,
            "before": before,
            "after": points,
        }
        draft.notes = f"{draft.notes}\n{note}".strip()
        draft.save(update_fields=["notes", "updated_at"])
    return draft
