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

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Max, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from leadflow.errors import DomainError, InvalidTransition
from leadflow.lifecycle import lead_transition
from leadflow.models import EngagementEvent, Lead, Stage, StageTransition, User
from leadflow.transactions import enqueue_on_commit
from scoring import engine, policy
from scoring.engine import CompiledModel
from scoring.models import (
    LeadScore,
    ModelStatus,
    RescoreRun,
    RescoreSlice,
    RunStatus,
    ScoringModel,
)
from scoring.sql import LeadFilter, upsert_scores

logger = logging.getLogger(__name__)

ACTOR = "scoring"
BATCH_SIZE = 20_000
# Arbitrary constant naming "the published scoring model" for pg advisory locks.
_PUBLISH_LOCK_KEY = 7_301_001


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
) -> LeadScore | None:
    """Score what changed for one lead in the caller's transaction: its fields (fit) and
    the engagement events just recorded for it, then apply the MQL policy once.

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
        _apply_policy(lead=lead, score=score, model=model, now=now)
    return score


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
    if reason == policy.THRESHOLDS:
        text = _(
            "Scoring v%(version)s: fit %(fit)s ≥ %(fit_min)s and "
            "engagement %(engagement)s ≥ %(engagement_min)s."
        ) % {
            "version": model.version,
            "fit": score.fit,
            "fit_min": model.fit_threshold,
            "engagement": score.engagement,
            "engagement_min": model.engagement_threshold,
        }
    else:
        text = _("Scoring v%(version)s: hand-raiser event with fit %(fit)s ≥ %(fit_min)s.") % {
            "version": model.version,
            "fit": score.fit,
            "fit_min": model.hand_raiser_min_fit,
        }
    try:
        return lead_transition(
            lead=lead,
            to_stage=Stage.MQL,
            actor=ACTOR,
            reason=text,
            expected_from=stage,
            context={
                "scoring_model": model.id,
                "version": model.version,
                "rule": reason,
                "fit": score.fit,
                "engagement": score.engagement,
            },
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
        run = _run_create(model=locked, now=now)
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
        return _run_create(model=model, now=timezone.now(), enqueue=enqueue)


def _run_create(*, model: ScoringModel, now: datetime, enqueue: bool = True) -> RescoreRun:
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
    for _worker in range(workers if enqueue else 0):
        enqueue_on_commit(rescore_run_task, run.pk)
    return run


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
    *, run_id: int, time_budget: float | None = None, batch_size: int = BATCH_SIZE
) -> bool:
    """Score batches of one run, each in its own transaction, until the run is done or
    `time_budget` seconds have passed. Returns True while work remains for this caller.

    Several workers can call this for the same run at once: each batch takes a slice no
    one else holds (SKIP LOCKED), scores the next `batch_size` leads of it and moves
    that slice's cursor in the same commit. So it is safe to run twice, and after a
    crash the batch that was lost is simply scored again.

    The leads a batch makes MQLs are moved after its commit, one transaction each. In the
    batch they would be locked after their scores (intake locks a lead, then its score:
    a deadlock), and each move routes the MQL under its team's lock, which every other
    MQL of that team then waited for until the whole batch committed. A crash between the
    commit and the moves loses nothing: the run's end promotes whoever still qualifies."""
    started = time.monotonic()
    while True:
        candidates: list[int] = []
        with transaction.atomic():
            _publish_lock(exclusive=False)
            run = RescoreRun.objects.select_related("model").get(pk=run_id)
            if run.status not in (RunStatus.QUEUED, RunStatus.RUNNING):
                return False
            now = timezone.now()
            if run.model.status != ModelStatus.PUBLISHED:
                _run_close(run_id, RunStatus.SUPERSEDED, now)
                return False
            part = (
                RescoreSlice.objects.select_for_update(skip_locked=True)
                .filter(run_id=run_id, finished=False)
                .order_by("lower")
                .first()
            )
            if part is None:
                # Nothing left to take: finish if every slice is done (others may still
                # be on theirs; the last one to finish closes the run).
                _run_finish(run_id, now)
                return False
            model = engine.compiled(run.model_id)
            upper, count = _next_batch(part.cursor, part.upper, batch_size)
            if count == 0:
                part.finished = True
                part.save(update_fields=["finished"])
                continue
            _set_local_work_mem()
            upsert_scores(
                model,
                leads=LeadFilter.id_range(part.cursor, upper),
                now=now,
                skip_fresh_since=run.created_at,
            )
            candidates = _promotion_candidates(model, now, after=part.cursor, upto=upper)
            part.cursor = upper
            part.save(update_fields=["cursor"])
            # Last statement of the batch: the run row is locked only until the commit.
            RescoreRun.objects.filter(pk=run_id).update(
                done=F("done") + count,
                status=RunStatus.RUNNING,
                started_at=Coalesce(F("started_at"), Value(now)),
            )
        moved = _promote_leads(model, candidates, now)
        if moved:
            RescoreRun.objects.filter(pk=run_id).update(moved_to_mql=F("moved_to_mql") + moved)
        if time_budget is not None and time.monotonic() - started >= time_budget:
            return True


