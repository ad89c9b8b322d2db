"""Scoring reads: explanations of a lead's score, and the preview/backtest of a draft."""

# SQL here is assembled from scoring.sql fragments and bound parameters only.
# ruff: noqa: S608

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext as _

from leadflow.models import Stage
from scoring import engine, policy
from scoring.engine import CompiledModel
from scoring.models import LeadScore, ModelStatus, ScoringModel
from scoring.sql import LeadFilter, Sql, scores_cte

# --- explanations -----------------------------------------------------------------------


@dataclass(frozen=True)
class FitLine:
    rule_id: int | None  # None for a category cap line
    label: str
    category: str
    points: int


@dataclass(frozen=True)
class EngagementLine:
    rule_id: int
    label: str
    count: int
    points_each: int
    raw: int  # count × points each
    capped: int  # taken away by the rule's period cap (≤ 0 for positive rules)
    decayed: int  # taken away by decay, incl. rounding to whole points
    points: int  # raw + capped + decayed


@dataclass(frozen=True)
class Explanation:
    model: CompiledModel
    as_of: datetime
    computed_at: datetime
    fit: int
    fit_lines: list[FitLine]
    engagement: int
    engagement_lines: list[EngagementLine]
    hand_raised_at: datetime | None
    meets_thresholds: bool
    raised_hand: bool


def lead_score_explain(*, score: LeadScore, at: datetime | None = None) -> Explanation:
    """The score broken down by rule, as of `at` (default: when it was computed).

    Engagement decays with time, so "now" can be below the stored number; the lines
    always sum to the totals returned here."""
    if score.model_id is None:
        raise ValueError("This lead score has not been computed by a model yet.")
    model = engine.compiled(score.model_id)
    at = at or score.computed_at
    cats = model.category_by_id
    matched = set(score.fit_rules)
    fit_lines: list[FitLine] = []
    by_category: dict[int | None, list[engine.CFitRule]] = {}
    for rule in model.fit_rules:
        if rule.id in matched:
            by_category.setdefault(rule.category_id, []).append(rule)
    for category in [*model.categories, None]:
        rules = by_category.get(category.id if category else None, [])
        name = category.name if category else ""
        for rule in rules:
            fit_lines.append(FitLine(rule.id, rule.label, name, rule.points))
        if category and rules:
            total = sum(r.points for r in rules)
            clamped = cats[category.id].clamp(total)
            if clamped != total:
                fit_lines.append(
                    FitLine(
                        None,
                        _("Category limit %(low)s–%(high)s")
                        % {
                            "low": "" if category.min_points is None else category.min_points,
                            "high": "" if category.max_points is None else category.max_points,
                        },
                        name,
                        clamped - total,
                    )
                )

    engagement_lines: list[EngagementLine] = []
    for erule in model.engagement_rules:
        entry = score.engagement_state.get(str(erule.id))
        if entry is None:
            continue
        count, awarded = int(entry[0]), int(entry[1])
        points = engine.round_points(engine.decayed(entry[2], erule, score.computed_at, at))
        raw = count * erule.points
        engagement_lines.append(
            EngagementLine(
                rule_id=erule.id,
                label=erule.label,
                count=count,
                points_each=erule.points,
                raw=raw,
                capped=awarded - raw,
                decayed=points - awarded,
                points=points,
            )
        )
    fit = sum(line.points for line in fit_lines)
    engagement = sum(line.points for line in engagement_lines)
    return Explanation(
        model=model,
        as_of=at,
        computed_at=score.computed_at,
        fit=fit,
        fit_lines=fit_lines,
        engagement=engagement,
        engagement_lines=engagement_lines,
        hand_raised_at=score.hand_raised_at,
        meets_thresholds=policy.meets_thresholds(model, fit, engagement),
        raised_hand=policy.raised_hand(model, fit, score.hand_raised_at),
    )


# --- preview and backtest of a draft ----------------------------------------------------

WON_STAGES = (Stage.SQL, Stage.OPPORTUNITY, Stage.CUSTOMER, Stage.ADVOCATE)


