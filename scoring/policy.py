"""The MQL policy: when a scored lead becomes an MQL. Pure functions, no queries.

The incremental path, the bulk rescore and the preview all ask these, so the rule
exists once. Only leads at "known" or "recycled" can move; a lead at MQL or beyond is
never touched by scoring.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from leadflow.models import Stage
from scoring.engine import CompiledModel

THRESHOLDS = "thresholds"
HAND_RAISER = "hand_raiser"
MOVABLE_STAGES = (Stage.KNOWN, Stage.RECYCLED)


def meets_thresholds(model: CompiledModel, fit: int, engagement: int) -> bool:
    return fit >= model.fit_threshold and engagement >= model.engagement_threshold


def raised_hand(model: CompiledModel, fit: int, hand_raised_at: datetime | None) -> bool:
    return (
        bool(model.hand_raiser_kind)
        and hand_raised_at is not None
        and fit >= model.hand_raiser_min_fit
    )


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

    `recycled_at` is called only when needed (it costs a query): the time of the lead's
    last move to "recycled". A recycled lead waits out the model's cool-down from then,
    and a hand-raiser event counts for it only if it came after that move."""
    if stage not in MOVABLE_STAGES:
        return None
    by_thresholds = meets_thresholds(model, fit, engagement)
    by_hand = raised_hand(model, fit, hand_raised_at)
    if not (by_thresholds or by_hand):
        return None
    if stage == Stage.RECYCLED:
        since = recycled_at()
        if since is not None:
            if now < since + timedelta(days=model.recycle_cooldown_days):
                return None
            by_hand = by_hand and hand_raised_at is not None and hand_raised_at > since
    if by_thresholds:
        return THRESHOLDS
    return HAND_RAISER if by_hand else None