def rescore_run_execute(*, run_id: int, batch_size: int = BATCH_SIZE) -> None:
    """Run a rescore to the end in this process (bench, management shell)."""
    while rescore_run_step(run_id=run_id, batch_size=batch_size):
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
    moved = _sweep_stale(model, now)
    # Leads a batch scored but whose move was lost (a worker that died right after the
    # batch's commit): normally none, so this is one small query.
    moved += _promote_leads(model, _promotion_candidates(model, now), now)
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


def _set_local_work_mem() -> None:
    # The ranking sort of one batch's events fits in memory instead of spilling to disk;
    # LOCAL ends with this batch's transaction.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL work_mem = '128MB'")


def _sweep_stale(model: CompiledModel, now: datetime) -> int:
    """Rows still under another model at the end (placeholders, or rows a concurrent
    writer held): score them one by one; they are few. Returns the MQL moves."""
    stale = list(
        LeadScore.objects.exclude(model_id=model.id).values_list("lead_id", flat=True)[:10_000]
    )
    for lead_id in stale:
        upsert_scores(model, leads=LeadFilter.one(lead_id), now=now)
    return _promote_leads(model, stale, now)


def _promotion_candidates(
    model: CompiledModel, now: datetime, *, after: int = 0, upto: int | None = None
) -> list[int]:
    """Leads (of one batch's id range, or all) that the MQL policy moves now: stage,
    thresholds, hand-raiser, the cool-down after a recycle, all in `policy.mql_reason_sql`,
    the same SQL the draft preview counts with. `_promote_leads` re-checks each under its
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
        f" AND l.stage IN ({marks}) AND {reason} IS NOT NULL ORDER BY s.lead_id"
    )
    params = [
        *recycled_params,
        model.id,
        after,
        upto if upto is not None else 2**62,
        *policy.MOVABLE_STAGES,
        *reason_params,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def _promote_leads(model: CompiledModel, lead_ids: list[int], now: datetime) -> int:
    if not lead_ids:
        return 0
    recycled = dict(
        StageTransition.objects.filter(lead_id__in=lead_ids, to_stage=Stage.RECYCLED)
        .values("lead_id")
        .annotate(at=Max("occurred_at"))
        .values_list("lead_id", "at")
    )
    moved = 0
    for lead_id in sorted(lead_ids):
        # One lead per transaction (a savepoint inside a caller's): its lock, its team's
        # lock for the routing, then the commit, so nobody waits for the rest of the list.
        with transaction.atomic():
            _publish_lock(exclusive=False)
            # Re-read under the publish lock: the score as it is now (intake may have
            # moved on), and nothing if another model was published meanwhile.
            score = (
                LeadScore.objects.filter(
                    lead_id=lead_id, model_id=model.id, model__status=ModelStatus.PUBLISHED
                )
                .select_related("lead")
                .first()
            )
            if score is None:
                continue
            moved_now = _apply_policy(
                lead=score.lead,
                score=score,
                model=model,
                now=now,
                recycled_at=partial(recycled.get, lead_id),
            )
        moved += moved_now is not None
    return moved
