"""Scoring reads: explanations of a lead's score; of a draft: its differences from the
published model, the preview of what publishing it does, the leads it changes, and the
backtest. Plain functions of their arguments, so a background job can call them too."""

# SQL here is assembled from scoring.sql fragments and bound parameters only.
# ruff: noqa: S608

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from leadflow.models import Lead, Stage
from scoring import engine, policy
from scoring.engine import CompiledModel
from scoring.models import (
    COMPANY_FIELD_PATHS,
    FIELD_PATHS,
    EngagementRule,
    FitCategory,
    FitRule,
    FitSnapshot,
    LeadScore,
    ModelStatus,
    PreviewRun,
    PreviewStatus,
    ScoringModel,
    snapshot_column,
)
from scoring.sql import Dialect, LeadFilter, Sql, escape_like, events_cte, scores_cte

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

# Where a lead stands under a model, now (NULL in SQL: it does not meet the policy).
MOVES = "moves"  # publishing moves it to MQL: exactly `policy.mql_reason_sql`
WITH_SALES = "with_sales"  # already MQL or beyond: scoring leaves it where it is
COOLING = "cooling"  # recycled, inside the model's cool-down
OLD_HAND = "old_hand"  # recycled, cool-down over, but only a hand raised before the recycle
OTHER_STAGE = "other_stage"  # anonymous or disqualified: scoring never moves those
OUTCOMES = (MOVES, WITH_SALES, COOLING, OLD_HAND, OTHER_STAGE)
CHANGED = "changed"  # the list filter: meets the policy under one model only
OUTCOME_LABELS = {
    MOVES: gettext_lazy("moves to MQL"),
    WITH_SALES: gettext_lazy("stays: already MQL or beyond"),
    COOLING: gettext_lazy("waits: recycling cool-down"),
    OLD_HAND: gettext_lazy("waits: hand raised before the recycling"),
    OTHER_STAGE: gettext_lazy("stays: scoring never moves this stage"),
    None: gettext_lazy("does not meet the MQL policy"),
}


def _qualifies_sql(model: CompiledModel, alias: str) -> tuple[str, list]:
    sql, params = policy.qualifies_sql(
        model,
        fit=f"{alias}.fit",
        engagement=f"{alias}.engagement",
        hand_raised_at=f"{alias}.hand_raised_at",
    )
    return f"(CASE WHEN {sql} THEN 1 ELSE 0 END)", params


def _outcome_sql(model: CompiledModel, alias: str, now: datetime) -> tuple[str, list]:
    """One of OUTCOMES or NULL, for the scores `alias` of the lead `l` whose last recycle
    is `r.recycled_at`. MOVES is `policy.mql_reason_sql`, the very test the publish's
    rescore applies, so the preview's count is the publish's."""
    cols = {
        "fit": f"{alias}.fit",
        "engagement": f"{alias}.engagement",
        "hand_raised_at": f"{alias}.hand_raised_at",
    }
    qualifies, q_params = policy.qualifies_sql(model, **cols)
    reason, r_params = policy.mql_reason_sql(
        model, stage="l.stage", recycled_at="r.recycled_at", now=now, **cols
    )
    cooling, c_params = policy.cooling_sql(
        model, stage="l.stage", recycled_at="r.recycled_at", now=now
    )
    marks = ", ".join(["%s"] * len(policy.WITH_SALES_STAGES))
    sql = (
        f"(CASE WHEN NOT {qualifies} THEN NULL WHEN {reason} IS NOT NULL THEN %s"
        f" WHEN l.stage IN ({marks}) THEN %s WHEN {cooling} THEN %s"
        " WHEN l.stage = %s THEN %s ELSE %s END)"
    )
    params = [
        *q_params,
        *r_params,
        MOVES,
        *policy.WITH_SALES_STAGES,
        WITH_SALES,
        *c_params,
        COOLING,
        Stage.RECYCLED,
        OLD_HAND,
        OTHER_STAGE,
    ]
    return sql, params


@dataclass
class Outcomes:
    """The leads meeting one model's MQL policy now, by what publishing does with them.
    `qualify` is the sum of the other five."""

    qualify: int = 0
    moves: int = 0
    with_sales: int = 0
    cooling: int = 0
    old_hand: int = 0
    other_stage: int = 0

    def add(self, outcome: str | None, n: int) -> None:
        if outcome is None:
            return
        self.qualify += n
        setattr(self, outcome, getattr(self, outcome) + n)


@dataclass(frozen=True)
class RuleDelta:
    """What one rule (or a category's limit) gives a lead under each model."""

    label: str
    before: int  # points under the published model (0: it did not apply)
    after: int  # under the draft

    @property
    def delta(self) -> int:
        return self.after - self.before


@dataclass(frozen=True)
class ChangedLead:
    lead_id: int
    email: str
    name: str
    company: str
    stage: str
    published_fit: int
    published_engagement: int
    draft_fit: int
    draft_engagement: int
    published_outcome: str | None
    draft_outcome: str | None
    rules: list[RuleDelta] = field(default_factory=list)  # largest change first

    @property
    def gained(self) -> bool:
        """Meets the policy under the draft but not under the published model."""
        return self.draft_outcome is not None and self.published_outcome is None

    @property
    def lost(self) -> bool:
        return self.draft_outcome is None and self.published_outcome is not None

    @property
    def stage_label(self) -> str:
        return str(Stage(self.stage).label) if self.stage in Stage.values else self.stage

    @property
    def published_outcome_label(self) -> str:
        return str(OUTCOME_LABELS[self.published_outcome])

    @property
    def draft_outcome_label(self) -> str:
        return str(OUTCOME_LABELS[self.draft_outcome])


