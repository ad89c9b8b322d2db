"""The MQL policy: when a scored lead becomes an MQL. Pure functions, no queries.

The rule exists twice, once per evaluation style, and tests hold the two to each other
(tests/scoring/test_policy_sql.py), like the engine's Python and SQL scoring:

* `mql_reason` for one lead in Python: the incremental path, and the re-check under the
  lead's lock before a bulk rescore moves it;
* `mql_reason_sql` for many leads in one statement: the bulk rescore picks the leads it
  will move with it, and the draft preview counts the leads a publish would move with
  it. One SQL function for both is what makes the preview's promise the publish's count.

Only leads at "known" or "recycled" can move; a lead at MQL or beyond is never touched
by scoring.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cache

from django.db import connection

from leadflow.models import Stage
from scoring.engine import CompiledModel

THRESHOLDS = "thresholds"
HAND_RAISER = "hand_raiser"
MOVABLE_STAGES = (Stage.KNOWN, Stage.RECYCLED)
# Stages at which sales has the lead (or had it and decided): scoring leaves them alone.
WITH_SALES_STAGES = (Stage.MQL, Stage.SQL, Stage.OPPORTUNITY, Stage.CUSTOMER, Stage.ADVOCATE)


def meets_thresholds(model: CompiledModel, fit: int, engagement: int) -> bool:
    return fit >= model.fit_threshold and engagement >= model.engagement_threshold


def raised_hand(model: CompiledModel, fit: int, hand_raised_at: datetime | None) -> bool:
    return (
        bool(model.hand_raiser_kind)
        and hand_raised_at is not None
        and fit >= model.hand_raiser_min_fit
    )


def hand_raise_counts(
    model: CompiledModel,
    *,
    stage: str,
    fit: int,
    hand_raised_at: datetime | None,
    recycled_at: Callable[[], datetime | None],
) -> bool:
    """The lead raised its hand and the raise counts now: for a recycled lead, only a
    raise after its last move to recycled (an old one was already answered by sales).
    A lead it counts for is a hand-raiser, never held back in a wave (handoff.bulk)."""
    if not raised_hand(model, fit, hand_raised_at):
        return False
    if stage != Stage.RECYCLED:
        return True
    since = recycled_at()
    return since is None or (hand_raised_at is not None and hand_raised_at > since)


def mql_reason(
    model: CompiledModel,
    *,
    stage: str,
    fit: int,
    engagement: int,
    hand_raised_at: datetime | None,
    recycled_at: Callable[[], datetime | None],
    now: datetime,
) -> str | None:
    """Why the lead should become an MQL now (THRESHOLDS or HAND_RAISER), or None.

    `recycled_at` is called at most once, only when needed (it costs a query): the time
    of the lead's last move to "recycled". A recycled lead waits out the model's
    cool-down from then, and a hand-raiser event counts for it only if it came after
    that move (hand_raise_counts)."""
    if stage not in MOVABLE_STAGES:
        return None
    by_thresholds = meets_thresholds(model, fit, engagement)
    if not (by_thresholds or raised_hand(model, fit, hand_raised_at)):
        return None
    recycled = cache(recycled_at)
    if stage == Stage.RECYCLED:
        since = recycled()
        if since is not None and now < since + timedelta(days=model.recycle_cooldown_days):
            return None
    if by_thresholds:
        return THRESHOLDS
    by_hand = hand_raise_counts(
        model, stage=stage, fit=fit, hand_raised_at=hand_raised_at, recycled_at=recycled
    )
    return HAND_RAISER if by_hand else None


# --- the same policy in SQL -------------------------------------------------------------


def qualifies_sql(model: CompiledModel, *, fit: str, engagement: str, hand_raised_at: str):
    """SQL (and params), true when the scores meet the policy, whatever the stage:
    `meets_thresholds(...) or raised_hand(...)` over column expressions."""
    sql = f"({fit} >= %s AND {engagement} >= %s)"
    params: list = [model.fit_threshold, model.engagement_threshold]
    if model.hand_raiser_kind:
        sql += f" OR ({fit} >= %s AND {hand_raised_at} IS NOT NULL)"
        params.append(model.hand_raiser_min_fit)
    return f"({sql})", params


def cooling_sql(model: CompiledModel, *, stage: str, recycled_at: str, now: datetime):
    """SQL (and params), true for a recycled lead still inside the model's cool-down."""
    until = connection.ops.adapt_datetimefield_value(
        now - timedelta(days=model.recycle_cooldown_days)
    )
    # now < since + cool-down  <=>  since > now - cool-down: one bound parameter, no date
    # arithmetic in SQL (which SQLite and PostgreSQL spell differently).
    return f"({stage} = %s AND {recycled_at} IS NOT NULL AND {recycled_at} > %s)", [
        Stage.RECYCLED,
        until,
    ]


def mql_reason_sql(
    model: CompiledModel,
    *,
    stage: str,
    fit: str,
    engagement: str,
    hand_raised_at: str,
    recycled_at: str,
    now: datetime,
) -> tuple[str, list]:
    """`mql_reason` as one SQL CASE over column expressions: 'thresholds', 'hand_raiser'
    or NULL. `recycled_at` is the lead's last move to recycled (NULL if none); see
    `last_recycled_sql` for the join that gives it."""
    marks = ", ".join(["%s"] * len(MOVABLE_STAGES))
    cooling, cooling_params = cooling_sql(model, stage=stage, recycled_at=recycled_at, now=now)
    sql = (
        f"CASE WHEN {stage} NOT IN ({marks}) THEN NULL WHEN {cooling} THEN NULL"
        f" WHEN {fit} >= %s AND {engagement} >= %s THEN %s"
    )
    params: list = [
        *MOVABLE_STAGES,
        *cooling_params,
        model.fit_threshold,
        model.engagement_threshold,
        THRESHOLDS,
    ]
    if model.hand_raiser_kind:
        # After a recycle only a hand raised since then counts (sales has seen the old one).
        sql += (
            f" WHEN {fit} >= %s AND {hand_raised_at} IS NOT NULL AND ({stage} <> %s"
            f" OR {recycled_at} IS NULL OR {hand_raised_at} > {recycled_at}) THEN %s"
        )
        params.extend([model.hand_raiser_min_fit, Stage.RECYCLED, HAND_RAISER])
    return f"({sql} END)", params


def last_recycled_sql() -> tuple[str, list]:
    """A subquery (lead_id, recycled_at): each lead's last move to recycled, the
    `recycled_at` that `mql_reason_sql` wants. LEFT JOIN it on lead_id."""
    return (
        "(SELECT lead_id, MAX(occurred_at) AS recycled_at FROM leadflow_stagetransition"
        " WHERE to_stage = %s GROUP BY lead_id)",
        [Stage.RECYCLED],
    )
