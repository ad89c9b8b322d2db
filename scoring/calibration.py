"""Calibration of a scoring model on the customer's own outcomes, and its MQL threshold.

Every lead sales has already decided on (its first move to MQL or SQL, then a verdict) is
scored as of that handoff with only the events it had by then, as the backtest does. The
leads are then grouped by score (a fit × engagement grid, and deciles of fit +
engagement), and each group's rate of becoming SQL, being won and being rejected by sales
is read against the score. The MQL threshold is judged by precision (of the leads it makes
MQL, the share that became SQL) and recall (of the leads that became SQL, the share it
made MQL), and the threshold explorer moves the thresholds over the same leads.

All of it comes from one set-based statement per model: the decided leads' scores are
aggregated in SQL into a histogram of (fit, engagement, hand raised, decile) with the
outcome counts; the grid, the deciles and every point of the explorer are sums over that
histogram, which is small (scores are whole points), so moving a threshold costs no query.
"""

# SQL here is assembled from scoring.sql fragments and bound parameters only.
# ruff: noqa: S608

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

from django.db import connection
from django.utils.translation import gettext as _

from leadflow.models import Stage
from scoring import engine, selectors
from scoring.engine import CompiledModel
from scoring.models import PreviewRun, ScoringModel
from scoring.sql import LeadFilter, Sql, scores_cte

# A group with fewer leads than this is shown as "not enough data": a rate over a
# handful of leads swings by tens of percent with one verdict.
MIN_GROUP = 20
SQL_STAGES = (Stage.SQL, Stage.OPPORTUNITY, Stage.CUSTOMER, Stage.ADVOCATE)
WON_STAGES = (Stage.CUSTOMER, Stage.ADVOCATE)
# Band edges of the grid; the model's own thresholds are added, so the MQL corner of the
# grid is always a band boundary.
FIT_EDGES = (10, 20, 30, 40, 50)
ENGAGEMENT_EDGES = (25, 50, 75, 100)
DECILES = 10


# --- the decided leads and their scores at handoff --------------------------------------


def history_ctes() -> Sql:
    """CTEs (without WITH) `co` (lead_id, as_of: the first move to MQL or SQL) and
    `outcome` (lead_id, decided, is_sql, won, rejected, lost) per handed-over lead.

    Decided: sales has given a verdict (a move out of MQL, or straight to SQL or beyond).
    Leads still waiting at MQL have no outcome yet and are left out of every rate."""
    sql_marks = ", ".join(["%s"] * len(SQL_STAGES))
    won_marks = ", ".join(["%s"] * len(WON_STAGES))
    return Sql(
        "co AS (SELECT lead_id, MIN(occurred_at) AS as_of FROM leadflow_stagetransition"
        " WHERE to_stage IN (%s, %s) GROUP BY lead_id),"
        " outcome AS (SELECT t.lead_id,"
        f" MAX(CASE WHEN t.from_stage = %s OR t.to_stage IN ({sql_marks}) THEN 1 ELSE 0 END)"
        " AS decided,"
        f" MAX(CASE WHEN t.to_stage IN ({sql_marks}) THEN 1 ELSE 0 END) AS is_sql,"
        f" MAX(CASE WHEN t.to_stage IN ({won_marks}) THEN 1 ELSE 0 END) AS won,"
        " MAX(CASE WHEN t.from_stage = %s AND t.to_stage = %s THEN 1 ELSE 0 END) AS rejected,"
        " MAX(CASE WHEN t.from_stage IN (%s, %s) AND t.to_stage = %s THEN 1 ELSE 0 END)"
        " AS lost"
        " FROM leadflow_stagetransition t JOIN co ON co.lead_id = t.lead_id"
        " GROUP BY t.lead_id)",
        [
            Stage.MQL,
            Stage.SQL,
            Stage.MQL,
            *SQL_STAGES,
            *SQL_STAGES,
            *WON_STAGES,
            Stage.MQL,
            Stage.RECYCLED,
            Stage.SQL,
            Stage.OPPORTUNITY,
            Stage.RECYCLED,
        ],
    )


def scores_for(model: CompiledModel, *, prefix: str) -> Sql:
    """CTEs (without WITH) ending in `{prefix}scores` (lead_id, fit, engagement,
    hand_raised_at, ...) and `{prefix}per_rule` (lead_id, rule_id, n, v: the rule's
    decayed points): each lead of `co` scored under `model` as of its handoff, with only
    the events it had by then. Needs `history_ctes()` before it.

    Where no preview job stored them (`calibration_for` without a run) the calibration's
    per-lead scores, and the suggestions' always (they also need `{prefix}per_rule`)."""
    return scores_cte(model, prefix=prefix, leads=LeadFilter.everyone(), cutoff_cte="co")


