"""Speed to lead: where the minutes go between a prospect's action and the first call,
what slowness costs on this company's own outcomes, and which deadlines are about to
break. Read from the handoff timelines (handoff.timeline writes them, one row per MQL).

Definitions (the page and the API print the same words):

- A hop is the time between two instants of one handoff, when both are known. The main
  chain: the MA event → received by LeadFlow → processed → MQL → assigned → opened by the
  rep → first contact → verdict; beside it, assigned → rep notified and MQL → in the SFA.
- Median and p90 are nearest-rank quantiles (the value at rank ⌈q·n⌉ of the sorted
  durations), clock time, read from per-day histograms (sla.kpis.speed_days): within 5 %
  of the exact value, and exact when the rank is the shortest or longest duration of
  its bucket. They and the delay buckets are as of the last per-day recomputation (a
  minute behind at most while beat runs), as the dashboard's KPIs are.
- First-contact delay = first contact − MQL, clock time, in buckets: within 5 minutes,
  within 1 hour, within 24 hours, later; "no contact logged" for verdicts given without.
- MQL → SQL by delay = accepted ÷ decided (MQLs with a verdict) in the bucket; SQL → won
  = leads now customer (or advocate) ÷ accepted. 95 % Wilson score intervals. Open MQLs
  are not counted: their verdict is not known yet.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from django.db.models import DurationField, ExpressionWrapper, F, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from handoff.models import HandoffStatus, HandoffTimeline, RepProfile
from sla.calendar import Calendar, add_business_days, business_time_between
from sla.kpis.days import kpi_refreshed_at
from sla.kpis.metrics import MetricsFilter
from sla.kpis.speed_days import (
    BUCKETS,
    ERROR_PERCENT,
    HOP_KEYS,
    HOPS,
    NO_CONTACT,
    Hop,
    arrival_slots,
    delay_counts,
    hop_quantiles,
)
from sla.models import SlaTimer, TimerStatus

WILSON_Z = 1.96  # 95 %
MIN_OUTCOMES = 20  # fewer decided MQLs in a bucket: "not enough data"

GROUPINGS = ("source", "team", "rep")


def quantile(sorted_values: list[float], q: float) -> float:
    """Nearest rank: the value at rank ⌈q·n⌉ (what PERCENTILE_DISC gives)."""
    return sorted_values[max(1, math.ceil(q * len(sorted_values))) - 1]


def wilson(successes: int, n: int, z: float = WILSON_Z) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion, as fractions; None without data."""
    if n == 0:
        return None
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def timelines(f: MetricsFilter) -> QuerySet[HandoffTimeline]:
    """The range's MQLs (by MQL instant, `handoff_timeline_mql_idx`) of the chosen teams."""
    rows = HandoffTimeline.objects.filter(mql_at__gte=f.start_at, mql_at__lt=f.end_at)
    if f.team_ids is not None:
        rows = rows.filter(handoff__team_id__in=f.team_ids)
    return rows


def _duration(hop: Hop) -> ExpressionWrapper:
    return ExpressionWrapper(F(hop.end) - F(hop.start), output_field=DurationField())


def _sorted_groups(groups: dict[Any, Any]) -> dict[Any, Any]:
    return dict(sorted(groups.items(), key=lambda item: (item[0] is None, str(item[0]))))


def hop_figures(f: MetricsFilter) -> dict[str, Any]:
    """Median and p90 of each hop, overall and per source, team and rep, read from the
    per-day histograms (sla.kpis.speed_days: within ERROR_PERCENT of the exact nearest-rank
    figure, as of the last recomputation)."""
    overall, group_figures = hop_quantiles(f.start, f.end, f.team_ids)
    groups = {name: _sorted_groups(group_figures[name]) for name in GROUPINGS}
    slowest = max(
        (key for key in HOP_KEYS if overall[key]["median_seconds"] is not None),
        key=lambda key: overall[key]["median_seconds"],
        default=None,
    )
    return {
        "overall": overall,
        "groups": groups,
        "slowest": slowest,
        "error_percent": ERROR_PERCENT,
        "as_of": kpi_refreshed_at(),
    }