@dataclass(frozen=True)
class ChangesPage:
    leads: list[ChangedLead]
    total: int  # leads matching the filter and the search, on every page
    page: int
    per_page: int
    only: str
    search: str

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def first_index(self) -> int:
        return 0 if not self.leads else (self.page - 1) * self.per_page + 1

    @property
    def last_index(self) -> int:
        return (self.page - 1) * self.per_page + len(self.leads)


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
    now_published: Outcomes = field(default_factory=Outcomes)
    now_draft: Outcomes = field(default_factory=Outcomes)
    gained: int = 0  # meet the policy under the draft only
    lost: int = 0  # under the published model only
    backtest: list[BacktestRow] = field(default_factory=list)
    history_leads: int = 0
    # Of the history leads, those handed over before fit snapshots were kept: their
    # backtest uses today's fit.
    history_today_fit: int = 0
    # Of the history leads, those with events only after their handoff.
    history_missing: int = 0
    # Per team, what the MQLs publishing makes would do to sales (handoff.bulk's
    # wave_forecast rows: team, leads, free, handed, waiting), as the job computed it.
    wave: list[dict] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return self.gained + self.lost

    @property
    def mql_change(self) -> str:
        delta = self.now_draft.qualify - self.now_published.qualify
        return f"+{delta}" if delta > 0 else ("±0" if delta == 0 else f"−{-delta}")


def _pair_ctes(draft: CompiledModel, published: CompiledModel, **kwargs) -> Sql:
    """Both models' scores (d_scores, p_scores) from one read of the events (ev_all)."""
    out = Sql()
    events = events_cte(
        [draft, published],
        leads=kwargs["leads"],
        name="ev_all",
        cutoff_cte=kwargs.get("cutoff_cte"),
    )
    if events is not None:
        out.add(events.text + ", ", events.params)
        kwargs["events_from"] = "ev_all"
    ctes = scores_cte(draft, prefix="d_", **kwargs)
    other = scores_cte(published, prefix="p_", **kwargs)
    return out.add(ctes.text, ctes.params).add(", " + other.text, other.params)


def _models(draft: ScoringModel) -> tuple[CompiledModel, CompiledModel | None]:
    published_row = ScoringModel.objects.filter(status=ModelStatus.PUBLISHED).first()
    return engine.compiled(draft), (engine.compiled(published_row) if published_row else None)


def now_scores_sql(
    d_model: CompiledModel,
    baseline: CompiledModel,
    as_of: datetime,
    extra: str = "",
    leads: LeadFilter | None = None,
):
    """WITH ... x: every lead (of `leads`) with both models' scores now and its outcome
    under each (columns id, stage, pf, pe, df, de, pout, dout, and `extra` ones from l,
    d, p)."""
    leads = leads or LeadFilter.everyone()
    ctes = _pair_ctes(d_model, baseline, leads=leads, as_of=as_of)
    recycled, recycled_params = policy.last_recycled_sql()
    p_out, p_params = _outcome_sql(baseline, "p", as_of)
    d_out, d_params = _outcome_sql(d_model, "d", as_of)
    # The leads' filter on l and on the recycles too: a batch of the preview job then
    # reads its own id range instead of every lead and every recycle.
    where, where_params = leads.on("l.id")
    r_where, r_params = leads.on("r0.lead_id")
    base = Sql("WITH ").add(ctes.text, ctes.params)
    base.add(
        f", x AS (SELECT l.id, l.stage, p.fit AS pf, p.engagement AS pe,"
        f" d.fit AS df, d.engagement AS de, {p_out} AS pout, {d_out} AS dout{extra}"
        " FROM leadflow_lead l JOIN d_scores d ON d.lead_id = l.id"
        f" JOIN p_scores p ON p.lead_id = l.id LEFT JOIN (SELECT * FROM {recycled} r0"
        f" WHERE {r_where}) r ON r.lead_id = l.id WHERE {where})",
        [*p_params, *d_params, *recycled_params, *r_params, *where_params],
    )
    return base


def scoring_model_preview(
    *, draft: ScoringModel, as_of: datetime | None = None, backtest: bool = True
) -> Preview:
    """How the draft would change who meets the MQL policy now, what publishing it would
    do with those leads, and how it would have judged the leads sales has already
    decided on. Reads only; set-based passes over the leads."""
    as_of = as_of or timezone.now()
    d_model, p_model = _models(draft)
    preview = Preview(draft=d_model, published=p_model, as_of=as_of)
    # Without a published model, compare against the draft itself (no changes).
    baseline = p_model or d_model
    counts = now_scores_sql(d_model, baseline, as_of).add(
        " SELECT pout, dout, COUNT(*) FROM x GROUP BY pout, dout"
    )
    with connection.cursor() as cursor:
        cursor.execute(counts.text, counts.params)
        _count_outcomes(preview, cursor.fetchall())
    if backtest:
        figures = _backtest(d_model, baseline)
        preview.backtest, preview.history_leads = _backtest_rows(figures), figures.leads
        preview.history_today_fit = figures.today_fit
        preview.history_missing = figures.missing_history
    return preview


def _count_outcomes(preview: Preview, rows) -> None:
    """Add (published outcome, draft outcome, leads) rows to the preview's counts."""
    for p_out, d_out, n in rows:
        preview.total_leads += n
        preview.now_published.add(p_out, n)
        preview.now_draft.add(d_out, n)
        preview.gained += n if (d_out is not None and p_out is None) else 0
        preview.lost += n if (p_out is not None and d_out is None) else 0