# --- results ----------------------------------------------------------------------------


@dataclass
class Counts:
    """Leads in a group and how many of them became SQL, were won, were rejected."""

    leads: int = 0
    sql: int = 0
    won: int = 0
    rejected: int = 0

    def add(self, other: Counts) -> None:
        self.leads += other.leads
        self.sql += other.sql
        self.won += other.won
        self.rejected += other.rejected

    @property
    def enough(self) -> bool:
        return self.leads >= MIN_GROUP

    def rate(self, n: int) -> float | None:
        """`n` as a percentage of the group's leads."""
        return 100.0 * n / self.leads if self.leads else None

    @property
    def sql_rate(self) -> float | None:
        return self.rate(self.sql)

    @property
    def won_rate(self) -> float | None:
        return self.rate(self.won)

    @property
    def rejected_rate(self) -> float | None:
        return self.rate(self.rejected)


@dataclass(frozen=True)
class Band:
    low: int | None  # None: open below
    high: int | None  # exclusive; None: open above

    def holds(self, value: int) -> bool:
        return (self.low is None or value >= self.low) and (self.high is None or value < self.high)

    @property
    def label(self) -> str:
        if self.low is None:
            return f"< {self.high}"
        if self.high is None:
            return f"≥ {self.low}"
        return f"{self.low}–{self.high - 1}"


def bands(edges: tuple[int, ...], threshold: int) -> list[Band]:
    cuts = sorted(set(edges) | {threshold})
    out = [Band(None, cuts[0])]
    out += [Band(low, high) for low, high in pairwise(cuts)]
    out.append(Band(cuts[-1], None))
    return out


@dataclass(frozen=True)
class Decile:
    number: int  # 10 = the highest scores
    low: int  # lowest fit + engagement in it
    high: int
    counts: Counts


@dataclass(frozen=True)
class ThresholdPoint:
    """What an MQL definition "fit ≥ F and engagement ≥ E (or the model's hand-raiser)"
    would have done with the decided leads."""

    fit: int
    engagement: int
    mqls: int  # decided leads it makes MQL
    true_mqls: int  # ...of which became SQL
    sql_total: int  # decided leads that became SQL

    @property
    def precision(self) -> float | None:
        return 100.0 * self.true_mqls / self.mqls if self.mqls else None

    @property
    def recall(self) -> float | None:
        return 100.0 * self.true_mqls / self.sql_total if self.sql_total else None

    @property
    def precision_enough(self) -> bool:
        return self.mqls >= MIN_GROUP

    @property
    def recall_enough(self) -> bool:
        return self.sql_total >= MIN_GROUP


@dataclass(frozen=True)
class Cell:
    """One histogram entry: decided leads with exactly these scores at their handoff."""

    fit: int
    engagement: int
    hand_raised: bool
    decile: int
    counts: Counts


