"""Reasons back to rules: how sales' verdicts fall on the leads each engagement rule scored,
and suggestions a marketer may accept into a draft (never applied by themselves).

Over the decided leads, scored as of their handoff like the calibration (`scores_for`):

* per engagement rule, the leads it gave points to, and how many of them became SQL, were
  won, lost after SQL, rejected by sales, and for which rejection reason;
* the leads the rule *carried*: at least 70 % of their engagement at handoff came from it;
* a suggestion to lower the rule when the leads it carried were rejected for one reason at
  least twice as often as all decided leads (its points divided by that ratio: "3× as
  often: 3 → 1"), or to raise it when they were won at least twice as often (its points
  times the ratio, at most tripled). Only groups of `calibration.MIN_GROUP` leads or
  more, and only from at least `MIN_VERDICTS` such verdicts, so one unlucky week does not
  move a rule.
"""

# SQL here is assembled from scoring.sql fragments and bound parameters only.
# ruff: noqa: S608

from __future__ import annotations

from dataclasses import dataclass, field

from django.apps import apps
from django.db import connection
from django.utils.translation import gettext as _

from leadflow.models import Stage
from scoring import engine, selectors
from scoring.calibration import Counts, history_ctes, scores_for
from scoring.engine import CEngagementRule, CompiledModel
from scoring.models import PreviewRun, ScoringModel
from scoring.sql import Dialect, Sql, round_sql

CARRIED_SHARE = 0.7  # "engagement ≥ 70 % from this rule"
MIN_RATIO = 2.0
MIN_VERDICTS = 5
MAX_RAISE = 3.0
LOWER = "lower"
RAISE = "raise"


@dataclass
class Verdicts(Counts):
    """A calibration group's counts, and the leads lost after SQL and rejected per reason."""

    lost: int = 0
    reasons: dict[str, int] = field(default_factory=dict)  # reason code → leads

    def reason_lines(self, labels: dict[str, str]) -> list[tuple[str, int, float | None]]:
        """(reason label, leads, % of these leads), most frequent first."""
        return [
            (labels.get(code, code), n, self.rate(n))
            for code, n in sorted(self.reasons.items(), key=lambda kv: (-kv[1], kv[0]))
        ]


@dataclass
class RuleVerdicts:
    rule: CEngagementRule
    scored: Verdicts = field(default_factory=Verdicts)  # leads it gave points to
    carried: Verdicts = field(default_factory=Verdicts)  # ≥ 70 % of engagement from it


@dataclass(frozen=True)
class Suggestion:
    kind: str  # LOWER or RAISE
    rule_key: str
    rule_label: str
    before: int
    after: int
    ratio: float
    reason: str  # the rejection reason's label (LOWER); "" for RAISE
    group_hits: int  # carried leads with that verdict
    group_leads: int
    all_hits: int  # decided leads with that verdict
    all_leads: int

    @property
    def text(self) -> str:
        figures = {
            "rule": self.rule_label,
            "share": round(100 * CARRIED_SHARE),
            "reason": self.reason,
            "ratio": f"{self.ratio:.1f}",
            "n": self.group_hits,
            "leads": self.group_leads,
            "all_n": self.all_hits,
            "all_leads": self.all_leads,
            "before": self.before,
            "after": self.after,
        }
        if self.kind == LOWER:
            return (
                _(
                    "Leads whose engagement at handoff was ≥ %(share)s %% %(rule)s were "
                    "rejected as “%(reason)s” %(ratio)s× as often as all decided leads "
                    "(%(n)s of %(leads)s against %(all_n)s of %(all_leads)s): lower "
                    "%(rule)s from %(before)s to %(after)s points?"
                )
                % figures
            )
        return (
            _(
                "Leads whose engagement at handoff was ≥ %(share)s %% %(rule)s were won "
                "%(ratio)s× as often as all decided leads (%(n)s of %(leads)s against "
                "%(all_n)s of %(all_leads)s): raise %(rule)s from %(before)s to %(after)s "
                "points?"
            )
            % figures
        )


@dataclass
class Feedback:
    model: CompiledModel
    all: Verdicts
    rules: list[RuleVerdicts]
    suggestions: list[Suggestion]
    reason_labels: dict[str, str]