def scoring_model_changes(
    *,
    draft: ScoringModel,
    as_of: datetime | None = None,
    only: str = CHANGED,
    search: str = "",
    page: int = 1,
    per_page: int = 50,
) -> ChangesPage:
    """One page of the leads the draft changes (`only=CHANGED`: meets the policy under
    one model only) or of the leads with one draft outcome (`only=MOVES`: the leads a
    publish moves to MQL), matching `search` (name, kana, e-mail, company), each with
    its scores under both models and the rules that make the difference."""
    _check_only(only)
    as_of = as_of or timezone.now()
    d_model, p_model = _models(draft)
    baseline = p_model or d_model
    extra = ", p.fit_rules AS pfr, p.state AS pst, d.fit_rules AS dfr, d.state AS dst"
    base = now_scores_sql(d_model, baseline, as_of, extra)

    def contributions(rows: list) -> dict[int, tuple]:
        return {row[0]: (row[12], row[13], row[14], row[15]) for row in rows}

    more = ", x.pfr, x.pst, x.dfr, x.dst"
    return _changes_page(base, more, contributions, d_model, baseline, only, search, page, per_page)


def _check_only(only: str) -> None:
    if only != CHANGED and only not in OUTCOMES:
        raise ValueError(f"Unknown filter {only!r}.")


def _changes_page(
    base: Sql,
    more_columns: str,
    contributions: Callable[[list], dict[int, tuple]],
    d_model: CompiledModel,
    baseline: CompiledModel,
    only: str,
    search: str,
    page: int,
    per_page: int,
) -> ChangesPage:
    """The page of `base` (SQL ending in a CTE x with columns id, stage, pf, pe, df, de,
    pout, dout, and `more_columns`), filtered, searched and paged. `contributions`
    gives, for the page's rows, each lead's (published fit_rules, state, draft fit_rules,
    state): the rules that make the difference."""
    page, per_page = max(1, page), max(1, per_page)
    where = Sql()
    if only == CHANGED:
        where.add("(x.pout IS NULL) <> (x.dout IS NULL)")
    else:
        where.add("x.dout = %s", [only])
    needle = engine.ascii_lower(" ".join(search.split()))
    if needle:
        haystack = (
            "l.email || ' ' || l.last_name || ' ' || l.first_name || ' ' || l.last_name"
            " || l.first_name || ' ' || l.last_name_kana || l.first_name_kana || ' '"
            " || COALESCE(c.name, '')"
        )
        where.add(f" AND lower({haystack}) LIKE %s ESCAPE '\\'", [f"%{escape_like(needle)}%"])
    columns = (
        "x.id, l.email, l.last_name, l.first_name, COALESCE(c.name, ''), l.stage,"
        f" x.pf, x.pe, x.df, x.de, x.pout, x.dout, COUNT(*) OVER (){more_columns}"
    )

    def fetch(number: int) -> list:
        sql = Sql(base.text, list(base.params)).add(
            f" SELECT {columns} FROM x JOIN leadflow_lead l ON l.id = x.id"
            " LEFT JOIN leadflow_company c ON c.id = l.company_id"
            f" WHERE {where.text}"
            " ORDER BY CASE WHEN x.dout IS NULL THEN 1 ELSE 0 END, x.df + x.de DESC, x.id"
            " LIMIT %s OFFSET %s",
            [*where.params, per_page, (number - 1) * per_page],
        )
        with connection.cursor() as cursor:
            cursor.execute(sql.text, sql.params)
            return cursor.fetchall()

    rows = fetch(page)
    if not rows and page > 1:
        # A page past the end (the leads changed since the link was made): the first.
        page, rows = 1, fetch(1)
    # The stage column above and its count come first: contributions see them shifted.
    found = contributions([[*row[:12], *row[13:]] for row in rows])
    leads = []
    for row in rows:
        pfr, pst, dfr, dst = found.get(row[0], (None, None, None, None))
        leads.append(
            ChangedLead(
                lead_id=row[0],
                email=row[1],
                name=f"{row[2]} {row[3]}".strip(),
                company=row[4],
                stage=row[5],
                published_fit=row[6],
                published_engagement=row[7],
                draft_fit=row[8],
                draft_engagement=row[9],
                published_outcome=row[10],
                draft_outcome=row[11],
                rules=_rule_deltas(
                    _contributions(baseline, pfr, pst), _contributions(d_model, dfr, dst)
                ),
            )
        )
    total = rows[0][12] if rows else 0
    return ChangesPage(leads, total, page, per_page, only, search)


def _json(value) -> Any:
    # SQLite hands JSON back as text, PostgreSQL's driver as Python objects.
    return json.loads(value) if isinstance(value, str) else value


def _contributions(model: CompiledModel, fit_rules, state) -> dict[str, tuple[str, int]]:
    """Points each rule and category limit gives the lead, by lineage key (so the same
    rule under the two models lines up). They sum to its fit and engagement scores."""
    out: dict[str, tuple[str, int]] = {}
    matched = set(_json(fit_rules) or [])
    per_category: dict[int, int] = {}
    for rule in model.fit_rules:
        if rule.id in matched:
            out[f"fit:{rule.key}"] = (rule.label, rule.points)
            if rule.category_id is not None:
                per_category[rule.category_id] = per_category.get(rule.category_id, 0) + rule.points
    for category in model.categories:
        total = per_category.get(category.id)
        if total is not None and category.clamp(total) != total:
            limit = _("Category limit %(low)s–%(high)s") % {
                "low": "" if category.min_points is None else category.min_points,
                "high": "" if category.max_points is None else category.max_points,
            }
            out[f"category:{category.key}"] = (
                f"{category.name}: {limit}",
                category.clamp(total) - total,
            )
    entries = _json(state) or {}
    for erule in model.engagement_rules:
        entry = entries.get(str(erule.id))
        if entry is not None:
            out[f"engagement:{erule.key}"] = (erule.label, engine.round_points(float(entry[2])))
    return out


