"""The dashboard's read model: KPIs pre-summed per MQL day (see the models' comment).

- `kpi_days_mark_stale` appends "recompute day D" rows in the transaction of the change
  that affects D's MQLs. It is called by the SLA reactions (a handoff created, assigned,
  contacted, decided; a lead won or un-won; leads merged), by the sweep (breaches) and when
  the agreed settings that the figures depend on change.
- `kpi_days_refresh` (beat, every minute) reads the stale marks, recomputes those days
  whole from the handoffs and timers — the same definitions `sla.kpis.metrics` documents — and
  deletes exactly the marks it read: a mark committed while it runs stays for the next run.
- `kpi_days_rebuild` (beat, nightly) marks every day that has MQLs stale. It catches what
  no mark follows: lead edits (source, required fields) after the MQL.

The figures are therefore as of the last recomputation: a minute behind at most while
beat runs. A timer that runs past its due time counts as late once the sweep has marked
it breached (the sweep marks its day), also within a minute.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import (
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, TruncDate
from django.db.models.lookups import GreaterThanOrEqual
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from handoff.models import Activity, Handoff, HandoffStatus, TimelineStaleDay
from leadflow.models import Stage
from sla.kpis.speed_days import speed_days_present, speed_days_recompute
from sla.models import KpiHandoffDay, KpiStaleDay, KpiState, KpiTimerDay, SlaTimer
from sla.selectors import sla_settings_get

# Days recomputed per transaction (a day of 20,000 MQLs takes about a second on PostgreSQL).
DAYS_PER_REFRESH = 7
# Marks read per run: bounded so that a flood of marks (a rebuild) is worked off in turns.
MARKS_PER_REFRESH = 50_000
# pg_try_advisory_xact_lock key: one recomputation at a time ("KPI" in ASCII).
ADVISORY_LOCK_KEY = 0x4B5049

FIRST_CONTACT_DELAY = ExpressionWrapper(
    F("first_contact_at") - F("created_at"), output_field=DurationField()
)


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    tz = timezone.get_default_timezone()
    start = dt.datetime.combine(day, dt.time(0), tzinfo=tz)
    return start, dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=tz)


# --- marking --------------------------------------------------------------------------


def kpi_days_mark_stale(*, moments: Iterable[dt.datetime | dt.date]) -> int:
    """Mark the MQL days of these instants (or dates) for recomputation. One INSERT."""
    days = {timezone.localdate(m) if isinstance(m, dt.datetime) else m for m in moments}
    KpiStaleDay.objects.bulk_create([KpiStaleDay(day=day) for day in sorted(days)])
    return len(days)


def kpi_days_mark_handoff(*, handoff: Handoff) -> None:
    kpi_days_mark_stale(moments=[handoff.created_at])


def kpi_days_mark_lead(*, lead_id: int) -> None:
    """Every MQL day of the lead's handoffs (a lead won long after its MQL, a merge)."""
    kpi_days_mark_stale(
        moments=Handoff.objects.filter(lead_id=lead_id).values_list("created_at", flat=True)
    )


# The agreed settings the per-day sums are computed with (handoff_rows); a change of any
# other setting (the targets) needs no recomputation.
SUMMED_SETTINGS = frozenset(
    {"min_attempts_not_reachable", "not_reachable_reason_code", "required_fields"}
)


def kpi_days_rebuild() -> int:
    """Mark every day that has MQLs, or sums of MQLs since deleted (a lead erased with its
    handoffs), for recomputation: nightly, and after the agreed settings change."""
    tz = timezone.get_default_timezone()
    days = set(
        Handoff.objects.annotate(day=TruncDate("created_at", tzinfo=tz))
        .order_by()
        .values_list("day", flat=True)
        .distinct()
    )
    days |= set(KpiHandoffDay.objects.order_by().values_list("day", flat=True).distinct())
    days |= set(KpiTimerDay.objects.order_by().values_list("day", flat=True).distinct())
    days |= speed_days_present()
    return kpi_days_mark_stale(moments=days)


# --- recomputing ----------------------------------------------------------------------


def mql_meets_scoring_policy() -> Q:
    """On a handoff: its MQL was made by the published scoring policy (the `scoring` app's
    actor), not moved by hand or by an import. The one place this is decided."""
    return Q(mql_transition__actor_system="scoring")