def delay_outcomes(f: MetricsFilter) -> dict[str, Any]:
    """First-contact delay buckets: how many MQLs, and MQL → SQL and SQL → won by bucket,
    summed from the per-day counts (sla.kpis.speed_days)."""
    counts = delay_counts(f.start, f.end, f.team_ids)
    labels: dict[str, Any] = {key: label for key, label, _bound in BUCKETS}
    labels[NO_CONTACT] = gettext_lazy("no contact logged")
    contacted = sum(counts[key]["mqls"] for key, _label, _bound in BUCKETS)
    buckets = []
    for key, label in labels.items():
        total, decided_n = counts[key]["mqls"], counts[key]["decided"]
        accepted_n, won_n = counts[key]["accepted"], counts[key]["won"]
        buckets.append(
            {
                "key": key,
                "label": str(label),
                "mqls": total,
                "share_of_contacted": (
                    round(100.0 * total / contacted, 1) if contacted and key != NO_CONTACT else None
                ),
                "decided": decided_n,
                "sql": accepted_n,
                "won": won_n,
                "mql_to_sql": _rate(accepted_n, decided_n),
                "sql_to_won": _rate(won_n, accepted_n),
                "enough_data": decided_n >= MIN_OUTCOMES,
            }
        )
    return {
        "buckets": buckets,
        "decided": sum(bucket["decided"] for bucket in buckets),
        "verdict": _verdict(buckets),
    }


def _rate(successes: int, n: int) -> dict[str, Any] | None:
    interval = wilson(successes, n)
    if interval is None:
        return None
    return {
        "percent": round(100.0 * successes / n, 1),
        "low": round(100.0 * interval[0], 1),
        "high": round(100.0 * interval[1], 1),
        "n": n,
    }


def _verdict(buckets: list[dict[str, Any]]) -> str:
    """One plain sentence on what the data can and cannot say (never a cause)."""
    usable = [b for b in buckets if b["key"] != NO_CONTACT and b["enough_data"]]
    if len(usable) < 2:
        return _(
            "Too few MQLs with a verdict to compare delays: each delay needs at least "
            "%(n)d decided MQLs, and fewer than two have them."
        ) % {"n": MIN_OUTCOMES}
    fastest, slowest = usable[0], usable[-1]
    a, b = fastest["mql_to_sql"], slowest["mql_to_sql"]
    if a["low"] <= b["high"] and b["low"] <= a["high"]:
        return _(
            "MQLs first contacted %(fast)s and %(slow)s became SQL at rates whose 95 %% "
            "intervals overlap (%(a)s %% and %(b)s %%): this data cannot tell them apart."
        ) % {
            "fast": fastest["label"],
            "slow": slowest["label"],
            "a": a["percent"],
            "b": b["percent"],
        }
    return _(
        "MQLs first contacted %(fast)s became SQL at %(a)s %% (95 %% interval %(a_low)s–"
        "%(a_high)s %%), those contacted %(slow)s at %(b)s %% (%(b_low)s–%(b_high)s %%)."
    ) % {
        "fast": fastest["label"],
        "slow": slowest["label"],
        "a": a["percent"],
        "a_low": a["low"],
        "a_high": a["high"],
        "b": b["percent"],
        "b_low": b["low"],
        "b_high": b["high"],
    }


# --- the handoff page ------------------------------------------------------------------


def handoff_hops(timeline: HandoffTimeline, calendar: Calendar) -> list[dict[str, Any]]:
    """Each hop of one handoff with its clock and business duration (None when a side
    of it has not happened)."""
    hops = []
    for hop in HOPS:
        start, end = getattr(timeline, hop.start), getattr(timeline, hop.end)
        if start is None or end is None:
            hops.append(
                {
                    "key": hop.key,
                    "label": str(hop.label),
                    "clock": None,
                    "business": None,
                    "end": end,
                }
            )
            continue
        clock = max(dt.timedelta(0), end - start)
        business = business_time_between(calendar, start, end) if end > start else clock
        hops.append(
            {
                "key": hop.key,
                "label": str(hop.label),
                "clock": clock,
                "business": business,
                "end": end,
            }
        )
    return hops


# --- deadlines about to break ----------------------------------------------------------


@dataclass(frozen=True)
class Window:
    key: str
    label: Any
    start: dt.datetime
    end: dt.datetime


def forecast_windows(now: dt.datetime, calendar: Calendar) -> list[Window]:
    """The next 24 hours, and the next business day (the whole of it, opening to close)."""
    close_of_next = add_business_days(calendar, now, 1)
    opening = dt.datetime.combine(
        close_of_next.astimezone(calendar.tz).date(), calendar.opens_at, tzinfo=calendar.tz
    )
    return [
        Window("24h", gettext_lazy("next 24 hours"), now, now + dt.timedelta(hours=24)),
        Window("next_business_day", gettext_lazy("next business day"), opening, close_of_next),
    ]


