"""The scoring arithmetic in Python: the incremental (one event, one lead) half.

`scoring.sql` computes the same numbers set-based; the two must agree exactly, so the
definitions below are the contract for both (tests compare them on the same history):

* Fit = for each category, the sum of the matched rules' points held between the
  category's minimum and maximum, plus the points of matched rules without a category.
  Integers throughout.
* Engagement: each event is counted by the first engagement rule (in rule order) whose
  event kind and optional property condition match. A rule with a cap awards points in
  event order (occurred_at, id) until the period's cap is reached: the n-th event of the
  period gets sign(p) · clamp(cap − (n−1)·|p|, 0, |p|). A rule with a half-life weighs each
  awarded amount by 2^−(age / half-life) at the time the score is computed.
* Rounding: a rule's decayed value is rounded to a whole point half away from zero (with
  1e-6 slack, so float noise from two evaluation orders cannot split x.5 differently), and
  the engagement score is the SUM of those rounded rule values. That is what makes the
  explanation sum exactly to the score.
* Text comparisons ignore ASCII letter case only (SQLite's lower() is ASCII-only, so we do
  the same on every database); values are trimmed of spaces.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils import timezone

from scoring.models import CapPeriod, ModelStatus, Operator, ScoringModel

ROUND_SLACK = 1e-6
# 2^-1000 is ~1e-301: small enough to be nothing, large enough for PostgreSQL's float8
# (which raises "underflow" rather than returning 0).
MIN_EXPONENT = -1000.0
NUMBER_RE = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
SQL_NUMBER_PATTERN = "^-?[0-9]+([.][0-9]+)?$"
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_lower(text: str) -> str:
    return text.translate(_ASCII_LOWER)


def round_points(value: float) -> int:
    """Half away from zero, with slack; the SQL side uses the same expression."""
    if value < 0:
        return -math.floor(-value + 0.5 + ROUND_SLACK)
    return math.floor(value + 0.5 + ROUND_SLACK)


def decay_factor(seconds_ago: float, half_life_seconds: int | None) -> float:
    if not half_life_seconds:
        return 1.0
    return 2.0 ** max(-seconds_ago / half_life_seconds, MIN_EXPONENT)


def as_text(value: Any) -> str | None:
    """How a stored value reads as text, the same way the SQL side casts it."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def as_number(value: Any) -> float | None:
    text = as_text(value)
    if text is None:
        return None
    text = text.strip(" ")
    return float(text) if NUMBER_RE.match(text) else None


def period_key(moment: datetime, period: str) -> str:
    """The start date (local time) of the cap period holding `moment`, as YYYY-MM-DD."""
    day: date = timezone.localtime(moment).date()
    if period == CapPeriod.WEEK:
        day -= timedelta(days=day.weekday())
    elif period == CapPeriod.MONTH:
        day = day.replace(day=1)
    return day.isoformat()


@dataclass(frozen=True)
class Condition:
    operator: str
    values: tuple[str, ...]  # ascii-lowered, trimmed
    low: float | None
    high: float | None

    def matches(self, raw: Any) -> bool:
        op = self.operator
        if op in (Operator.IS_SET, Operator.IS_EMPTY):
            text = as_text(raw)
            is_set = text is not None and text.strip(" ") != ""
            return is_set if op == Operator.IS_SET else not is_set
        if op == Operator.BETWEEN:
            number = as_number(raw)
            if number is None:
                return False
            return (self.low is None or number >= self.low) and (
                self.high is None or number <= self.high
            )
        text = as_text(raw)
        if text is None:
            return False
        text = ascii_lower(text)
        if op == Operator.CONTAINS:
            return self.values[0] in text
        return text in self.values  # equals (one value) and one of


def _condition(rule) -> Condition:
    values = tuple(ascii_lower(v) for v in rule.values_list())
    low = float(rule.min_value) if rule.min_value is not None else None
    high = float(rule.max_value) if rule.max_value is not None else None
    return Condition(rule.operator, values, low, high)