def _required_filled(fields: Iterable[str]) -> Q:
    condition = Q()
    for name in fields:
        if name == "company":
            condition &= Q(lead__company__isnull=False)
        else:
            condition &= ~Q(**{f"lead__{name}": ""})
    return condition


def _known(now: dt.datetime) -> Q:
    return Q(met_at__isnull=False) | Q(due_at__lte=now)


def _late(now: dt.datetime) -> Q:
    return Q(met_at__gt=F("due_at")) | Q(met_at__isnull=True, due_at__lte=now)


def _in_days(field: str, days: list[dt.date]) -> Q:
    condition = Q()
    for day in days:
        start, end = day_bounds(day)
        condition |= Q(**{f"{field}__gte": start, f"{field}__lt": end})
    return condition


def handoff_rows(days: list[dt.date], *, now: dt.datetime) -> list[dict[str, Any]]:
    """The KpiHandoffDay rows of these days, computed from the handoffs. One query."""
    agreed = sla_settings_get()
    fields = [name for name in agreed.required_fields if isinstance(name, str)]
    timers = SlaTimer.objects.filter(handoff_id=OuterRef("pk"))
    attempts = (
        Activity.objects.filter(handoff_id=OuterRef("pk"))
        .order_by()
        .values("handoff_id")
        .annotate(n=Count("id"))
        .values("n")
    )
    tz = timezone.get_default_timezone()
    accepted = Q(status=HandoffStatus.ACCEPTED)
    rejected = Q(status=HandoffStatus.REJECTED)
    not_reachable = rejected & Q(rejection_reason__code=agreed.not_reachable_reason_code)
    rows: Any = (
        Handoff.objects.filter(_in_days("created_at", days))
        .annotate(
            day=TruncDate("created_at", tzinfo=tz),
            any_known=Exists(timers.filter(_known(now))),
            any_late=Exists(timers.filter(_late(now))),
            attempts=Coalesce(Subquery(attempts), Value(0)),
        )
        .values("day", "team_id", "assigned_to_id", "lead__source", "rejection_reason_id")
        .order_by()
        .annotate(
            mqls=Count("id"),
            sqls=Count("id", filter=accepted),
            rejected=Count("id", filter=rejected),
            open=Count("id", filter=Q(status=HandoffStatus.OPEN)),
            contacted=Count("id", filter=Q(first_contact_at__isnull=False)),
            first_contact_total=Sum(FIRST_CONTACT_DELAY),
            won=Count("id", filter=accepted & Q(lead__stage__in=(Stage.CUSTOMER, Stage.ADVOCATE))),
            rejected_with_reason=Count(
                "id", filter=rejected & Q(rejection_reason__isnull=False) & ~Q(rejection_comment="")
            ),
            not_reachable=Count("id", filter=not_reachable),
            not_reachable_followed_up=Count(
                "id",
                filter=not_reachable & Q(attempts__gte=agreed.min_attempts_not_reachable),
            ),
            by_policy=Count("id", filter=mql_meets_scoring_policy()),
            complete=Count("id", filter=_required_filled(fields)),
            sla_known=Count("id", filter=Q(any_known=True)),
            sla_compliant=Count("id", filter=Q(any_known=True, any_late=False)),
        )
    )
    return list(rows)


def timer_rows(days: list[dt.date], *, now: dt.datetime) -> list[dict[str, Any]]:
    """The KpiTimerDay rows of these days, computed from the timers. One query."""
    tz = timezone.get_default_timezone()
    rows: Any = (
        SlaTimer.objects.filter(_in_days("started_at", days))
        .annotate(day=TruncDate("started_at", tzinfo=tz))
        .values("day", "handoff__team_id", "rep_id", "handoff__lead__source", "kind")
        .order_by()
        .annotate(
            known=Count("id", filter=_known(now)),
            in_time=Count("id", filter=Q(met_at__lte=F("due_at"))),
            late=Count("id", filter=_late(now)),
            running=Count("id", filter=Q(met_at__isnull=True, due_at__gt=now)),
            inherited=Count("id", filter=Q(rep_since__gt=F("started_at"))),
        )
    )
    return list(rows)