def _rep_state(timer: SlaTimer, profiles: dict[int, RepProfile], window: Window) -> str:
    """Why a timer due in the window will break if nothing changes."""
    rep_id = timer.handoff.assigned_to_id
    if rep_id is None:
        return "queued"  # nobody holds it: the queue's MQL is nobody's call
    profile = profiles.get(rep_id)
    if (
        profile is not None
        and profile.away
        and (profile.away_until is None or profile.away_until >= timer.due_at)
    ):
        return "rep_away"  # its holder is away until after the deadline
    return "untouched"  # its holder is at work, and has not done it yet


def forecast(
    f: MetricsFilter,
    *,
    now: dt.datetime | None = None,
    calendar: Calendar,
    weeks: int = 4,
    limit: int = 50,
) -> dict[str, Any]:
    """Per window: the open timers that breach in it if nothing changes (each with why),
    and how many MQLs the teams will likely receive in it — the mean count of the same
    weekday-and-hour slots over the last `weeks` weeks."""
    now = now or timezone.now()
    windows = forecast_windows(now, calendar)
    # The open handoffs as a join, not `handoff__in` a subquery: the timers are read in
    # due order on their index and the first `limit` found end the scan (a subquery of
    # 100,000 open handoffs was hashed whole first).
    open_handoffs = Q(handoff__status=HandoffStatus.OPEN)
    if f.team_ids is not None:
        open_handoffs &= Q(handoff__team_id__in=f.team_ids)
    # The last `weeks` weeks of whole local hours before this one: each weekday-and-hour
    # slot `weeks` times, summed per day and hour by the recomputation (sla.kpis.speed_days).
    tz = timezone.get_default_timezone()
    this_hour = timezone.localtime(now, tz).replace(minute=0, second=0, microsecond=0)
    slots = arrival_slots(this_hour - dt.timedelta(weeks=weeks), this_hour, f.team_ids)
    result = []
    for window in windows:
        timers = list(
            SlaTimer.objects.filter(
                open_handoffs,
                status=TimerStatus.PENDING,
                met_at__isnull=True,
                due_at__gte=max(window.start, now),
                due_at__lt=window.end,
            )
            .select_related("handoff__lead", "handoff__assigned_to", "handoff__team")
            .order_by("due_at", "id")[: limit + 1]
        )
        rep_ids = {t.handoff.assigned_to_id for t in timers if t.handoff.assigned_to_id}
        profiles = {p.user_id: p for p in RepProfile.objects.filter(user_id__in=rep_ids)}
        at_risk = [
            {"timer": timer, "why": _rep_state(timer, profiles, window)} for timer in timers[:limit]
        ]
        expected = _expected_arrivals(slots, window, tz, weeks)
        result.append(
            {
                "key": window.key,
                "label": str(window.label),
                "start": window.start,
                "end": window.end,
                "at_risk": at_risk,
                "more": len(timers) > limit,
                "expected_mqls": expected,
            }
        )
    return {"windows": result, "weeks": weeks}


def _expected_arrivals(
    slots: dict[tuple[int, int], int], window: Window, tz: Any, weeks: int
) -> float:
    """Sum over the window's hours of the mean arrivals of that weekday and hour (a
    partial first or last hour counts by the share of it inside the window)."""
    total = 0.0
    cursor = window.start
    while cursor < window.end:
        local = cursor.astimezone(tz)
        hour_start = local.replace(minute=0, second=0, microsecond=0)
        hour_end = hour_start + dt.timedelta(hours=1)
        part_end = min(hour_end, window.end.astimezone(tz))
        share = (part_end - local).total_seconds() / 3600
        total += share * slots.get((local.weekday(), local.hour), 0) / weeks
        cursor = part_end
    return round(total, 1)


def hop_handoffs(f: MetricsFilter, hop_key: str, *, limit: int = 50) -> list[HandoffTimeline]:
    """The handoffs behind a hop's figures: the range's timelines that have the hop,
    slowest first (what a manager opens from the slowest hop)."""
    hop = next(h for h in HOPS if h.key == hop_key)
    return list(
        timelines(f)
        .filter(**{f"{hop.start}__isnull": False, f"{hop.end}__isnull": False})
        .annotate(duration=_duration(hop))
        .select_related("handoff__lead", "handoff__assigned_to", "handoff__team")
        .order_by("-duration", "handoff_id")[:limit]
    )