def _rule_deltas(before: dict[str, tuple[str, int]], after: dict[str, tuple[str, int]]):
    deltas = []
    for key in dict.fromkeys([*after, *before]):
        label = (after.get(key) or before[key])[0]
        old, new = before.get(key, ("", 0))[1], after.get(key, ("", 0))[1]
        if old != new:
            deltas.append(RuleDelta(label, old, new))
    return sorted(deltas, key=lambda d: -abs(d.delta))


def _fit_at_handoff_cte() -> str:
    """CTE fsrc: for each lead of `co` (lead_id, as_of) the fields its fit is scored
    from, named as on leadflow_lead and leadflow_company (so `scores_cte(fit_from=...)`
    reads them as `l` and `c`): those of its fit snapshot taken at `as_of` (its handoff)
    if there is one, else today's. `snap` is 1 for the snapshot. A snapshot replaces the
    whole row, so a field empty then stays empty."""
    columns = []
    for path in (*FIELD_PATHS, "attributes"):
        name = path.rpartition(".")[2]
        live = f"c0.{name}" if path in COMPANY_FIELD_PATHS else f"l0.{name}"
        snapped = f"s.{snapshot_column(path)}"
        columns.append(f"CASE WHEN s.id IS NULL THEN {live} ELSE {snapped} END AS {name}")
    return (
        f"fsrc AS {Dialect().materialized}(SELECT co.lead_id AS id, {', '.join(columns)},"
        " CASE WHEN s.id IS NULL THEN 0 ELSE 1 END AS snap"
        " FROM co JOIN leadflow_lead l0 ON l0.id = co.lead_id"
        " LEFT JOIN leadflow_company c0 ON c0.id = l0.company_id"
        " LEFT JOIN scoring_fitsnapshot s ON s.lead_id = co.lead_id AND s.taken_at = co.as_of)"
    )


def handoff_scores_sql(draft: CompiledModel, published: CompiledModel, leads: LeadFilter) -> Sql:
    """WITH ... bt: each lead (of `leads`) handed to sales, scored under both models as
    of its handoff (its first move to MQL or SQL), with only the events up to then and
    the fit it had then (its snapshot, else today's), and what sales decided later.
    Columns lead_id, as_of, df, de, dh, dq, pf, pe, ph, pq (q: meets the policy, 0/1),
    won, rejected (0/1), snap (1: fit from the snapshot), for the calibration
    (scoring.calibration's definitions) decided, customer and missing (0/1: events
    after the handoff but none up to it), and for the suggestions lost (0/1: lost after
    SQL) and, of a decided lead, ds and ps (each model's engagement state per rule)."""
    where, where_params = leads.on("lead_id")
    e_where, e_params = leads.on("e.lead_id")
    sql = Sql(
        "WITH co AS (SELECT lead_id, MIN(occurred_at) AS as_of FROM leadflow_stagetransition"
        f" WHERE to_stage IN (%s, %s) AND {where} GROUP BY lead_id),"
        " outcome AS (SELECT lead_id,"
        " MAX(CASE WHEN to_stage IN (%s, %s, %s, %s) THEN 1 ELSE 0 END) AS won,"
        " MAX(CASE WHEN from_stage = %s AND to_stage = %s THEN 1 ELSE 0 END) AS rejected,"
        " MAX(CASE WHEN from_stage = %s OR to_stage IN (%s, %s, %s, %s) THEN 1 ELSE 0 END)"
        " AS decided,"
        " MAX(CASE WHEN to_stage IN (%s, %s) THEN 1 ELSE 0 END) AS customer,"
        " MAX(CASE WHEN from_stage IN (%s, %s) AND to_stage = %s THEN 1 ELSE 0 END) AS lost"
        f" FROM leadflow_stagetransition WHERE {where} GROUP BY lead_id), " + _fit_at_handoff_cte(),
        [
            Stage.MQL,
            Stage.SQL,
            *where_params,
            *WON_STAGES,
            Stage.MQL,
            Stage.RECYCLED,
            Stage.MQL,
            *WON_STAGES,
            Stage.CUSTOMER,
            Stage.ADVOCATE,
            Stage.SQL,
            Stage.OPPORTUNITY,
            Stage.RECYCLED,
            *where_params,
        ],
    )
    ctes = _pair_ctes(
        draft,
        published,
        leads=leads,
        cutoff_cte="co",
        fit_from="fsrc l JOIN fsrc c ON c.id = l.id",
    )
    dq, dq_params = _qualifies_sql(draft, "d")
    pq, pq_params = _qualifies_sql(published, "p")
    sql.add(", " + ctes.text, ctes.params)
    # Any event counts here, scored or not: what is missing is the lead's history. The
    # events were read once (ev_all, every event of these leads) unless no model reads any.
    events = "ev_all" if "ev_all AS " in ctes.text else "leadflow_engagementevent"
    sql.add(
        ", seen AS (SELECT e.lead_id,"
        " MAX(CASE WHEN e.occurred_at <= co.as_of THEN 1 ELSE 0 END) AS before"
        f" FROM {events} e JOIN co ON co.lead_id = e.lead_id WHERE {e_where} GROUP BY e.lead_id)",
        e_params,
    )
    sql.add(
        ", bt AS (SELECT co.lead_id, co.as_of, d.fit AS df, d.engagement AS de,"
        f" d.hand_raised_at AS dh, {dq} AS dq, p.fit AS pf, p.engagement AS pe,"
        f" p.hand_raised_at AS ph, {pq} AS pq, o.won, o.rejected, f.snap, o.decided,"
        " o.customer, CASE WHEN seen.before = 0 THEN 1 ELSE 0 END AS missing, o.lost,"
        " CASE WHEN o.decided = 1 THEN d.state END AS ds,"
        " CASE WHEN o.decided = 1 THEN p.state END AS ps"
        " FROM co JOIN outcome o ON o.lead_id = co.lead_id JOIN fsrc f ON f.id = co.lead_id"
        " JOIN d_scores d ON d.lead_id = co.lead_id JOIN p_scores p ON p.lead_id = co.lead_id"
        " LEFT JOIN seen ON seen.lead_id = co.lead_id)",
        [*dq_params, *pq_params],
    )
    return sql