def _qualifies_sql(model: CompiledModel, alias: str) -> tuple[str, list]:
    sql = f"({alias}.fit >= %s AND {alias}.engagement >= %s)"
    params: list = [model.fit_threshold, model.engagement_threshold]
    if model.hand_raiser_kind:
        sql += f" OR ({alias}.fit >= %s AND {alias}.hand_raised_at IS NOT NULL)"
        params.append(model.hand_raiser_min_fit)
    return f"(CASE WHEN {sql} THEN 1 ELSE 0 END)", params


@dataclass(frozen=True)
class ChangedLead:
    lead_id: int
    email: str
    stage: str
    published_fit: int
    published_engagement: int
    draft_fit: int
    draft_engagement: int
    gained: bool  # MQL under the draft but not under the published model

    @property
    def stage_label(self) -> str:
        return str(Stage(self.stage).label) if self.stage in Stage.values else self.stage


@dataclass(frozen=True)
class BacktestRow:
    label: str
    help: str
    leads: int
    published: int
    draft: int
    higher_is_better: bool

    @property
    def published_share(self) -> float | None:
        return None if not self.leads else 100.0 * self.published / self.leads

    @property
    def draft_share(self) -> float | None:
        return None if not self.leads else 100.0 * self.draft / self.leads

    @property
    def better(self) -> bool | None:
        if self.draft == self.published:
            return None
        return (self.draft > self.published) == self.higher_is_better


@dataclass
class Preview:
    draft: CompiledModel
    published: CompiledModel | None
    as_of: datetime
    total_leads: int = 0
    published_mql: int = 0
    draft_mql: int = 0
    published_movable: int = 0  # would move to MQL: qualifies and is known/recycled now
    draft_movable: int = 0
    gained: int = 0
    lost: int = 0
    changes: list[ChangedLead] = field(default_factory=list)
    backtest: list[BacktestRow] = field(default_factory=list)
    history_leads: int = 0

    @property
    def changed(self) -> int:
        return self.gained + self.lost

    @property
    def mql_change(self) -> str:
        delta = self.draft_mql - self.published_mql
        return f"+{delta}" if delta > 0 else ("±0" if delta == 0 else f"−{-delta}")


def _pair_ctes(draft: CompiledModel, published: CompiledModel, **kwargs) -> Sql:
    ctes = scores_cte(draft, prefix="d_", **kwargs)
    other = scores_cte(published, prefix="p_", **kwargs)
    return Sql().add(ctes.text, ctes.params).add(", " + other.text, other.params)


def scoring_model_preview(
    *, draft: ScoringModel, as_of: datetime | None = None, limit: int = 100
) -> Preview:
    """How the draft would change who is an MQL now, and how it would have judged the
    leads sales has already decided on. Reads only; two set-based passes over leads."""
    as_of = as_of or timezone.now()
    d_model = engine.compiled(draft)
    published_row = ScoringModel.objects.filter(status=ModelStatus.PUBLISHED).first()
    p_model = engine.compiled(published_row) if published_row else None
    preview = Preview(draft=d_model, published=p_model, as_of=as_of)
    # Without a published model, compare against the draft itself (no changes).
    baseline = p_model or d_model

    ctes = _pair_ctes(d_model, baseline, leads=LeadFilter.everyone(), as_of=as_of)
    dq, dq_params = _qualifies_sql(d_model, "d")
    pq, pq_params = _qualifies_sql(baseline, "p")
    movable = "CASE WHEN l.stage IN (%s, %s) THEN 1 ELSE 0 END"
    base = Sql("WITH ").add(ctes.text, ctes.params)
    base.add(
        f", x AS (SELECT l.id, l.email, l.stage, p.fit AS pf, p.engagement AS pe,"
        f" d.fit AS df, d.engagement AS de, {pq} AS pq, {dq} AS dq, {movable} AS mv"
        " FROM leadflow_lead l JOIN d_scores d ON d.lead_id = l.id"
        " JOIN p_scores p ON p.lead_id = l.id)",
        [*pq_params, *dq_params, *policy.MOVABLE_STAGES],
    )
    counts = Sql(base.text, list(base.params)).add(
        " SELECT pq, dq, mv, COUNT(*) FROM x GROUP BY pq, dq, mv"
    )
    changed = Sql(base.text, list(base.params)).add(
        " SELECT id, email, stage, pf, pe, df, de, dq FROM x WHERE pq <> dq"
        " ORDER BY dq DESC, df + de DESC, id LIMIT %s",
        [limit],
    )
    with connection.cursor() as cursor:
        cursor.execute(counts.text, counts.params)
        for p_q, d_q, mv, n in cursor.fetchall():
            preview.total_leads += n
            preview.published_mql += n * p_q
            preview.draft_mql += n * d_q
            preview.published_movable += n * p_q * mv
            preview.draft_movable += n * d_q * mv
            preview.gained += n if d_q > p_q else 0
            preview.lost += n if p_q > d_q else 0
        if p_model is not None:
            cursor.execute(changed.text, changed.params)
            preview.changes = [
                ChangedLead(row[0], row[1], row[2], row[3], row[4], row[5], row[6], bool(row[7]))
                for row in cursor.fetchall()
            ]
    preview.backtest, preview.history_leads = _backtest(d_model, baseline)
    return preview


