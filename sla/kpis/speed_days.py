"""Speed to lead, pre-summed per MQL day: what /dashboard/speed/ and its API read instead
of sorting every timeline of the range (at 100,000 MQLs a range took seconds).

- The hops' durations are kept as histograms with log-spaced buckets: a bucket spans
  durations within a factor of RATIO (10 %) of each other, and keeps how many fell in it
  and the shortest and longest of them (`SpeedHopDay` by team × source, `SpeedRepHopDay`
  by team × rep). A quantile is the nearest-rank one (rank ⌈q·n⌉, as before) read from
  the bucket that holds that rank: the bucket's shortest duration when the rank is its
  first, its longest when it is its last, else the middle of the two. The true value
  lies between them, so the figure is within ERROR_PERCENT (5 %) of it — exact when the
  rank falls on a bucket's first or last duration (a bucket of one or two durations, or
  of equal ones). Below a millisecond everything shares one bucket (within 0.5 ms).
- The first-contact delay buckets, with their MQLs' outcomes (`SpeedDelayDay`).

A day is recomputed whole from its timelines by the dashboard's per-day recomputation
(sla.kpis: the same marks, the same beat task, the same nightly rebuild), so these figures
are as of its last run, as the dashboard's are. Changes that the KPI marks already follow
(an MQL, an assignment, an activity, a verdict, a lead won) mark the day there; the
instants only the timeline knows of (the rep notified, the first view, the SFA delivery)
mark it through `handoff.TimelineStaleDay` (handoff.timeline).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import connection, models
from django.db.models import Count, Max, Min, Q, QuerySet, Sum
from django.db.models.functions import TruncHour
from django.utils import timezone
from django.utils.translation import gettext_lazy

from handoff.models import Handoff, HandoffStatus, HandoffTimeline
from leadflow.models import Stage
from sla.models import HopHistogramDay, SpeedArrivalHour, SpeedDelayDay, SpeedHopDay, SpeedRepHopDay


@dataclass(frozen=True)
class Hop:
    key: str
    label: Any  # a lazy translation
    start: str  # HandoffTimeline field
    end: str


HOPS = (
    Hop("ma_sync", gettext_lazy("MA tool → LeadFlow"), "event_occurred_at", "received_at"),
    Hop("intake", gettext_lazy("Received → processed"), "received_at", "processed_at"),
    Hop("qualify", gettext_lazy("Processed → MQL"), "processed_at", "mql_at"),
    Hop("routing", gettext_lazy("MQL → assigned"), "mql_at", "assigned_at"),
    Hop("pickup", gettext_lazy("Assigned → opened by the rep"), "assigned_at", "opened_at"),
    Hop("contact", gettext_lazy("Opened → first contact"), "opened_at", "first_contact_at"),
    Hop("verdict", gettext_lazy("First contact → verdict"), "first_contact_at", "decided_at"),
    Hop("notify", gettext_lazy("Assigned → rep notified"), "assigned_at", "notified_at"),
    Hop("sfa", gettext_lazy("MQL → in the SFA"), "mql_at", "sfa_delivered_at"),
)
HOP_KEYS = tuple(hop.key for hop in HOPS)
INSTANT_FIELDS = tuple(sorted({hop.start for hop in HOPS} | {hop.end for hop in HOPS}))

# (key, label, upper bound of the first-contact delay; None = no bound)
BUCKETS = (
    ("5m", gettext_lazy("within 5 minutes"), dt.timedelta(minutes=5)),
    ("1h", gettext_lazy("within 1 hour"), dt.timedelta(hours=1)),
    ("24h", gettext_lazy("within 24 hours"), dt.timedelta(hours=24)),
    ("later", gettext_lazy("after 24 hours"), None),
)
NO_CONTACT = "none"

# Histogram buckets: 0 holds durations under a millisecond; bucket k ≥ 1 holds those of
# RATIO^(k-1) to RATIO^k milliseconds (a year is bucket 253).
RATIO = 1.1
# The middle of a bucket is within 100·(RATIO − 1)/2 % of any duration in it.
ERROR_PERCENT = 5.0
_LOG_RATIO = math.log(RATIO)


def hop_bucket(seconds: float) -> int:
    milliseconds = seconds * 1000
    if milliseconds < 1:
        return 0
    return 1 + math.floor(math.log(milliseconds) / _LOG_RATIO)


def delay_bucket(delay: dt.timedelta | None) -> str:
    if delay is None:
        return NO_CONTACT
    for key, _label, bound in BUCKETS:
        if bound is None or delay <= bound:
            return key
    return BUCKETS[-1][0]


def _in_days(field: str, days: Iterable[dt.date]) -> Q:
    tz = timezone.get_default_timezone()
    condition = Q()
    for day in days:
        start = dt.datetime.combine(day, dt.time(0), tzinfo=tz)
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=tz)
        condition |= Q(**{f"{field}__gte": start, f"{field}__lt": end})
    return condition


def _add(histogram: list[Any], seconds: float) -> None:
    histogram[0] += 1
    histogram[1] = min(histogram[1], seconds)
    histogram[2] = max(histogram[2], seconds)


def _histograms_create(
    model: type[HopHistogramDay], by: str, histograms: dict[tuple, list[Any]]
) -> None:
    """The rows of one hop table: `histograms` keyed (day, team, <by>, hop, bucket), a
    day's rows one after the other: a range reads its days' rows, and rows inserted in the
    order the timelines came (any day) spread each day over every page of the batch (at
    100,000 MQLs a 4-week range then read 4,500 pages for 700 pages' worth of rows)."""
    by_day = sorted(histograms.items(), key=lambda item: item[0][0])
    model._default_manager.bulk_create(
        (
            model(
                day=day,
                team_id=team,
                hop=hop,
                bucket=bucket,
                n=n,
                shortest=shortest,
                longest=longest,
                **{by: value},
            )
            for (day, team, value, hop, bucket), (n, shortest, longest) in by_day
        ),
        batch_size=2000,
    )


def speed_days_recompute(days: list[dt.date]) -> None:
    """Replace the speed-to-lead rows of these days (call inside a transaction): one read
    of their timelines with the handoff's team, rep, status and the lead's stage."""
    if not days:
        return
    by_source: dict[tuple, list[Any]] = defaultdict(lambda: [0, math.inf, -math.inf])
    by_rep: dict[tuple, list[Any]] = defaultdict(lambda: [0, math.inf, -math.inf])
    delays: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    won_stages = {Stage.CUSTOMER, Stage.ADVOCATE}
    decided_statuses = {HandoffStatus.ACCEPTED, HandoffStatus.REJECTED}
    rows = (
        HandoffTimeline.objects.filter(_in_days("mql_at", days))
        .values_list(
            *INSTANT_FIELDS,
            "source",
            "handoff__team_id",
            "handoff__assigned_to_id",
            "handoff__status",
            "handoff__lead__stage",
        )
        .order_by()
    )
    mql_index = INSTANT_FIELDS.index("mql_at")
    contact_index = INSTANT_FIELDS.index("first_contact_at")
    hop_indexes = [
        (hop.key, INSTANT_FIELDS.index(hop.start), INSTANT_FIELDS.index(hop.end)) for hop in HOPS
    ]
    for row in rows.iterator(chunk_size=5000):
        source, team, rep, status, stage = row[len(INSTANT_FIELDS) :]
        mql_at = row[mql_index]
        day = timezone.localdate(mql_at)
        for key, start, end in hop_indexes:
            if row[start] is None or row[end] is None:
                continue
            # Negative durations (the clocks of two machines) count as 0.
            seconds = max(0.0, (row[end] - row[start]).total_seconds())
            bucket = hop_bucket(seconds)
            _add(by_source[(day, team, source or "", key, bucket)], seconds)
            _add(by_rep[(day, team, rep, key, bucket)], seconds)
        contact = row[contact_index]
        counts = delays[(day, team, delay_bucket(contact - mql_at if contact else None))]
        counts[0] += 1
        if status in decided_statuses:
            counts[1] += 1
        if status == HandoffStatus.ACCEPTED:
            counts[2] += 1
            if stage in won_stages:
                counts[3] += 1
    # Arrivals per local hour, from the handoffs (those from before timelines count too).
    arrivals = (
        Handoff.objects.filter(_in_days("created_at", days))
        .annotate(hour=TruncHour("created_at", tzinfo=timezone.get_default_timezone()))
        .values("hour", "team_id")
        .annotate(n=Count("pk"))
        .values_list("hour", "team_id", "n")
        .order_by()
    )
    arrival_rows = [
        SpeedArrivalHour(day=hour.date(), hour=hour.hour, team_id=team, mqls=n)
        for hour, team, n in arrivals
    ]
    for model in (SpeedHopDay, SpeedRepHopDay, SpeedDelayDay, SpeedArrivalHour):
        model._default_manager.filter(day__in=days).delete()
    SpeedArrivalHour.objects.bulk_create(arrival_rows, batch_size=2000)
    _histograms_create(SpeedHopDay, "source", by_source)
    _histograms_create(SpeedRepHopDay, "rep_id", by_rep)
    SpeedDelayDay.objects.bulk_create(
        (
            SpeedDelayDay(
                day=day,
                team_id=team,
                delay=delay,
                mqls=mqls,
                decided=decided,
                accepted=accepted,
                won=won,
            )
            for (day, team, delay), (mqls, decided, accepted, won) in delays.items()
        ),
        batch_size=2000,
    )
    # The weeks of these days, summed again from their day rows (now the new ones).
    _roll_up_weeks(sorted({day - dt.timedelta(days=day.weekday()) for day in days}))


# The dimensions of each hop table besides the day: what a week's rows are summed by.
HOP_TABLES: tuple[tuple[type[models.Model], tuple[str, ...]], ...] = (
    (SpeedHopDay, ("team_id", "source", "hop", "bucket")),
    (SpeedRepHopDay, ("team_id", "rep_id", "hop", "bucket")),
)
WEEK = 7


def _roll_up_weeks(mondays: list[dt.date]) -> None:
    """Replace the week rows of these weeks by the sums of their day rows."""
    for model, dimensions in HOP_TABLES:
        manager = model._default_manager
        manager.filter(days=WEEK, day__in=mondays).delete()
        for monday in mondays:
            manager.bulk_create(
                (
                    model(day=monday, days=WEEK, **row)
                    for row in manager.filter(
                        days=1, day__gte=monday, day__lte=monday + dt.timedelta(days=WEEK - 1)
                    )
                    .values(*dimensions)
                    .annotate(n=Sum("n"), shortest=Min("shortest"), longest=Max("longest"))
                    .order_by()
                ),
                batch_size=2000,
            )


def hop_rows(model: type[models.Model], start: dt.date, end: dt.date, team_ids: Any) -> QuerySet:
    """The rows that sum to [start, end]: the whole ISO weeks inside it by their week
    rows, the days before and after them by their own."""
    first = start + dt.timedelta(days=(WEEK - start.weekday()) % WEEK)  # its first Monday
    whole_weeks = ((end - first).days + 1) // WEEK
    last = first + dt.timedelta(days=WEEK * (whole_weeks - 1))  # its last whole week's Monday
    if last < first:  # no whole week inside
        span = Q(days=1, day__gte=start, day__lte=end)
    else:
        span = (
            Q(days=1, day__gte=start, day__lt=first)
            | Q(days=WEEK, day__gte=first, day__lte=last)
            | Q(days=1, day__gt=last + dt.timedelta(days=WEEK - 1), day__lte=end)
        )
    rows = model._default_manager.filter(span)
    if team_ids is not None:
        rows = rows.filter(team_id__in=team_ids)
    return rows


def speed_days(model: type[models.Model], start: dt.date, end: dt.date, team_ids: Any) -> QuerySet:
    rows = model._default_manager.filter(day__gte=start, day__lte=end)
    if team_ids is not None:
        rows = rows.filter(team_id__in=team_ids)
    return rows


# --- reading a quantile from merged buckets ---------------------------------------------

# Counts as integers, not the numeric a sum of sums becomes: the window sums over them
# then add machine integers (a 4-week range merges some 12,000 buckets).
_MERGED = "CAST(SUM(n) AS INTEGER) AS n, MIN(shortest) AS shortest, MAX(longest) AS longest"
# The groupings as small integers (sorted and partitioned by, cheaper than text).
_KINDS = ("overall", "source", "team", "rep")


def _at(rank: str) -> str:
    """The value at `rank` when this bucket holds it (ranks below + 1 … upto), else NULL."""
    return (
        f"CASE WHEN {rank} <= below OR {rank} > upto THEN NULL"
        f" WHEN {rank} = below + 1 THEN shortest WHEN {rank} = upto THEN longest"
        " ELSE (shortest + longest) / 2 END"
    )


def _sql(rows: QuerySet) -> tuple[str, tuple[Any, ...]]:
    return rows.query.get_compiler(using=rows.db).as_sql()


def hop_quantiles(
    start: dt.date, end: dt.date, team_ids: Any
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[Any, dict[str, dict[str, Any]]]]]:
    """(overall {hop: figures}, {grouping: {key: {hop: figures}}}), figures being
    {n, median_seconds, p90_seconds}, over the rows that sum to [start, end].

    One query reads the buckets, merges them per grouping and picks each quantile's bucket
    in the database, so only the buckets that hold a quantile come back (two per hop and
    group at most): at 100,000 MQLs a 4-week range merges some 60,000 rows into 12,000
    buckets, and carrying those into Python and sorting them there took as long as the
    query. The rule is the nearest rank ⌈q·n⌉ read from the bucket that holds it: its
    shortest duration when the rank is its first, its longest when it is its last, else
    the middle of the two (window sums over the buckets in order give each bucket's last
    rank; PostgreSQL works ⌈q·n⌉ out in exact decimals, SQLite in floats as Python does,
    and the two agree for every n below 20 million). A group has figures for every hop,
    zero where it has none of that hop's durations."""
    by_source, source_params = _sql(
        hop_rows(SpeedHopDay, start, end, team_ids)
        .values_list("team_id", "source", "hop", "bucket", "n", "shortest", "longest")
        .order_by()
    )
    by_rep, rep_params = _sql(
        hop_rows(SpeedRepHopDay, start, end, team_ids)
        .values_list("rep_id", "hop", "bucket", "n", "shortest", "longest")
        .order_by()
    )
    # Only the two compiled querysets (their values as parameters) go into the text.
    sql = f"""
        WITH cells AS (
            SELECT team_id, source, hop, bucket, {_MERGED}
            FROM ({by_source}) AS r GROUP BY team_id, source, hop, bucket
        ), merged AS (
            SELECT 0 AS kind, CAST(NULL AS BIGINT) AS id, '' AS source, hop, bucket,
                {_MERGED}
            FROM cells GROUP BY hop, bucket
            UNION ALL
            SELECT 1, CAST(NULL AS BIGINT), source, hop, bucket, {_MERGED}
            FROM cells GROUP BY source, hop, bucket
            UNION ALL
            SELECT 2, team_id, '', hop, bucket, {_MERGED}
            FROM cells GROUP BY team_id, hop, bucket
            UNION ALL
            SELECT 3, rep_id, '', hop, bucket, {_MERGED}
            FROM ({by_rep}) AS r GROUP BY rep_id, hop, bucket
        ), ranked AS (
            SELECT kind, id, source, hop, n, shortest, longest,
                SUM(n) OVER (PARTITION BY kind, id, source, hop ORDER BY bucket) AS upto,
                SUM(n) OVER (PARTITION BY kind, id, source, hop) AS total
            FROM merged
        ), ranks AS (
            SELECT *, upto - n AS below,
                CEILING(0.5 * total) AS median_rank, CEILING(0.9 * total) AS p90_rank
            FROM ranked
        )
        SELECT kind, id, source, hop, total,
            {_at("median_rank")} AS median_seconds, {_at("p90_rank")} AS p90_seconds
        FROM ranks
        WHERE (median_rank > below AND median_rank <= upto)
            OR (p90_rank > below AND p90_rank <= upto)
    """  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, (*source_params, *rep_params))
        found = cursor.fetchall()

    def empty() -> dict[str, dict[str, Any]]:
        return {hop: {"n": 0, "median_seconds": None, "p90_seconds": None} for hop in HOP_KEYS}

    overall = empty()
    groups: dict[str, dict[Any, dict[str, dict[str, Any]]]] = {"source": {}, "team": {}, "rep": {}}
    for kind_number, id_, source, hop, total, median, p90 in found:
        kind = _KINDS[kind_number]
        if hop not in overall:
            continue  # a hop no longer measured
        if kind == "overall":
            figures = overall[hop]
        else:
            figures = groups[kind].setdefault(source if kind == "source" else id_, empty())[hop]
        figures["n"] = int(total)
        # A bucket may hold one quantile and not the other: keep what another one gave.
        if median is not None:
            figures["median_seconds"] = float(median)
        if p90 is not None:
            figures["p90_seconds"] = float(p90)
    return overall, groups