@dataclass
class Calibration:
    model: CompiledModel
    cells: list[Cell] = field(default_factory=list)
    total: Counts = field(default_factory=Counts)
    handed_over: int = 0  # every lead moved to MQL or SQL, decided or not
    missing_history: int = 0  # decided leads with events, but none scored before handoff

    @property
    def waiting(self) -> int:
        return self.handed_over - self.total.leads

    def _qualifies(self, cell: Cell, fit: int, engagement: int) -> bool:
        if cell.fit >= fit and cell.engagement >= engagement:
            return True
        m = self.model
        return bool(m.hand_raiser_kind) and cell.hand_raised and cell.fit >= m.hand_raiser_min_fit

    def point(self, fit: int, engagement: int) -> ThresholdPoint:
        mqls = true_mqls = 0
        for cell in self.cells:
            if self._qualifies(cell, fit, engagement):
                mqls += cell.counts.leads
                true_mqls += cell.counts.sql
        return ThresholdPoint(fit, engagement, mqls, true_mqls, self.total.sql)

    @property
    def current(self) -> ThresholdPoint:
        """The model's own MQL policy."""
        return self.point(self.model.fit_threshold, self.model.engagement_threshold)

    def grid(self) -> tuple[list[Band], list[Band], list[list[Counts]]]:
        """Fit bands (rows, highest first), engagement bands (columns) and the counts of
        each cell of the grid."""
        fit_bands = bands(FIT_EDGES, self.model.fit_threshold)[::-1]
        eng_bands = bands(ENGAGEMENT_EDGES, self.model.engagement_threshold)
        rows = [[Counts() for _band in eng_bands] for _row in fit_bands]
        for cell in self.cells:
            i = next(n for n, band in enumerate(fit_bands) if band.holds(cell.fit))
            j = next(n for n, band in enumerate(eng_bands) if band.holds(cell.engagement))
            rows[i][j].add(cell.counts)
        return fit_bands, eng_bands, rows

    @property
    def grid_view(self) -> dict:
        """The grid for a template: columns (engagement bands) and rows of (fit band,
        [(counts, meets the thresholds)])."""
        fit_bands, eng_bands, rows = self.grid()
        m = self.model
        return {
            "columns": eng_bands,
            "rows": [
                (
                    fit_band,
                    [
                        (
                            counts,
                            fit_band.low is not None
                            and fit_band.low >= m.fit_threshold
                            and eng_band.low is not None
                            and eng_band.low >= m.engagement_threshold,
                        )
                        for eng_band, counts in zip(eng_bands, row, strict=True)
                    ],
                )
                for fit_band, row in zip(fit_bands, rows, strict=True)
            ],
        }

    def deciles(self) -> list[Decile]:
        """Highest first. Ten groups of (nearly) equal size by fit + engagement; leads with
        the same total may fall on both sides of a boundary (ordered by lead id)."""
        groups: dict[int, tuple[int, int, Counts]] = {}
        for cell in self.cells:
            total = cell.fit + cell.engagement
            low, high, counts = groups.get(cell.decile, (total, total, Counts()))
            counts.add(cell.counts)
            groups[cell.decile] = (min(low, total), max(high, total), counts)
        return [
            Decile(number, low, high, counts)
            for number, (low, high, counts) in sorted(groups.items(), reverse=True)
        ]

    def curve_over_engagement(self, fit: int, engagement: int, steps: int = 12):
        return [self.point(fit, e) for e in self._candidates(engagement, "engagement", steps)]

    def curve_over_fit(self, fit: int, engagement: int, steps: int = 12):
        return [self.point(f, engagement) for f in self._candidates(fit, "fit", steps)]

    def _candidates(self, chosen: int, axis: str, steps: int) -> list[int]:
        """Thresholds to draw a curve through: round steps from 0 to just past the highest
        score seen, and the chosen one."""
        top = max((getattr(cell, axis) for cell in self.cells), default=0)
        top = max(top, chosen)
        step = max(1, -(-top // steps))
        # A round step (1, 2, 5, 10, 20, 50, ...) keeps the table readable.
        for nice in (1, 2, 5, 10, 20, 25, 50, 100, 200, 500, 1000):
            if nice >= step:
                step = nice
                break
        values = set(range(0, top + step + 1, step)) | {chosen}
        return sorted(v for v in values if v >= 0)


def calibration_for(
    model: ScoringModel | CompiledModel, *, run: PreviewRun | None = None
) -> Calibration:
    """The calibration of `model` over every decided lead, from one statement: read from
    the scores `run` (a finished preview job that scored `model`, as the draft or as the
    model it was compared with) stored per handoff, or without a run scored here."""
    compiled = model if isinstance(model, CompiledModel) else engine.compiled(model)
    if run is not None:
        return _from_rows(compiled, _stored_sql(compiled, run))
    return _from_rows(compiled, _live_sql(compiled))


def _stored_sql(model: CompiledModel, run: PreviewRun) -> Sql:
    """The histogram of `_live_sql` over the run's stored handoff scores: the job scored
    the same leads (`co`) as of the same instants with the same verdicts, so the figures
    are the same, with the fit each lead had at its handoff where a snapshot kept it."""
    side = selectors.preview_run_side(run=run, model_id=model.id)

    def flag(name: str) -> str:
        return f"CASE WHEN h.{name} THEN 1 ELSE 0 END"

    # The lead join drops the rows of leads deleted since the run, as every read does.
    rows = (
        "FROM scoring_drafthandoffscore h JOIN leadflow_lead l ON l.id = h.lead_id"
        " WHERE h.run_id = %s"
    )
    return Sql(
        f"WITH cal AS (SELECT h.lead_id, h.{side}fit AS fit, h.{side}engagement AS engagement,"
        f" CASE WHEN h.{side}hand_raised_at IS NULL THEN 0 ELSE 1 END AS hr,"
        f" {flag('won')} AS is_sql, {flag('customer')} AS won, {flag('rejected')} AS rejected,"
        f" {flag('history_missing')} AS missing,"
        f" NTILE({DECILES}) OVER (ORDER BY h.{side}fit + h.{side}engagement, h.lead_id)"
        f" AS decile {rows} AND h.decided)"
        " SELECT fit, engagement, hr, decile, COUNT(*), SUM(is_sql), SUM(won), SUM(rejected),"
        " SUM(missing) FROM cal GROUP BY fit, engagement, hr, decile"
        f" UNION ALL SELECT NULL, NULL, NULL, NULL, COUNT(*), 0, 0, 0, 0 {rows}",
        [run.pk, run.pk],
    )


def _live_sql(compiled: CompiledModel) -> Sql:
    history = history_ctes()
    scores = scores_for(compiled, prefix="s_")
    sql = Sql("WITH ").add(history.text, history.params).add(", " + scores.text, scores.params)
    # Events after the handoff but none scored before it: the lead's history at handoff is
    # missing (an import of old handoffs, events back-filled later), not zero.
    sql.add(
        ", seen AS (SELECT e.lead_id, MAX(CASE WHEN e.occurred_at <= co.as_of THEN 1 ELSE 0 END)"
        " AS before FROM leadflow_engagementevent e JOIN co ON co.lead_id = e.lead_id"
        " GROUP BY e.lead_id)"
        ", cal AS (SELECT co.lead_id, s.fit, s.engagement,"
        " CASE WHEN s.hand_raised_at IS NULL THEN 0 ELSE 1 END AS hr,"
        " o.is_sql, o.won, o.rejected,"
        " CASE WHEN seen.before = 0 THEN 1 ELSE 0 END AS missing,"
        f" NTILE({DECILES}) OVER (ORDER BY s.fit + s.engagement, co.lead_id) AS decile"
        " FROM co JOIN outcome o ON o.lead_id = co.lead_id"
        " JOIN s_scores s ON s.lead_id = co.lead_id"
        " LEFT JOIN seen ON seen.lead_id = co.lead_id WHERE o.decided = 1)"
        " SELECT fit, engagement, hr, decile, COUNT(*), SUM(is_sql), SUM(won), SUM(rejected),"
        " SUM(missing) FROM cal GROUP BY fit, engagement, hr, decile"
        " UNION ALL SELECT NULL, NULL, NULL, NULL, COUNT(*), 0, 0, 0, 0 FROM co"
    )
    return sql


def _from_rows(compiled: CompiledModel, sql: Sql) -> Calibration:
    """The Calibration of the histogram rows (fit, engagement, hr, decile, leads, sql,
    won, rejected, missing) and the handed-over count (the row of NULLs)."""
    result = Calibration(model=compiled)
    with connection.cursor() as cursor:
        cursor.execute(sql.text, sql.params)
        rows = cursor.fetchall()
    for fit, engagement, hr, decile, n, n_sql, n_won, n_rejected, missing in rows:
        if fit is None and decile is None:
            result.handed_over = int(n)
            continue
        counts = Counts(int(n), int(n_sql), int(n_won), int(n_rejected))
        result.cells.append(Cell(int(fit), int(engagement), bool(hr), int(decile), counts))
        result.total.add(counts)
        result.missing_history += int(missing)
    return result


def explorer_data(calibration: Calibration, fit: int, engagement: int) -> dict:
    """The threshold explorer's figures for the page's chart (json_script) and tables."""
    over_e = calibration.curve_over_engagement(fit, engagement)
    over_f = calibration.curve_over_fit(fit, engagement)

    def series(points: list[ThresholdPoint], axis: str) -> dict:
        return {
            "thresholds": [getattr(p, axis) for p in points],
            "mqls": [p.mqls for p in points],
            "precision": [None if p.precision is None else round(p.precision, 1) for p in points],
            "recall": [None if p.recall is None else round(p.recall, 1) for p in points],
        }

    return {
        "labels": {
            "mqls": _("MQLs"),
            "precision": _("Precision %"),
            "recall": _("Recall %"),
            "engagement": _("Engagement threshold"),
            "fit": _("Fit threshold"),
        },
        "chosen": {"fit": fit, "engagement": engagement},
        "over_engagement": series(over_e, "engagement"),
        "over_fit": series(over_f, "fit"),
    }