def reason_labels() -> dict[str, str]:
    """Rejection reason codes → labels in the current language. The reasons are sales'
    (the handoff app, above scoring): looked up by name, not imported, so scoring stays
    below handoff; without that app the codes are shown as they are."""
    labels = {"": _("no reason given")}
    try:
        reason_model = apps.get_model("handoff", "RejectionReason")
    except LookupError:
        return labels
    for reason in reason_model.objects.all():
        labels[reason.code] = reason.label
    return labels


def suggest(feedback_rules: list[RuleVerdicts], everyone: Verdicts, labels: dict[str, str]):
    """The suggestions, from the counts alone (no query): see the module docstring."""
    out: list[Suggestion] = []
    for item in feedback_rules:
        rule, group = item.rule, item.carried
        if rule.points <= 0 or not group.enough or not everyone.leads:
            continue
        best: tuple[float, str] | None = None
        for code, hits in group.reasons.items():
            all_hits = everyone.reasons.get(code, 0)
            if hits < MIN_VERDICTS or not all_hits:
                continue
            ratio = (hits / group.leads) / (all_hits / everyone.leads)
            if ratio >= MIN_RATIO and (best is None or (ratio, code) > best):
                best = (ratio, code)
        if best is not None:
            ratio, code = best
            after = max(0, engine.round_points(rule.points / ratio))
            if after < rule.points:
                out.append(
                    Suggestion(
                        LOWER,
                        rule.key,
                        rule.label,
                        rule.points,
                        after,
                        ratio,
                        labels.get(code, code),
                        group.reasons[code],
                        group.leads,
                        everyone.reasons[code],
                        everyone.leads,
                    )
                )
            continue
        if group.won >= MIN_VERDICTS and everyone.won:
            ratio = (group.won / group.leads) / (everyone.won / everyone.leads)
            if ratio >= MIN_RATIO:
                after = engine.round_points(rule.points * min(ratio, MAX_RAISE))
                out.append(
                    Suggestion(
                        RAISE,
                        rule.key,
                        rule.label,
                        rule.points,
                        after,
                        ratio,
                        "",
                        group.won,
                        group.leads,
                        everyone.won,
                        everyone.leads,
                    )
                )
    return out


def feedback_for(model: ScoringModel | CompiledModel, *, run: PreviewRun | None = None) -> Feedback:
    """Per engagement rule, sales' verdicts on the leads it scored, and the suggestions:
    read from what `run` (a finished preview job that scored `model`, as the draft or as
    the model it was compared with) stored per handoff, or without a run scored here."""
    compiled = model if isinstance(model, CompiledModel) else engine.compiled(model)
    labels = reason_labels()
    everyone = Verdicts()
    per_rule = {r.id: RuleVerdicts(rule=r) for r in compiled.engagement_rules}
    for row in _rows(compiled, run):
        rule_id, carried, reason, n, n_sql, n_won, n_lost, n_rejected = row
        target = everyone
        if rule_id is not None:
            item = per_rule.get(int(rule_id))
            if item is None:
                continue
            target = item.carried if carried else item.scored
        if reason is None:
            target.leads += int(n)
            target.sql += int(n_sql)
            target.won += int(n_won)
            target.lost += int(n_lost)
            target.rejected += int(n_rejected)
        else:
            target.reasons[reason] = target.reasons.get(reason, 0) + int(n)
    # `scored` counts every lead the rule gave points to, carried or not.
    for item in per_rule.values():
        for name in ("leads", "sql", "won", "lost", "rejected"):
            setattr(item.scored, name, getattr(item.scored, name) + getattr(item.carried, name))
        for code, n in item.carried.reasons.items():
            item.scored.reasons[code] = item.scored.reasons.get(code, 0) + n
    rules = list(per_rule.values())
    return Feedback(compiled, everyone, rules, suggest(rules, everyone, labels), labels)