@dataclass(frozen=True)
class BacktestFigures:
    """Sums over the leads handed to sales: `leads`; of them `won` (became SQL or
    customer) and `rejected`; of those, the ones each model would have made MQL; and
    `today_fit`: handed over before fit snapshots were kept (fit is today's)."""

    leads: int = 0
    won: int = 0
    rejected: int = 0
    won_published: int = 0
    won_draft: int = 0
    rejected_published: int = 0
    rejected_draft: int = 0
    today_fit: int = 0
    # Events only after the handoff, none up to it: their history then is missing (an
    # import of old handoffs, events back-filled later) and they score 0 engagement.
    missing_history: int = 0


# The sums of BacktestFigures' fields over a CTE or table of handoff scores: columns
# won, rejected, pq, dq, snap, missing (0/1 or booleans) named by `col`.
def backtest_sums_sql(col: Callable[[str], str]) -> str:
    def one(name: str) -> str:
        return f"CASE WHEN {col(name)} THEN 1 ELSE 0 END"

    def both(a: str, b: str) -> str:
        return f"COALESCE(SUM(CASE WHEN {col(a)} AND {col(b)} THEN 1 ELSE 0 END), 0)"

    return (
        f"COUNT(*), COALESCE(SUM({one('won')}), 0), COALESCE(SUM({one('rejected')}), 0),"
        f" {both('won', 'pq')}, {both('won', 'dq')},"
        f" {both('rejected', 'pq')}, {both('rejected', 'dq')},"
        f" COALESCE(SUM(CASE WHEN {col('snap')} THEN 0 ELSE 1 END), 0),"
        f" COALESCE(SUM({one('missing')}), 0)"
    )


def _backtest(draft: CompiledModel, published: CompiledModel) -> BacktestFigures:
    """Score each decided lead as of its handoff under both models; compare with what
    sales decided later (see `handoff_scores_sql`)."""
    sql = handoff_scores_sql(draft, published, LeadFilter.everyone())
    sql.add(" SELECT " + backtest_sums_sql(lambda name: f"bt.{name} = 1") + " FROM bt")
    with connection.cursor() as cursor:
        cursor.execute(sql.text, sql.params)
        return BacktestFigures(*(int(v) for v in cursor.fetchone()))


def _backtest_rows(figures: BacktestFigures) -> list[BacktestRow]:
    return [
        BacktestRow(
            _("Became SQL or customer"),
            _("Share the model would have made an MQL at handoff. Higher is better."),
            figures.won,
            figures.won_published,
            figures.won_draft,
            higher_is_better=True,
        ),
        BacktestRow(
            _("Rejected by sales (MQL → recycled)"),
            _("Share the model would still have sent to sales. Lower is better."),
            figures.rejected,
            figures.rejected_published,
            figures.rejected_draft,
            higher_is_better=False,
        ),
    ]


# --- the preview as a job: its stored result ----------------------------------------

# Compiled fields that do not change a score or an outcome: names, labels, lineage keys.
_NOT_SCORED = {"name", "label", "key", "version", "_by_kind"}