def as_timedelta(value: Any) -> dt.timedelta | None:
    """A duration from the database: a timedelta on PostgreSQL, microseconds on SQLite."""
    if value is None or isinstance(value, dt.timedelta):
        return value
    return dt.timedelta(microseconds=int(value))


def kpi_days_recompute(days: list[dt.date], *, now: dt.datetime) -> None:
    """Replace the rows of these days (call inside a transaction)."""
    handoffs = [
        KpiHandoffDay(
            day=row["day"],
            team_id=row["team_id"],
            rep_id=row["assigned_to_id"],
            source=row["lead__source"] or "",
            rejection_reason_id=row["rejection_reason_id"],
            first_contact_total=as_timedelta(row["first_contact_total"]) or dt.timedelta(0),
            **{
                key: row[key]
                for key in (
                    "mqls",
                    "sqls",
                    "rejected",
                    "open",
                    "contacted",
                    "won",
                    "rejected_with_reason",
                    "not_reachable",
                    "not_reachable_followed_up",
                    "by_policy",
                    "complete",
                    "sla_known",
                    "sla_compliant",
                )
            },
        )
        for row in handoff_rows(days, now=now)
    ]
    timers = [
        KpiTimerDay(
            day=row["day"],
            team_id=row["handoff__team_id"],
            rep_id=row["rep_id"],
            source=row["handoff__lead__source"] or "",
            kind=row["kind"],
            known=row["known"],
            on_time=row["in_time"],
            late=row["late"],
            running=row["running"],
            inherited=row["inherited"],
        )
        for row in timer_rows(days, now=now)
    ]
    KpiHandoffDay.objects.filter(day__in=days).delete()
    KpiTimerDay.objects.filter(day__in=days).delete()
    KpiHandoffDay.objects.bulk_create(handoffs, batch_size=1000)
    KpiTimerDay.objects.bulk_create(timers, batch_size=1000)
    speed_days_recompute(days)  # the speed-to-lead figures of the same days


@dataclass(frozen=True)
class RefreshResult:
    days: list[dt.date]
    more: bool  # marks were left for another run
    skipped: bool = False  # another recomputation holds the lock


def _lock() -> bool:
    if connection.vendor != "postgresql":
        return True  # SQLite: one writer at a time anyway
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [ADVISORY_LOCK_KEY])
        return bool(cursor.fetchone()[0])


def kpi_days_refresh(
    *, now: dt.datetime | None = None, max_days: int = DAYS_PER_REFRESH
) -> RefreshResult:
    """Recompute up to `max_days` stale days in one transaction; `more` says whether stale
    days remain. Safe to run twice at once (the second one skips)."""
    now = now or timezone.now()
    with transaction.atomic(durable=True):
        if not _lock():
            return RefreshResult(days=[], more=True, skipped=True)
        marks = list(
            KpiStaleDay.objects.order_by("day", "id").values_list("id", "day")[:MARKS_PER_REFRESH]
        )
        # The timeline's own marks (handoff.timeline: instants no other change announces).
        timeline_marks = list(
            TimelineStaleDay.objects.order_by("day", "id").values_list("id", "day")[
                :MARKS_PER_REFRESH
            ]
        )
        days = sorted({day for _, day in marks} | {day for _, day in timeline_marks})[:max_days]
        chosen = set(days)
        read = [mark_id for mark_id, day in marks if day in chosen]
        timeline_read = [mark_id for mark_id, day in timeline_marks if day in chosen]
        if days:
            kpi_days_recompute(days, now=now)
            # Exactly the marks read: one committed meanwhile stays for the next run.
            KpiStaleDay.objects.filter(id__in=read).delete()
            TimelineStaleDay.objects.filter(id__in=timeline_read).delete()
        more = (
            len(read) < len(marks)
            or len(timeline_read) < len(timeline_marks)
            or MARKS_PER_REFRESH in (len(marks), len(timeline_marks))
        )
        KpiState.objects.update_or_create(pk=1, defaults={"refreshed_at": now})
    return RefreshResult(days=days, more=more)


def kpi_days_refresh_all(*, now: dt.datetime | None = None) -> int:
    """Work off every stale day now (demo data, tests, a management command)."""
    total = 0
    while True:
        result = kpi_days_refresh(now=now)
        total += len(result.days)
        if not result.more or result.skipped:
            return total