def _rows(model: CompiledModel, run: PreviewRun | None) -> list[tuple]:
    """(rule_id, carried, reason, leads, sql, won, lost, rejected) rows: per rule and
    "carried or not" (reason NULL: the verdict counts; a reason: leads rejected with it),
    and for all decided leads (rule_id NULL)."""
    if not model.engagement_rules:
        return []
    d = Dialect()
    sql = _stored_decided(d, model, run) if run is not None else _live_decided(model)
    reason_sql, reason_params = d.json_text("t.context", "rejection_reason")
    share = round(CARRIED_SHARE * 10)
    # From `dec` (lead_id, engagement, is_sql, won, lost, rejected: the decided leads)
    # and `per_rule` (lead_id, rule_id, v: each rule's decayed points at the handoff).
    sql.add(
        f", reasons AS (SELECT DISTINCT t.lead_id, COALESCE({reason_sql}, '') AS reason"
        " FROM leadflow_stagetransition t JOIN dec ON dec.lead_id = t.lead_id"
        " WHERE t.from_stage = %s AND t.to_stage = %s)",
        [*reason_params, Stage.MQL, Stage.RECYCLED],
    )
    sql.add(
        ", pr AS (SELECT r.lead_id, r.rule_id,"
        f" CASE WHEN d.engagement > 0 AND 10 * {round_sql('r.v')} >= {share} * d.engagement"
        " THEN 1 ELSE 0 END AS carried"
        " FROM per_rule r JOIN dec d ON d.lead_id = r.lead_id)"
        " SELECT pr.rule_id, pr.carried, NULL, COUNT(*), SUM(d.is_sql), SUM(d.won),"
        " SUM(d.lost), SUM(d.rejected)"
        " FROM pr JOIN dec d ON d.lead_id = pr.lead_id GROUP BY pr.rule_id, pr.carried"
        " UNION ALL SELECT pr.rule_id, pr.carried, rs.reason, COUNT(*), 0, 0, 0, 0"
        " FROM pr JOIN reasons rs ON rs.lead_id = pr.lead_id"
        " GROUP BY pr.rule_id, pr.carried, rs.reason"
        " UNION ALL SELECT NULL, 0, NULL, COUNT(*), COALESCE(SUM(is_sql), 0),"
        " COALESCE(SUM(won), 0), COALESCE(SUM(lost), 0), COALESCE(SUM(rejected), 0) FROM dec"
        " UNION ALL SELECT NULL, 0, rs.reason, COUNT(*), 0, 0, 0, 0"
        " FROM dec d JOIN reasons rs ON rs.lead_id = d.lead_id GROUP BY rs.reason"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql.text, sql.params)
        return cursor.fetchall()


def _live_decided(model: CompiledModel) -> Sql:
    """WITH ... dec, per_rule: every decided lead scored here as of its handoff."""
    history = history_ctes()
    scores = scores_for(model, prefix="s_")
    sql = Sql("WITH ").add(history.text, history.params).add(", " + scores.text, scores.params)
    return sql.add(
        ", dec AS (SELECT co.lead_id, s.engagement, o.is_sql, o.won, o.lost, o.rejected"
        " FROM co JOIN outcome o ON o.lead_id = co.lead_id"
        " JOIN s_scores s ON s.lead_id = co.lead_id WHERE o.decided = 1)"
        ", per_rule AS (SELECT lead_id, rule_id, v FROM s_per_rule WHERE rule_id IS NOT NULL)"
    )


def _stored_decided(d: Dialect, model: CompiledModel, run: PreviewRun) -> Sql:
    """WITH dec, per_rule: the decided leads as the job stored them at their handoff (the
    same leads, instants and verdicts as `_live_decided`), their per-rule points taken
    from the stored engagement state (rule id → [count, points, decayed value, ...])."""
    side = selectors.preview_run_side(run=run, model_id=model.id)

    def flag(name: str) -> str:
        return f"CASE WHEN h.{name} THEN 1 ELSE 0 END"

    # The lead join drops the rows of leads deleted since the run, as every read does.
    return Sql(
        f"WITH dec AS (SELECT h.lead_id, h.{side}engagement AS engagement,"
        f" h.{side}engagement_state AS state, {flag('won')} AS is_sql,"
        f" {flag('customer')} AS won, {flag('lost')} AS lost, {flag('rejected')} AS rejected"
        " FROM scoring_drafthandoffscore h JOIN leadflow_lead l ON l.id = h.lead_id"
        " WHERE h.run_id = %s AND h.decided)"
        ", per_rule AS (SELECT dec.lead_id, CAST(j.key AS INTEGER) AS rule_id,"
        f" {d.json_number_at('j.value', 2)} AS v"
        f" FROM dec, {d.json_entries('dec.state', 'j')})",
        [run.pk],
    )