def _backtest(draft: CompiledModel, published: CompiledModel) -> tuple[list[BacktestRow], int]:
    """Score each decided lead as of its handoff (its first move to MQL or SQL), using only
    the events up to then, under both models; compare with what sales decided later.

    Fit uses the lead's current fields: the core keeps no history of attribute values."""
    history = Sql(
        "co AS (SELECT lead_id, MIN(occurred_at) AS as_of FROM leadflow_stagetransition"
        " WHERE to_stage IN (%s, %s) GROUP BY lead_id),"
        " outcome AS (SELECT lead_id,"
        " MAX(CASE WHEN to_stage IN (%s, %s, %s, %s) THEN 1 ELSE 0 END) AS won,"
        " MAX(CASE WHEN from_stage = %s AND to_stage = %s THEN 1 ELSE 0 END) AS rejected"
        " FROM leadflow_stagetransition GROUP BY lead_id)",
        [Stage.MQL, Stage.SQL, *WON_STAGES, Stage.MQL, Stage.RECYCLED],
    )
    ctes = _pair_ctes(draft, published, leads=LeadFilter.everyone(), cutoff_cte="co")
    dq, dq_params = _qualifies_sql(draft, "d")
    pq, pq_params = _qualifies_sql(published, "p")
    sql = Sql("WITH ").add(history.text, history.params).add(", " + ctes.text, ctes.params)
    sql.add(
        f" SELECT COUNT(*), COALESCE(SUM(o.won), 0), COALESCE(SUM(o.rejected), 0),"
        f" COALESCE(SUM(o.won * {pq}), 0), COALESCE(SUM(o.won * {dq}), 0),"
        f" COALESCE(SUM(o.rejected * {pq}), 0), COALESCE(SUM(o.rejected * {dq}), 0)"
        " FROM co JOIN outcome o ON o.lead_id = co.lead_id"
        " JOIN d_scores d ON d.lead_id = co.lead_id JOIN p_scores p ON p.lead_id = co.lead_id",
        [*pq_params, *dq_params, *pq_params, *dq_params],
    )
    with connection.cursor() as cursor:
        cursor.execute(sql.text, sql.params)
        total, won, rejected, won_p, won_d, rej_p, rej_d = (int(v) for v in cursor.fetchone())
    rows = [
        BacktestRow(
            _("Became SQL or customer"),
            _("Share the model would have made an MQL at handoff. Higher is better."),
            won,
            won_p,
            won_d,
            higher_is_better=True,
        ),
        BacktestRow(
            _("Rejected by sales (MQL → recycled)"),
            _("Share the model would still have sent to sales. Lower is better."),
            rejected,
            rej_p,
            rej_d,
            higher_is_better=False,
        ),
    ]
    return rows, total


def lead_scores_export(*, lead_ids: list[int] | tuple[int, ...]) -> list[dict]:
    """The stored scores of the person's lead (privacy export): numbers and the model."""
    return [
        {
            "lead": score.lead_id,
            "model": f"{score.model.name} v{score.model.version}" if score.model else None,
            "fit": score.fit,
            "engagement": score.engagement,
            "fit_rules": score.fit_rules,
            "hand_raised_at": score.hand_raised_at,
            "computed_at": score.computed_at,
        }
        for score in LeadScore.objects.filter(lead_id__in=lead_ids).select_related("model")
    ]