def scoring_model_fingerprint(*, draft: CompiledModel, baseline: CompiledModel | None) -> str:
    """A digest of everything that decides the draft's preview: its rules, categories,
    caps, decay, thresholds, hand-raiser and cool-down, and the model it is compared
    with (published models never change, so its id stands for it). Renaming a rule does
    not change it; any edit that can change a score or an outcome does."""

    def scored(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: scored(v) for k, v in value.items() if k not in _NOT_SCORED}
        if isinstance(value, list | tuple):
            return [scored(v) for v in value]
        return value

    content = {
        "draft": scored(dataclasses.asdict(draft)),
        "baseline": baseline.id if baseline is not None else None,
    }
    text = json.dumps(content, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def preview_run_fingerprint(*, draft: ScoringModel) -> tuple[str, CompiledModel | None]:
    """The draft's fingerprint now and the published model it would be compared with."""
    d_model, p_model = _models(draft)
    return scoring_model_fingerprint(draft=d_model, baseline=p_model), p_model


def preview_run_current(*, draft: ScoringModel) -> PreviewRun | None:
    """The draft's preview run for its current content (finished or still going), or
    None: never previewed, or changed since (a rule, a cap, a threshold...) or another
    model was published since."""
    fingerprint, _published = preview_run_fingerprint(draft=draft)
    return PreviewRun.objects.filter(model=draft, fingerprint=fingerprint).order_by("-id").first()


# What the publish confirmation can promise, from the draft's stored preview job.
PROMISE_CURRENT = "current"  # the job for the draft as it is now is done: its count
PROMISE_RUNNING = "running"  # that job is still going
PROMISE_STALE = "stale"  # the draft (or the published model) changed since its last job
PROMISE_NONE = "none"  # the draft was never previewed


@dataclass(frozen=True)
class PublishPromise:
    state: str
    run: PreviewRun | None = None
    preview: Preview | None = None  # PROMISE_CURRENT only


def publish_promise(*, draft: ScoringModel) -> PublishPromise:
    """What publishing the draft will do, as its preview job computed it. The figure is
    the job's and never one scored again in the request: the page that confirms the
    publish states the count the preview page showed, or says why it has none."""
    run = preview_run_current(draft=draft)
    if run is None:
        older = PreviewRun.objects.filter(model=draft).exists()
        return PublishPromise(PROMISE_STALE if older else PROMISE_NONE)
    if run.is_active:
        return PublishPromise(PROMISE_RUNNING, run)
    return PublishPromise(PROMISE_CURRENT, run, preview_from_run(run=run))


def preview_from_run(*, run: PreviewRun) -> Preview:
    """The preview a finished run stored: the same figures `scoring_model_preview` gives
    for the draft as of the run (the same SQL wrote the rows), read from its summary."""
    d_model = engine.compiled(run.model_id)
    published = (
        engine.compiled(run.baseline_id)
        if run.baseline_id is not None and run.baseline_id != run.model_id
        else None
    )
    preview = Preview(draft=d_model, published=published, as_of=run.as_of)
    _count_outcomes(preview, run.summary.get("outcomes", []))
    figures = BacktestFigures(**run.summary.get("backtest", {}))
    preview.backtest, preview.history_leads = _backtest_rows(figures), figures.leads
    preview.history_today_fit = figures.today_fit
    preview.history_missing = figures.missing_history
    preview.wave = run.summary.get("wave", [])
    return preview


def preview_run_changes(
    *,
    run: PreviewRun,
    only: str = CHANGED,
    search: str = "",
    page: int = 1,
    per_page: int = 50,
) -> ChangesPage:
    """`scoring_model_changes` over a finished run's stored scores: one indexed read of
    the run's rows instead of scoring every lead twice. The rules that make the
    difference are worked out for the page's leads only, as of the run."""
    _check_only(only)
    d_model = engine.compiled(run.model_id)
    baseline = engine.compiled(run.baseline_id or run.model_id)
    base = Sql(
        "WITH x AS (SELECT lead_id AS id, published_fit AS pf, published_engagement AS pe,"
        " fit AS df, engagement AS de, published_outcome AS pout, outcome AS dout"
        " FROM scoring_draftleadscore WHERE run_id = %s)",
        [run.pk],
    )

    def contributions(rows: list) -> dict[int, tuple]:
        ids = [int(row[0]) for row in rows]
        if not ids:
            return {}
        marks = ", ".join(["%s"] * len(ids))
        leads = LeadFilter("{col} IN (" + marks + ")", tuple(ids))
        ctes = _pair_ctes(d_model, baseline, leads=leads, as_of=run.as_of)
        sql = Sql("WITH ").add(ctes.text, ctes.params)
        sql.add(
            " SELECT d.lead_id, p.fit_rules, p.state, d.fit_rules, d.state"
            " FROM d_scores d JOIN p_scores p ON p.lead_id = d.lead_id"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql.text, sql.params)
            return {row[0]: tuple(row[1:]) for row in cursor.fetchall()}

    return _changes_page(base, "", contributions, d_model, baseline, only, search, page, per_page)


def preview_fits_inline() -> bool:
    """Few enough leads (SCORING_PREVIEW_INLINE_LEADS) that the preview job runs in the
    request that asks for it: done in less time than a page of progress would take."""
    limit = settings.SCORING_PREVIEW_INLINE_LEADS
    return Lead.objects.values("pk")[: limit + 1].count() <= limit


def preview_run_scored(*, model: ScoringModel) -> PreviewRun | None:
    """The finished preview run whose stored scores stand for `model`: a draft's run
    for the draft as it is now, or, for a published (or archived) model, the latest
    finished run that compared a draft with it (published models never change)."""
    runs = PreviewRun.objects.filter(status=PreviewStatus.DONE).order_by("-id")
    if model.status == ModelStatus.DRAFT:
        run = runs.filter(model=model).first()
        if run is None or run.fingerprint != preview_run_fingerprint(draft=model)[0]:
            return None
        return run
    return runs.filter(baseline=model).first()


def preview_run_side(*, run: PreviewRun, model_id: int) -> str:
    """The column prefix of `model_id`'s scores in the run's rows: "" for the draft,
    "published_" for the model it was compared with."""
    if run.model_id == model_id:
        return ""
    if run.baseline_id == model_id:
        return "published_"
    raise ValueError(f"Preview run {run.pk} did not score model {model_id}.")


def preview_scores_sql(*, model: ScoringModel, at_handoff: bool = False) -> Sql | None:
    """SELECT lead_id, fit, engagement, hand_raised_at of every lead under `model` as its
    latest finished preview job stored them, for other reads to join (calibration):

    * `model` a draft: the draft's scores, if the run is for the draft as it is now;
    * `model` published (or archived): its scores from the latest finished run that
      compared a draft with it (published models never change).

    With `at_handoff`, only the leads handed to sales, scored as of their handoff
    (events up to then, the fit they had then), with four more columns: handed_at, won,
    rejected (sales' later verdict) and fit_from_snapshot (false: today's fit). None when
    no such run has finished: start one with `services.preview_run_start`."""
    run = preview_run_scored(model=model)
    if run is None:
        return None
    side = preview_run_side(run=run, model_id=model.pk)
    table = "scoring_drafthandoffscore" if at_handoff else "scoring_draftleadscore"
    columns = (
        f"lead_id, {side}fit AS fit, {side}engagement AS engagement,"
        f" {side}hand_raised_at AS hand_raised_at"
    )
    if at_handoff:
        columns += ", handed_at, won, rejected, fit_from_snapshot"
    return Sql(f"SELECT {columns} FROM {table} WHERE run_id = %s", [run.pk])


# --- the diff of a draft against the published model -----------------------------------

# What a line of the diff is about (tests and templates may tell them apart).
DIFF_FIT_THRESHOLD = "fit_threshold"
DIFF_ENGAGEMENT_THRESHOLD = "engagement_threshold"
DIFF_HAND_RAISER = "hand_raiser"
DIFF_HAND_RAISER_FIT = "hand_raiser_min_fit"
DIFF_COOLDOWN = "recycle_cooldown"
DIFF_CATEGORY_ADDED = "category_added"
DIFF_CATEGORY_REMOVED = "category_removed"
DIFF_CATEGORY_RENAMED = "category_renamed"
DIFF_CATEGORY_LIMITS = "category_limits"
DIFF_RULE_ADDED = "rule_added"
DIFF_RULE_REMOVED = "rule_removed"
DIFF_RULE_RENAMED = "rule_renamed"
DIFF_RULE_POINTS = "rule_points"
DIFF_RULE_CONDITION = "rule_condition"
DIFF_RULE_CATEGORY = "rule_category"
DIFF_RULE_CAP = "rule_cap"
DIFF_RULE_DECAY = "rule_decay"
DIFF_RULE_ORDER = "rule_order"


@dataclass(frozen=True)
class DiffLine:
    kind: str
    text: str


def _limits(category: FitCategory) -> str:
    low = "" if category.min_points is None else category.min_points
    high = "" if category.max_points is None else category.max_points
    return f"{low}–{high}"


def _cap(rule: EngagementRule) -> str:
    if rule.cap_points is None:
        return _("no cap")
    return _("%(points)s points %(period)s") % {
        "points": rule.cap_points,
        "period": rule.get_cap_period_display(),
    }


def _half_life(rule: EngagementRule) -> str:
    if not rule.half_life_days:
        return _("no decay")
    return _("%(days)s days") % {"days": rule.half_life_days}


def _condition(rule: FitRule | EngagementRule) -> tuple:
    return (rule.operator, tuple(rule.values_list()), rule.min_value, rule.max_value)


def _fit_condition(rule: FitRule) -> tuple:
    return (rule.field, *_condition(rule))


def _engagement_condition(rule: EngagementRule) -> tuple:
    # Without a property the operator and value are ignored (every event of the kind).
    if not rule.property_key:
        return (rule.kind, "")
    return (rule.kind, rule.property_key, *_condition(rule))


def scoring_model_diff(
    *, draft: ScoringModel, published: ScoringModel | None = None
) -> list[DiffLine]:
    """Every rule, category limit, cap, decay, threshold and hand-raiser setting in which
    `draft` differs from `published` (default: the published model), in words: what
    publishing the draft changes. Rules are matched by their lineage key, so an edited
    rule reads as "15 → 30 points", not as one removed and one added. Empty when there is
    nothing to compare with."""
    if published is None:
        published = ScoringModel.objects.filter(status=ModelStatus.PUBLISHED).first()
    if published is None or published.pk == draft.pk:
        return []
    old, new = published, draft
    lines: list[DiffLine] = []

    def line(kind: str, text: str) -> None:
        lines.append(DiffLine(kind, text))

    # MQL policy.
    if old.fit_threshold != new.fit_threshold:
        line(
            DIFF_FIT_THRESHOLD,
            _("MQL fit threshold %(before)s → %(after)s")
            % {"before": old.fit_threshold, "after": new.fit_threshold},
        )
    if old.engagement_threshold != new.engagement_threshold:
        line(
            DIFF_ENGAGEMENT_THRESHOLD,
            _("MQL engagement threshold %(before)s → %(after)s")
            % {"before": old.engagement_threshold, "after": new.engagement_threshold},
        )
    if old.hand_raiser_kind != new.hand_raiser_kind:
        line(
            DIFF_HAND_RAISER,
            _("Hand-raiser event %(before)s → %(after)s")
            % {
                "before": old.get_hand_raiser_kind_display() or _("off"),
                "after": new.get_hand_raiser_kind_display() or _("off"),
            },
        )
    if old.hand_raiser_min_fit != new.hand_raiser_min_fit:
        line(
            DIFF_HAND_RAISER_FIT,
            _("Hand-raiser minimum fit %(before)s → %(after)s")
            % {"before": old.hand_raiser_min_fit, "after": new.hand_raiser_min_fit},
        )
    if old.recycle_cooldown_days != new.recycle_cooldown_days:
        line(
            DIFF_COOLDOWN,
            _("Cool-down after recycling %(before)s → %(after)s days")
            % {"before": old.recycle_cooldown_days, "after": new.recycle_cooldown_days},
        )

    # Fit categories.
    old_cats = {c.key: c for c in old.categories.all()}
    new_cats = {c.key: c for c in new.categories.all()}
    for key, cat in new_cats.items():
        was = old_cats.get(key)
        if was is None:
            line(
                DIFF_CATEGORY_ADDED,
                _("Fit category added: %(name)s (%(limits)s)")
                % {"name": cat.name, "limits": _limits(cat)},
            )
            continue
        if was.name != cat.name:
            line(
                DIFF_CATEGORY_RENAMED,
                _("Fit category %(before)s renamed to %(after)s")
                % {"before": was.name, "after": cat.name},
            )
        if _limits(was) != _limits(cat):
            line(
                DIFF_CATEGORY_LIMITS,
                _("Fit category %(name)s: limits %(before)s → %(after)s")
                % {"name": cat.name, "before": _limits(was), "after": _limits(cat)},
            )
    for key, cat in old_cats.items():
        if key not in new_cats:
            line(
                DIFF_CATEGORY_REMOVED,
                _("Fit category removed: %(name)s (%(limits)s)")
                % {"name": cat.name, "limits": _limits(cat)},
            )

    # Fit rules.
    old_fit = {r.key: r for r in old.fit_rules.select_related("category")}
    new_fit = {r.key: r for r in new.fit_rules.select_related("category")}
    for key, rule in new_fit.items():
        was_f = old_fit.get(key)
        if was_f is None:
            line(
                DIFF_RULE_ADDED,
                _("Fit rule added: %(rule)s (%(points)s points)")
                % {"rule": rule, "points": rule.points},
            )
            continue
        _common_rule_lines(line, was_f, rule)
        if _fit_condition(was_f) != _fit_condition(rule):
            line(
                DIFF_RULE_CONDITION,
                _("%(rule)s: condition %(before)s → %(after)s")
                % {"rule": rule, "before": was_f.describe(), "after": rule.describe()},
            )
        was_cat = was_f.category.name if was_f.category else _("none")
        now_cat = rule.category.name if rule.category else _("none")
        if (was_f.category.key if was_f.category else None) != (
            rule.category.key if rule.category else None
        ):
            line(
                DIFF_RULE_CATEGORY,
                _("%(rule)s: category %(before)s → %(after)s")
                % {"rule": rule, "before": was_cat, "after": now_cat},
            )
    for key, rule in old_fit.items():
        if key not in new_fit:
            line(
                DIFF_RULE_REMOVED,
                _("Fit rule removed: %(rule)s (%(points)s points)")
                % {"rule": rule, "points": rule.points},
            )

    # Engagement rules.
    old_eng = {r.key: r for r in old.engagement_rules.all()}
    new_eng = {r.key: r for r in new.engagement_rules.all()}
    for key, erule in new_eng.items():
        was_e = old_eng.get(key)
        if was_e is None:
            line(
                DIFF_RULE_ADDED,
                _("Engagement rule added: %(rule)s (%(points)s points per event)")
                % {"rule": erule, "points": erule.points},
            )
            continue
        _common_rule_lines(line, was_e, erule)
        if _engagement_condition(was_e) != _engagement_condition(erule):
            line(
                DIFF_RULE_CONDITION,
                _("%(rule)s: condition %(before)s → %(after)s")
                % {"rule": erule, "before": was_e.describe(), "after": erule.describe()},
            )
        if _cap(was_e) != _cap(erule):
            line(
                DIFF_RULE_CAP,
                _("%(rule)s: cap %(before)s → %(after)s")
                % {"rule": erule, "before": _cap(was_e), "after": _cap(erule)},
            )
        if (was_e.half_life_days or None) != (erule.half_life_days or None):
            line(
                DIFF_RULE_DECAY,
                _("%(rule)s: half-life %(before)s → %(after)s")
                % {"rule": erule, "before": _half_life(was_e), "after": _half_life(erule)},
            )
    for key, erule in old_eng.items():
        if key not in new_eng:
            line(
                DIFF_RULE_REMOVED,
                _("Engagement rule removed: %(rule)s (%(points)s points per event)")
                % {"rule": erule, "points": erule.points},
            )
    # For each event the first matching rule counts: a new order can change scores.
    kept_old = [key for key in old_eng if key in new_eng]
    kept_new = [key for key in new_eng if key in old_eng]
    if kept_old != kept_new:
        line(
            DIFF_RULE_ORDER,
            _(
                "The order of the engagement rules changed (each event counts for the first "
                "rule that matches it)."
            ),
        )
    return lines


def _common_rule_lines(line, was: FitRule | EngagementRule, rule: FitRule | EngagementRule):
    if str(was) != str(rule) and was.label != rule.label:
        line(
            DIFF_RULE_RENAMED,
            _("Rule renamed: %(before)s → %(after)s") % {"before": was, "after": rule},
        )
    if was.points != rule.points:
        line(
            DIFF_RULE_POINTS,
            _("%(rule)s %(before)s → %(after)s points")
            % {"rule": rule, "before": was.points, "after": rule.points},
        )


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


def fit_snapshots_export(*, lead_ids: list[int] | tuple[int, ...]) -> list[dict]:
    """The person's fit snapshots (privacy export): the fields kept at each handoff."""
    return list(
        FitSnapshot.objects.filter(lead_id__in=lead_ids)
        .order_by("taken_at")
        .values(
            "lead_id",
            "taken_at",
            *(snapshot_column(path) for path in FIELD_PATHS),
            "attributes",
        )
    )
