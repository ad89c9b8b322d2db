"""The KPI selectors behind the dashboard, the metrics API, the CSV export and the digest.

The figures are read from the per-day sums that `sla.kpis.days` keeps (at most a minute old,
`as_of` says when), so a page costs the same few small queries whether the range holds a
hundred MQLs or a hundred thousand; only the median and the overdue list read the handoffs
themselves. The definitions below are what `sla.kpis.days` sums.

What is counted (the article's KPI table, made exact):

- The cohort is the MQLs handed off in the range: handoffs whose MQL happened between
  `start` 00:00 and `end` 24:00 (TIME_ZONE), of the chosen teams. Every MQL gets exactly
  one handoff, so "MQL count" is the number of those handoffs.
- MQL → SQL % = cohort accepted as SQL ÷ cohort (SQL数 ÷ MQL数).
- Time to first contact = first logged activity − MQL, clock time (平均初回コンタクト時間),
  over the cohort's handoffs that have one; average and median.
- SLA compliance per timed obligation = timers met on time ÷ timers whose outcome is known
  (met, or due and not met). Timers still running and not yet due are not counted yet.
- SLA compliance overall (SLA遵守率) = MQLs none of whose timers was late ÷ MQLs with at
  least one known outcome.
- Follow-ups = "not reachable" rejections with at least N logged attempts ÷ all of them.
- Rejection reasons = rejections with a reason and a comment ÷ rejections.
- SQL → won % = cohort SQLs whose lead is now a customer (or advocate) ÷ cohort SQLs.
- Target bands carry a direction (`band_status`): below a conversion band is bad, above it
  is good ("above"); above a time target and below a compliance target are bad ("out").
- Marketing: MQLs per month against the target; MQLs made by the published scoring
  policy (actor "scoring") ÷ MQLs; MQLs with every required field filled ÷ MQLs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import (
    Aggregate,
    DurationField,
    QuerySet,
    Sum,
)
from django.db.models.functions import Coalesce, TruncMonth, TruncWeek
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from handoff.models import Handoff, HandoffStatus, RejectionReason, TeamMembership
from leadflow.models import Lead, User
from sla.kpis.days import FIRST_CONTACT_DELAY, as_timedelta, day_bounds, kpi_refreshed_at
from sla.models import KpiHandoffDay, KpiTimerDay, MqlTarget, SlaSettings, SlaTimer, TimerKind
from sla.selectors import sla_settings_get

# The article's target bands (目安値).
MQL_TO_SQL_BAND = (20.0, 30.0)
SQL_TO_WON_BAND = (15.0, 25.0)
FIRST_CONTACT_TARGET_HOURS = 24.0
MAX_RANGE_DAYS = 366


@dataclass(frozen=True)
class MetricsFilter:
    """A date range (both days included, in TIME_ZONE) and the teams (None = all)."""

    start: dt.date
    end: dt.date
    team_ids: frozenset[int] | None = None

    @property
    def start_at(self) -> dt.datetime:
        return day_bounds(self.start)[0]

    @property
    def end_at(self) -> dt.datetime:
        return day_bounds(self.end)[1]


def cohort(f: MetricsFilter) -> QuerySet[Handoff]:
    """The handoffs themselves (the median and the overdue list read them live)."""
    handoffs = Handoff.objects.filter(created_at__gte=f.start_at, created_at__lt=f.end_at)
    if f.team_ids is not None:
        handoffs = handoffs.filter(team_id__in=f.team_ids)
    return handoffs


def handoff_days(f: MetricsFilter) -> QuerySet[KpiHandoffDay]:
    days = KpiHandoffDay.objects.filter(day__gte=f.start, day__lte=f.end)
    if f.team_ids is not None:
        days = days.filter(team_id__in=f.team_ids)
    return days


def timer_days(f: MetricsFilter) -> QuerySet[KpiTimerDay]:
    days = KpiTimerDay.objects.filter(day__gte=f.start, day__lte=f.end)
    if f.team_ids is not None:
        days = days.filter(team_id__in=f.team_ids)
    return days


def _rows(queryset: Any) -> list[dict[str, Any]]:
    """A values() queryset as plain dicts (django-stubs types each shape on its own)."""
    return list(queryset)


def percent(part: int | None, whole: int | None) -> float | None:
    if not whole:
        return None
    return round(100.0 * (part or 0) / whole, 1)


def hours(delta: dt.timedelta | None) -> float | None:
    if delta is None:
        return None
    return round(delta.total_seconds() / 3600, 1)


def _average(total: Any, count: int | None) -> dt.timedelta | None:
    delta = as_timedelta(total)
    if not count or delta is None:
        return None
    return delta / count


def _funnel_sums() -> dict[str, Any]:
    return {
        "mqls": Coalesce(Sum("mqls"), 0),
        "sqls": Coalesce(Sum("sqls"), 0),
        "rejected": Coalesce(Sum("rejected"), 0),
        "open": Coalesce(Sum("open"), 0),
        "contacted": Coalesce(Sum("contacted"), 0),
        "first_contact_total": Sum("first_contact_total"),
        "won": Coalesce(Sum("won"), 0),
    }


def _timer_sums() -> dict[str, Any]:
    return {
        "known": Coalesce(Sum("known"), 0),
        "in_time": Coalesce(Sum("on_time"), 0),
        "late": Coalesce(Sum("late"), 0),
        "running": Coalesce(Sum("running"), 0),
        "inherited": Coalesce(Sum("inherited"), 0),
    }


class _Median(Aggregate):
    """PostgreSQL's exact median; of an even count, the mean of the two middle values."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = DurationField()