def delay_counts(start: dt.date, end: dt.date, team_ids: Any) -> dict[str, dict[str, int]]:
    """{delay bucket: {mqls, decided, accepted, won}} over the days' rows (every bucket)."""
    counts = {
        key: {"mqls": 0, "decided": 0, "accepted": 0, "won": 0}
        for key in (*(key for key, _label, _bound in BUCKETS), NO_CONTACT)
    }
    for row in (
        speed_days(SpeedDelayDay, start, end, team_ids)
        .values("delay")
        .annotate(
            mqls=Sum("mqls"), decided=Sum("decided"), accepted=Sum("accepted"), won=Sum("won")
        )
        .order_by()
    ):
        counts[row["delay"]] = {key: row[key] for key in ("mqls", "decided", "accepted", "won")}
    return counts


def arrival_slots(
    start: dt.datetime, end: dt.datetime, team_ids: Any
) -> dict[tuple[int, int], int]:
    """{(weekday, hour): MQLs} over the local hours that begin in [start, end)."""
    tz = timezone.get_default_timezone()
    slots: dict[tuple[int, int], int] = defaultdict(int)
    rows = speed_days(
        SpeedArrivalHour, timezone.localdate(start, tz), timezone.localdate(end, tz), team_ids
    )
    for day, hour, n in (
        rows.values("day", "hour")
        .annotate(n=Sum("mqls"))
        .values_list("day", "hour", "n")
        .order_by()
    ):
        if start <= dt.datetime.combine(day, dt.time(hour), tzinfo=tz) < end:
            slots[(day.weekday(), hour)] += n
    return dict(slots)


def speed_days_present() -> set[dt.date]:
    """The days that have speed-to-lead rows (the nightly rebuild recomputes them too:
    MQLs since deleted leave rows behind until then)."""
    days: set[dt.date] = set()
    # The day rows only: a week's rows are summed again whenever one of its days is.
    for rows in (
        SpeedHopDay.objects.filter(days=1),
        SpeedDelayDay.objects.all(),
        SpeedArrivalHour.objects.all(),
    ):
        days |= set(rows.order_by().values_list("day", flat=True).distinct())
    return days