@dataclass(frozen=True)
class CFitRule:
    id: int
    key: str  # the lineage key: the same rule across versions (see the models)
    label: str
    field: str
    condition: Condition
    points: int
    category_id: int | None


@dataclass(frozen=True)
class CCategory:
    id: int
    key: str
    name: str
    min_points: int | None
    max_points: int | None

    def clamp(self, total: int) -> int:
        if self.max_points is not None and total > self.max_points:
            return self.max_points
        if self.min_points is not None and total < self.min_points:
            return self.min_points
        return total


@dataclass(frozen=True)
class CEngagementRule:
    id: int
    key: str
    label: str
    kind: str
    property_key: str
    condition: Condition | None
    points: int
    cap: int | None
    cap_period: str
    half_life_seconds: int | None

    def award(self, already: int) -> int:
        """Points for one more event in a period that has awarded `already` so far."""
        if self.cap is None:
            return self.points
        size = abs(self.points)
        give = max(0, min(size, self.cap - abs(already)))
        return give if self.points >= 0 else -give


@dataclass(frozen=True)
class CompiledModel:
    id: int
    version: int
    name: str
    fit_threshold: int
    engagement_threshold: int
    hand_raiser_kind: str
    hand_raiser_min_fit: int
    recycle_cooldown_days: int
    categories: tuple[CCategory, ...]
    fit_rules: tuple[CFitRule, ...]
    engagement_rules: tuple[CEngagementRule, ...]
    _by_kind: dict[str, tuple[CEngagementRule, ...]] = field(default_factory=dict, compare=False)

    @property
    def category_by_id(self) -> dict[int, CCategory]:
        return {c.id: c for c in self.categories}

    @property
    def engagement_rule_by_id(self) -> dict[int, CEngagementRule]:
        return {r.id: r for r in self.engagement_rules}

    @property
    def rule_kinds(self) -> list[str]:
        return sorted({r.kind for r in self.engagement_rules})

    # --- fit ---------------------------------------------------------------------
    def fit(self, lead) -> tuple[int, list[int]]:
        matched = [r for r in self.fit_rules if r.condition.matches(read_field(lead, r.field))]
        return self.fit_total(matched), [r.id for r in matched]

    def fit_total(self, matched: list[CFitRule]) -> int:
        per_category: dict[int, int] = {}
        loose = 0
        for rule in matched:
            if rule.category_id is None:
                loose += rule.points
            else:
                per_category[rule.category_id] = per_category.get(rule.category_id, 0) + rule.points
        cats = self.category_by_id
        return loose + sum(cats[cid].clamp(total) for cid, total in per_category.items())

    # --- engagement --------------------------------------------------------------
    def rule_for(self, kind: str, properties: dict) -> CEngagementRule | None:
        for rule in self._by_kind.get(kind, ()):
            if rule.condition is None:
                return rule
            raw = properties.get(rule.property_key) if isinstance(properties, dict) else None
            if rule.condition.matches(raw):
                return rule
        return None

    def engagement_at(self, state: dict, state_at: datetime, at: datetime) -> int:
        rules = self.engagement_rule_by_id
        total = 0
        for key, entry in state.items():
            rule = rules.get(int(key))
            if rule is not None:
                total += round_points(decayed(entry[2], rule, state_at, at))
        return total


def decayed(value: float, rule: CEngagementRule, since: datetime, at: datetime) -> float:
    return value * decay_factor((at - since).total_seconds(), rule.half_life_seconds)


def reanchor(model: CompiledModel, state: dict, state_at: datetime, now: datetime) -> dict:
    """The same state with every decayed value moved from `state_at` to `now`."""
    rules = model.engagement_rule_by_id
    return {
        key: [entry[0], entry[1], decayed(entry[2], rules[int(key)], state_at, now), *entry[3:]]
        for key, entry in state.items()
        if int(key) in rules
    }


