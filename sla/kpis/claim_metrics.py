"""Claim or pass on (#19) on the dashboard: per rep, the claim windows of the range, how
fast they were claimed and how many passed on.

Time to claim is clock time from the assignment to the claim (what the lead waited), its
median per rep and overall. Two queries whatever the range: the windows' counts per rep,
and the claimed windows' durations (the medians are taken in Python over those).
"""

from __future__ import annotations

import datetime as dt
import statistics
from typing import Any

from django.db.models import Count, Q

from handoff.models import ClaimStatus, HandoffClaim
from leadflow.models import User
from sla.kpis.metrics import MetricsFilter


def _windows(f: MetricsFilter):
    rows = HandoffClaim.objects.filter(started_at__gte=f.start_at, started_at__lt=f.end_at)
    if f.team_ids is not None:
        rows = rows.filter(handoff__team_id__in=f.team_ids)
    return rows


def _median_minutes(values: list[dt.timedelta]) -> float | None:
    if not values:
        return None
    return round(statistics.median(value.total_seconds() for value in values) / 60, 1)


def claim_figures(f: MetricsFilter) -> dict[str, Any]:
    """{"reps": [{rep, windows, claimed, let_pass, received, median_minutes}], "median_minutes",
    "passes"}; reps by name. Passes received are counted in the range of the new window."""
    windows = _windows(f)
    counts = {
        row["rep"]: row
        for row in windows.values("rep")
        .order_by("rep")
        .annotate(
            windows=Count("id"),
            claimed=Count("id", filter=Q(status=ClaimStatus.CLAIMED)),
            let_pass=Count("id", filter=Q(status__in=[ClaimStatus.PASSED, ClaimStatus.QUEUED])),
            received=Count("id", filter=Q(assignment__via="passed")),
        )
    }
    durations: dict[int, list[dt.timedelta]] = {}
    for rep_id, started, resolved in windows.filter(status=ClaimStatus.CLAIMED).values_list(
        "rep", "started_at", "resolved_at"
    ):
        durations.setdefault(rep_id, []).append(resolved - started)
    users = {user.pk: str(user) for user in User.objects.filter(pk__in=list(counts))}
    reps = [
        {
            "rep_id": rep_id,
            "rep": users.get(rep_id, str(rep_id)),
            "windows": row["windows"],
            "claimed": row["claimed"],
            "let_pass": row["let_pass"],
            "received": row["received"],
            "median_minutes": _median_minutes(durations.get(rep_id, [])),
        }
        for rep_id, row in counts.items()
    ]
    every = [value for values in durations.values() for value in values]
    return {
        "reps": sorted(reps, key=lambda row: row["rep"]),
        "median_minutes": _median_minutes(every),
        "passes": sum(row["let_pass"] for row in reps),
    }