def _median_first_contact(handoffs: QuerySet[Handoff]) -> dt.timedelta | None:
    """Read live from the handoffs: a median cannot be summed per day. PostgreSQL: one
    query over the `handoff_contacted_idx` index; elsewhere ORDER BY + OFFSET (two)."""
    contacted = handoffs.filter(first_contact_at__isnull=False)
    if connection.vendor == "postgresql":
        return as_timedelta(contacted.aggregate(median=_Median(FIRST_CONTACT_DELAY))["median"])
    count = contacted.count()
    if not count:
        return None
    middle = list(
        contacted.annotate(delay=FIRST_CONTACT_DELAY)
        .order_by("delay")
        .values_list("delay", flat=True)[(count - 1) // 2 : count // 2 + 1]
    )
    values = [as_timedelta(value) for value in middle]
    present = [value for value in values if value is not None]
    return sum(present, dt.timedelta(0)) / len(present) if present else None


def summary(f: MetricsFilter) -> dict[str, Any]:
    """The headline figures of the range: four queries (plus the settings row)."""
    agreed = sla_settings_get()
    funnel = handoff_days(f).aggregate(
        **_funnel_sums(),
        rejected_with_reason=Coalesce(Sum("rejected_with_reason"), 0),
        not_reachable=Coalesce(Sum("not_reachable"), 0),
        not_reachable_followed_up=Coalesce(Sum("not_reachable_followed_up"), 0),
        sla_known=Coalesce(Sum("sla_known"), 0),
        sla_compliant=Coalesce(Sum("sla_compliant"), 0),
    )
    avg = _average(funnel["first_contact_total"], funnel["contacted"])
    median = _median_first_contact(cohort(f))
    by_kind = {
        row["kind"]: row
        for row in _rows(timer_days(f).values("kind").order_by("kind").annotate(**_timer_sums()))
    }
    compliance = {}
    for kind in TimerKind.values:
        row = by_kind.get(kind, {"known": 0, "in_time": 0, "late": 0, "running": 0})
        compliance[kind] = {
            "known": row["known"],
            "on_time": row["in_time"],
            "late": row["late"],
            "running": row["running"],
            "percent": percent(row["in_time"], row["known"]),
        }
    followed_up = funnel["not_reachable_followed_up"]
    compliance["follow_ups"] = {
        "known": funnel["not_reachable"],
        "on_time": followed_up,
        "late": funnel["not_reachable"] - followed_up,
        "running": 0,
        "percent": percent(followed_up, funnel["not_reachable"]),
    }
    compliance["rejection_reason"] = {
        "known": funnel["rejected"],
        "on_time": funnel["rejected_with_reason"],
        "late": funnel["rejected"] - funnel["rejected_with_reason"],
        "running": 0,
        "percent": percent(funnel["rejected_with_reason"], funnel["rejected"]),
    }
    return {
        "start": f.start,
        "end": f.end,
        "as_of": kpi_refreshed_at(),
        "mqls": funnel["mqls"],
        "sqls": funnel["sqls"],
        "rejected": funnel["rejected"],
        "open": funnel["open"],
        "won": funnel["won"],
        "contacted": funnel["contacted"],
        "mql_to_sql_percent": percent(funnel["sqls"], funnel["mqls"]),
        "sql_to_won_percent": percent(funnel["won"], funnel["sqls"]),
        "avg_first_contact_hours": hours(avg),
        "median_first_contact_hours": hours(median),
        "sla_compliance_percent": percent(funnel["sla_compliant"], funnel["sla_known"]),
        "sla_known": funnel["sla_known"],
        "sla_compliant": funnel["sla_compliant"],
        "compliance": compliance,
        "compliance_target_percent": agreed.compliance_target_percent,
    }


# --- bands -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Kpi:
    key: str
    label: str
    value: float | int | None
    unit: str  # "%", "h" or ""
    band: str  # the article's 目安値, as shown
    status: str  # see band_status
    definition: str = ""  # how it is counted, in the UI language
    numerator: int | None = None  # the counts behind a rate (None where it is no rate)
    denominator: int | None = None


def band_status(
    value: float | None,
    *,
    low: float | None = None,
    high: float | None = None,
    above: str = "out",
) -> str:
    """Where a figure stands against its target band: "in", "out" (on the bad side),
    "above" (over the top of a band where more is better) or "none" (no figure).

    A band carries a direction. A time target (≤ 24 h) is bad above; a rate target
    (≥ 90 %) is bad below. A conversion band (MQL → SQL 20–30 %) is bad below, but above
    it is good news (sales wins more than the article expects; at most a hint that the
    MQL bar may be strict): callers pass above="above", which the page shows green."""
    if value is None:
        return "none"
    if low is not None and value < low:
        return "out"
    if high is not None and value > high:
        return above
    return "in"


def status_label(status: str, *, has_band: bool = True) -> str:
    """A status in words, for the CSV (目安内 / 目安外 …), not the code."""
    if status == "none":
        return _("No data") if has_band else _("No target")
    return {
        "in": _("Within target"),
        "out": _("Outside target"),
        "above": _("Above the band (good)"),
    }[status]


def kpis(data: dict[str, Any]) -> list[Kpi]:
    """The article's KPI table with its target bands, in the page's order."""
    target = float(data["compliance_target_percent"])
    low_sql, high_sql = MQL_TO_SQL_BAND
    low_won, high_won = SQL_TO_WON_BAND
    return [
        # No band for the count itself: marketing's monthly target is on its side.
        Kpi(
            "mqls",
            _("MQLs"),
            data["mqls"],
            "",
            "",
            "none",
            _(
                "Handoffs whose MQL happened in the range, in the chosen teams. Every MQL "
                "gets exactly one handoff."
            ),
        ),
        Kpi(
            "mql_to_sql",
            _("MQL → SQL"),
            data["mql_to_sql_percent"],
            "%",
            "20–30 %",
            band_status(data["mql_to_sql_percent"], low=low_sql, high=high_sql, above="above"),
            _(
                "MQLs of the range accepted as SQL ÷ MQLs of the range. Open and rejected "
                "MQLs count in the denominator. Above the band is good news, below is not."
            ),
            data["sqls"],
            data["mqls"],
        ),
        Kpi(
            "avg_first_contact",
            _("Average time to first contact"),
            data["avg_first_contact_hours"],
            "h",
            _("≤ 24 h"),
            band_status(data["avg_first_contact_hours"], high=FIRST_CONTACT_TARGET_HOURS),
            _(
                "Mean of first logged activity − MQL time, in clock hours, over the MQLs of "
                "the range that were contacted. MQLs not contacted yet are not counted."
            ),
            None,
            data["contacted"],
        ),
        Kpi(
            "median_first_contact",
            _("Median time to first contact"),
            data["median_first_contact_hours"],
            "h",
            _("≤ 24 h"),
            band_status(data["median_first_contact_hours"], high=FIRST_CONTACT_TARGET_HOURS),
            _(
                "The middle value of first logged activity − MQL time, in clock hours, over "
                "the MQLs of the range that were contacted. One very late call moves it "
                "less than the average."
            ),
            None,
            data["contacted"],
        ),
        Kpi(
            "sla_compliance",
            _("SLA compliance"),
            data["sla_compliance_percent"],
            "%",
            f"≥ {target:g} %",
            band_status(data["sla_compliance_percent"], low=target),
            _(
                "MQLs none of whose deadlines (first contact, verdict) was missed ÷ MQLs "
                "with at least one deadline met or passed. It counts MQLs, the table of "
                "commitments counts deadlines: one MQL late on one deadline lowers both."
            ),
            data["sla_compliant"],
            data["sla_known"],
        ),
        Kpi(
            "sql_to_won",
            _("SQL → won"),
            data["sql_to_won_percent"],
            "%",
            "15–25 %",
            band_status(data["sql_to_won_percent"], low=low_won, high=high_won, above="above"),
            _(
                "SQLs of the range whose lead is now a customer ÷ SQLs of the range. Above "
                "the band is good news, below is not."
            ),
            data["won"],
            data["sqls"],
        ),
    ]


OBLIGATION_LABELS = {
    TimerKind.FIRST_CONTACT: TimerKind.FIRST_CONTACT.label,
    TimerKind.VERDICT: TimerKind.VERDICT.label,
}


def obligations(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Compliance per obligation of the sales side, with the target beside each."""
    target = float(data["compliance_target_percent"])
    labels = {
        TimerKind.FIRST_CONTACT.value: _("First contact in time"),
        TimerKind.VERDICT.value: _("SQL / not-SQL verdict in time"),
        "follow_ups": _("Attempts before “not reachable”"),
        "rejection_reason": _("Reason on every rejection"),
    }
    rows = []
    for key, label in labels.items():
        row = data["compliance"][key]
        rows.append(
            {
                "key": key,
                "label": label,
                **row,
                "target": target,
                "status": band_status(row["percent"], low=target),
            }
        )
    return rows


# --- tables ----------------------------------------------------------------------------


def _timer_rates(rows: Iterable[dict[str, Any]], key: str) -> dict[Any, dict[str, dict]]:
    rates: dict[Any, dict[str, dict]] = {}
    for row in rows:
        rates.setdefault(row[key], {})[row["kind"]] = row
    return rates


def _rate(rates: dict[str, dict], kind: str) -> float | None:
    row = rates.get(kind)
    return percent(row["in_time"], row["known"]) if row else None


def weekly(f: MetricsFilter) -> list[dict[str, Any]]:
    """One row per week (Monday start) of the range: two queries."""
    rows = _rows(
        handoff_days(f)
        .annotate(week=TruncWeek("day"))
        .values("week")
        .order_by("week")
        .annotate(**_funnel_sums())
    )
    timer_rows = _rows(
        timer_days(f)
        .annotate(week=TruncWeek("day"))
        .values("week", "kind")
        .order_by("week", "kind")
        .annotate(**_timer_sums())
    )
    rates = _timer_rates(timer_rows, "week")
    return [
        {
            "week": _date(row["week"]),
            "mqls": row["mqls"],
            "sqls": row["sqls"],
            "won": row["won"],
            "mql_to_sql_percent": percent(row["sqls"], row["mqls"]),
            "avg_first_contact_hours": hours(
                _average(row["first_contact_total"], row["contacted"])
            ),
            "first_contact_sla_percent": _rate(rates.get(row["week"], {}), TimerKind.FIRST_CONTACT),
            "verdict_sla_percent": _rate(rates.get(row["week"], {}), TimerKind.VERDICT),
        }
        for row in rows
    ]


def _date(value: dt.date | dt.datetime) -> dt.date:
    # Trunc of a DateField: a date (a datetime on some backends).
    return value.date() if isinstance(value, dt.datetime) else value


def per_rep(f: MetricsFilter) -> list[dict[str, Any]]:
    """One row per rep: their handoffs of the cohort, and the timers attributed to them
    (see sla.services on attribution). Three queries."""
    funnel = {
        row["rep"]: row
        for row in _rows(
            handoff_days(f)
            .filter(rep__isnull=False)
            .values("rep")
            .order_by("rep")
            .annotate(**_funnel_sums())
        )
    }
    timer_rows = _rows(
        timer_days(f)
        .filter(rep__isnull=False)
        .values("rep", "kind")
        .order_by("rep", "kind")
        .annotate(**_timer_sums())
    )
    rates = _timer_rates(timer_rows, "rep")
    rep_ids = set(funnel) | set(rates)
    users = {user.pk: user for user in User.objects.filter(pk__in=rep_ids)}
    rows = []
    for rep_id in rep_ids:
        row = funnel.get(rep_id) or {
            key: 0 for key in ("mqls", "sqls", "rejected", "open", "contacted", "won")
        }
        rep_rates = rates.get(rep_id, {})
        rows.append(
            {
                "rep_id": rep_id,
                "rep": str(users[rep_id]) if rep_id in users else str(rep_id),
                "handoffs": row["mqls"],
                "sqls": row["sqls"],
                "rejected": row["rejected"],
                "open": row["open"],
                "mql_to_sql_percent": percent(row["sqls"], row["mqls"]),
                "avg_first_contact_hours": hours(
                    _average(row.get("first_contact_total"), row["contacted"])
                ),
                "first_contact_sla_percent": _rate(rep_rates, TimerKind.FIRST_CONTACT),
                "verdict_sla_percent": _rate(rep_rates, TimerKind.VERDICT),
                "breaches": sum(r["late"] for r in rep_rates.values()),
                "inherited": sum(r["inherited"] for r in rep_rates.values()),
            }
        )
    return sorted(rows, key=lambda r: (r["rep"], r["rep_id"]))


def per_source(f: MetricsFilter) -> list[dict[str, Any]]:
    """One row per lead source (where marketing found the lead): two queries."""
    rows = _rows(handoff_days(f).values("source").order_by("source").annotate(**_funnel_sums()))
    timer_rows = _rows(
        timer_days(f).values("source", "kind").order_by("source", "kind").annotate(**_timer_sums())
    )
    rates = _timer_rates(timer_rows, "source")
    return [
        {
            "source": row["source"] or "—",
            "mqls": row["mqls"],
            "sqls": row["sqls"],
            "won": row["won"],
            "mql_to_sql_percent": percent(row["sqls"], row["mqls"]),
            "sql_to_won_percent": percent(row["won"], row["sqls"]),
            "avg_first_contact_hours": hours(
                _average(row["first_contact_total"], row["contacted"])
            ),
            "first_contact_sla_percent": _rate(
                rates.get(row["source"], {}), TimerKind.FIRST_CONTACT
            ),
        }
        for row in rows
    ]


def rejection_reasons(f: MetricsFilter) -> list[dict[str, Any]]:
    """Why sales sent leads back (for the weekly meeting): two queries."""
    counts = _rows(
        handoff_days(f)
        .filter(rejected__gt=0)
        .values("rejection_reason")
        .order_by("rejection_reason")
        .annotate(n=Sum("rejected"))
    )
    reasons = RejectionReason.objects.in_bulk(
        [row["rejection_reason"] for row in counts if row["rejection_reason"] is not None]
    )
    total = sum(row["n"] for row in counts)
    japanese = (translation.get_language() or settings.LANGUAGE_CODE).split("-")[0] == "ja"
    rows = []
    for row in counts:
        reason = reasons.get(row["rejection_reason"])
        label = (reason.label_ja if japanese else reason.label_en) if reason else ""
        rows.append(
            {
                "code": reason.code if reason else "",
                "reason": label or _("(none)"),
                "count": row["n"],
                "percent": percent(row["n"], total),
                "order": reason.order if reason else 0,
            }
        )
    rows.sort(key=lambda r: (-r["count"], r["order"], r["code"]))
    for row in rows:
        del row["order"]
    return rows


def overdue(f: MetricsFilter, *, now: dt.datetime | None = None, limit: int = 50) -> list[SlaTimer]:
    """Open handoffs with a deadline passed and not met, most overdue first (whatever the
    range: overdue is now). One query; `reassign_choices` adds the reps in one more."""
    now = now or timezone.now()
    timers = SlaTimer.objects.filter(
        met_at__isnull=True, due_at__lte=now, handoff__status=HandoffStatus.OPEN
    )
    if f.team_ids is not None:
        timers = timers.filter(handoff__team_id__in=f.team_ids)
    return list(
        timers.select_related(
            "handoff__lead__company", "handoff__team", "handoff__assigned_to", "rep"
        ).order_by("due_at", "id")[:limit]
    )


def reassign_choices(timers: list[SlaTimer]) -> dict[int, list[User]]:
    """For each team in the overdue list, the active reps it may go to (one query)."""
    team_ids = {t.handoff.team_id for t in timers if t.handoff.team_id is not None}
    choices: dict[int, list[User]] = {}
    memberships = (
        TeamMembership.objects.filter(team_id__in=team_ids, rep__is_active=True)
        .select_related("rep")
        .order_by("rep__last_name", "rep__first_name", "rep__username")
    )
    for membership in memberships:
        choices.setdefault(membership.team_id, []).append(membership.rep)
    return choices


# --- marketing's side ----------------------------------------------------------------------


def marketing(f: MetricsFilter) -> dict[str, Any]:
    """MQLs per month against the target, MQL quality and required-field completeness:
    three queries (plus the settings row)."""
    agreed: SlaSettings = sla_settings_get()
    days = handoff_days(f)
    fields = [name for name in agreed.required_fields if isinstance(name, str)]
    totals = days.aggregate(
        mqls=Coalesce(Sum("mqls"), 0),
        by_policy=Coalesce(Sum("by_policy"), 0),
        complete=Coalesce(Sum("complete"), 0),
    )
    months = _rows(
        days.annotate(month=TruncMonth("day"))
        .values("month")
        .order_by("month")
        .annotate(n=Sum("mqls"))
    )
    counts = {_date(row["month"]).replace(day=1): row["n"] for row in months}
    # Every month the range touches, with or without MQLs.
    wanted = []
    cursor = f.start.replace(day=1)
    while cursor <= f.end:
        wanted.append(cursor)
        cursor = (cursor + dt.timedelta(days=32)).replace(day=1)
    targets = dict(MqlTarget.objects.filter(month__in=wanted).values_list("month", "target"))
    month_rows = []
    for month in wanted:
        target = targets.get(month, agreed.monthly_mql_target)
        count = counts.get(month, 0)
        month_rows.append(
            {
                "month": month,
                "mqls": count,
                "target": target,
                "percent_of_target": percent(count, target),
                "status": "in" if count >= target else "out",
            }
        )
    quality = percent(totals["by_policy"], totals["mqls"])
    completeness = percent(totals["complete"], totals["mqls"])
    return {
        "mqls": totals["mqls"],
        "months": month_rows,
        "quality_percent": quality,
        "quality_status": band_status(quality, low=100.0),
        "by_policy": totals["by_policy"],
        "complete": totals["complete"],
        "completeness_percent": completeness,
        "completeness_target_percent": agreed.completeness_target_percent,
        "completeness_status": band_status(
            completeness, low=float(agreed.completeness_target_percent)
        ),
        "required_fields": fields,
        # The page names the fields as the lead form does (姓, 電話番号), not by code.
        "required_field_labels": [
            str(getattr(Lead._meta.get_field(name), "verbose_name", name)) for name in fields
        ],
    }


def as_json(value: Any) -> Any:
    """Dates as ISO strings, Decimals as floats: what the API and the charts read."""
    if isinstance(value, dict):
        return {key: as_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [as_json(item) for item in value]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value