def apply_event(
    model: CompiledModel,
    rule: CEngagementRule,
    state: dict,
    state_at: datetime,
    occurred_at: datetime,
    now: datetime,
) -> dict:
    """Add one in-order event to the running state and re-anchor every rule at `now`.

    Entries: [count, awarded before decay, decayed value at `now`, period key, awarded
    in that period]. Re-anchoring all rules is O(rules), not O(events)."""
    new_state = reanchor(model, state, state_at, now)
    key = str(rule.id)
    entry = new_state.get(key, [0, 0, 0.0, None, 0])
    period = period_key(occurred_at, rule.cap_period) if rule.cap is not None else None
    in_period = entry[4] if (period is not None and period == entry[3]) else 0
    awarded = rule.award(in_period)
    entry[0] += 1
    entry[1] += awarded
    entry[2] += awarded * decay_factor((now - occurred_at).total_seconds(), rule.half_life_seconds)
    entry[3] = period
    entry[4] = in_period + awarded if period is not None else 0
    new_state[key] = entry
    return new_state


def read_field(lead, path: str) -> Any:
    if path.startswith("attributes."):
        attributes = lead.attributes if isinstance(lead.attributes, dict) else {}
        return attributes.get(path[len("attributes.") :])
    if path.startswith("company."):
        company = lead.company
        return None if company is None else getattr(company, path[len("company.") :])
    return getattr(lead, path)


def _compile(model: ScoringModel) -> CompiledModel:
    categories = tuple(
        CCategory(c.id, str(c.key), c.name, c.min_points, c.max_points)
        for c in model.categories.all()
    )
    fit_rules = tuple(
        CFitRule(r.id, str(r.key), str(r), r.field, _condition(r), r.points, r.category_id)
        for r in model.fit_rules.all()
    )
    engagement_rules = tuple(
        CEngagementRule(
            id=r.id,
            key=str(r.key),
            label=str(r),
            kind=r.kind,
            property_key=r.property_key,
            condition=_condition(r) if r.property_key else None,
            points=r.points,
            cap=r.cap_points,
            cap_period=r.cap_period,
            half_life_seconds=r.half_life_days * 86400 if r.half_life_days else None,
        )
        for r in model.engagement_rules.all()
    )
    by_kind: dict[str, list[CEngagementRule]] = {}
    for rule in engagement_rules:
        by_kind.setdefault(rule.kind, []).append(rule)
    return CompiledModel(
        id=model.pk,
        version=model.version,
        name=model.name,
        fit_threshold=model.fit_threshold,
        engagement_threshold=model.engagement_threshold,
        hand_raiser_kind=model.hand_raiser_kind,
        hand_raiser_min_fit=model.hand_raiser_min_fit,
        recycle_cooldown_days=model.recycle_cooldown_days,
        categories=categories,
        fit_rules=fit_rules,
        engagement_rules=engagement_rules,
        _by_kind={k: tuple(v) for k, v in by_kind.items()},
    )


# Published and archived models never change, so their compiled form is cached per
# process by id; a draft is compiled fresh every time because marketers are editing it.
_CACHE: dict[int, CompiledModel] = {}


@receiver(post_save, sender=ScoringModel, dispatch_uid="scoring.engine.forget")
def _forget(sender, instance: ScoringModel, **kwargs) -> None:
    # A saved row is a draft (published ones refuse save()); its id may have been cached
    # before under another model if ids were reused (test databases roll back sequences).
    _CACHE.pop(instance.pk, None)


def compiled(model: ScoringModel | int) -> CompiledModel:
    model_id = model if isinstance(model, int) else model.pk
    hit = _CACHE.get(model_id)
    if hit is not None:
        return hit
    if isinstance(model, int):
        model = ScoringModel.objects.get(pk=model_id)
    model = ScoringModel.objects.prefetch_related(
        "categories", "fit_rules", "engagement_rules"
    ).get(pk=model.pk)
    result = _compile(model)
    if model.status != ModelStatus.DRAFT:
        _CACHE[model_id] = result
    return result