def kpi_refreshed_at() -> dt.datetime | None:
    state = KpiState.objects.filter(pk=1).first()
    return state.refreshed_at if state else None


# --- the handoffs behind a figure (the dashboard's drill-down) --------------------------

# The figures a list can be narrowed to, with the condition each puts on a handoff of the
# cohort (the MQL date range and team are the list's own filters). Each is the condition
# `handoff_rows` / `timer_rows` count with, so the list shows exactly the handoffs a
# figure counted (tests/sla/test_drilldown.py holds them to it).
KPI_LABELS = {
    "mqls": _("MQLs"),
    "sqls": _("Accepted as SQL"),
    "rejected": _("Rejected"),
    "open": _("Open"),
    "won": _("SQLs won"),
    "contacted": _("Contacted"),
    "sla_known": _("SLA outcome known"),
    "sla_compliant": _("No deadline missed"),
    "sla_late": _("A deadline missed"),
    "first_contact_on_time": _("First contact in time"),
    "first_contact_late": _("First contact late"),
    "first_contact_running": _("First contact running"),
    "verdict_on_time": _("Verdict in time"),
    "verdict_late": _("Verdict late"),
    "verdict_running": _("Verdict running"),
    "rejected_with_reason": _("Rejected with a reason and a comment"),
    "rejected_without_reason": _("Rejected without a reason or comment"),
    "not_reachable": _("Rejected as not reachable"),
    "not_reachable_followed_up": _("Not reachable, after enough attempts"),
    "not_reachable_too_soon": _("Not reachable, too few attempts"),
    "by_policy": _("Made by the scoring policy"),
    "complete": _("Every required field filled"),
}


def handoff_kpi_condition(key: str, now: dt.datetime) -> Q | None:
    """The condition of figure `key` on a handoff, as counted at `now` (None: no such
    figure)."""
    timers = SlaTimer.objects.filter(handoff_id=OuterRef("pk"))
    accepted = Q(status=HandoffStatus.ACCEPTED)
    rejected = Q(status=HandoffStatus.REJECTED)
    if key in ("mqls", "sqls", "rejected", "open", "won", "contacted", "by_policy"):
        return {
            "mqls": Q(),
            "sqls": accepted,
            "rejected": rejected,
            "open": Q(status=HandoffStatus.OPEN),
            "won": accepted & Q(lead__stage__in=(Stage.CUSTOMER, Stage.ADVOCATE)),
            "contacted": Q(first_contact_at__isnull=False),
            "by_policy": mql_meets_scoring_policy(),
        }[key]
    if key.startswith("sla_"):
        known, late = Exists(timers.filter(_known(now))), Exists(timers.filter(_late(now)))
        return {
            "sla_known": Q(known),
            "sla_compliant": Q(known) & ~Q(late),
            "sla_late": Q(late),
        }.get(key)
    for kind in ("first_contact", "verdict"):
        if key.startswith(f"{kind}_"):
            of_kind = timers.filter(kind=kind)
            outcome = {
                "on_time": Q(met_at__lte=F("due_at")),
                "late": _late(now),
                "running": Q(met_at__isnull=True, due_at__gt=now),
            }.get(key.removeprefix(f"{kind}_"))
            return Q(Exists(of_kind.filter(outcome))) if outcome is not None else None
    agreed = sla_settings_get()
    with_reason = rejected & Q(rejection_reason__isnull=False) & ~Q(rejection_comment="")
    not_reachable = rejected & Q(rejection_reason__code=agreed.not_reachable_reason_code)
    attempts = (
        Activity.objects.filter(handoff_id=OuterRef("pk"))
        .order_by()
        .values("handoff_id")
        .annotate(n=Count("id"))
        .values("n")
    )
    # The same correlated count of logged attempts that handoff_rows compares.
    followed = Q(
        GreaterThanOrEqual(
            Coalesce(Subquery(attempts), Value(0)), agreed.min_attempts_not_reachable
        )
    )
    return {
        "rejected_with_reason": with_reason,
        "rejected_without_reason": rejected & ~with_reason,
        "not_reachable": not_reachable,
        "not_reachable_followed_up": not_reachable & followed,
        "not_reachable_too_soon": not_reachable & ~followed,
        "complete": _required_filled(
            [name for name in agreed.required_fields if isinstance(name, str)]
        ),
    }.get(key)
