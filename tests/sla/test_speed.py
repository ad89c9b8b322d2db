"""Speed-to-lead figures on hand-built timelines: every expected number is worked out by
hand in the comments, not by the code under test."""

from __future__ import annotations

import datetime as dt
import math
import random

import pytest
import time_machine

from handoff.models import Handoff, HandoffStatus, HandoffTimeline
from leadflow.models import Lead, Stage
from leadflow.roles import MARKETING
from sla.kpis import speed_days, speed_metrics
from sla.kpis.days import kpi_days_rebuild, kpi_days_refresh_all
from sla.kpis.metrics import MetricsFilter
from sla.models import SlaTimer, SpeedHopDay, SpeedRepHopDay, TimerKind
from sla.selectors import calendar_for
from tests.factories import UserFactory
from tests.handoff.helpers import make_mql, make_team, set_profile

pytestmark = pytest.mark.django_db

JST = dt.timezone(dt.timedelta(hours=9))
NOW = dt.datetime(2026, 11, 10, 12, 0, tzinfo=JST)
DAY = MetricsFilter(start=dt.date(2026, 11, 10), end=dt.date(2026, 11, 10))


def seconds(n: float) -> dt.timedelta:
    return dt.timedelta(seconds=n)


def with_timeline(mql_at: dt.datetime, *, rep=None, source="zapier", **offsets) -> Handoff:
    """A handoff whose timeline is exactly `mql_at` + the given offsets (in seconds)."""
    handoff = make_mql()
    Handoff.objects.filter(pk=handoff.pk).update(created_at=mql_at, assigned_to=rep)
    fields = {
        name: (mql_at + seconds(value) if value is not None else None)
        for name, value in offsets.items()
    }
    HandoffTimeline.objects.filter(handoff=handoff).update(
        mql_at=mql_at,
        source=source,
        assigned_at=fields.pop("assigned_at", None),
        **fields,
    )
    return handoff


def recompute() -> None:
    """What beat does within a minute: the figures read the per-day rows (sla.kpis.speed_days),
    and `with_timeline` writes past the services that mark the days."""
    kpi_days_rebuild()
    kpi_days_refresh_all()


# --- quantiles and intervals ------------------------------------------------------------


def test_quantiles_are_nearest_rank():
    # ranks ⌈0.5·4⌉ = 2 and ⌈0.9·4⌉ = 4
    assert speed_metrics.quantile([10.0, 20.0, 30.0, 40.0], 0.5) == 20.0
    assert speed_metrics.quantile([10.0, 20.0, 30.0, 40.0], 0.9) == 40.0
    assert speed_metrics.quantile([7.0], 0.9) == 7.0


def test_wilson_intervals_worked_by_hand():
    # 10 of 20, z = 1.96: centre (0.5 + 0.09604) / 1.19208 = 0.5,
    # half 1.96·√(0.0125 + 0.0024010) / 1.19208 = 0.20071.
    low, high = speed_metrics.wilson(10, 20)
    assert (round(low, 4), round(high, 4)) == (0.2993, 0.7007)
    # 0 of 5: centre = half = 0.38416 / 1.76832 = 0.21724 → [0, 0.4345].
    low, high = speed_metrics.wilson(0, 5)
    assert (round(low, 4), round(high, 4)) == (0.0, 0.4345)
    # 1 of 1: centre 2.9208 / 4.8416 = 0.60327, half 1.9208 / 4.8416 = 0.39673.
    low, high = speed_metrics.wilson(1, 1)
    assert (round(low, 4), round(high, 4)) == (0.2065, 1.0)
    assert speed_metrics.wilson(0, 0) is None


# --- where the minutes go ---------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_hop_medians_and_p90_overall_and_per_group():
    team, (rep1, rep2), _manager = make_team("Kanto", reps=2, default=True)
    t = NOW - dt.timedelta(hours=2)
    with_timeline(t, rep=rep1, assigned_at=60, opened_at=660, first_contact_at=720)
    with_timeline(t, rep=rep1, assigned_at=120, opened_at=420)
    with_timeline(t, rep=rep2, source="mautic", assigned_at=600)
    # Outside the day: counted nowhere.
    with_timeline(NOW - dt.timedelta(days=2), rep=rep2, assigned_at=9999)

    recompute()
    figures = speed_metrics.hop_figures(DAY)

    overall = figures["overall"]
    # routing [60, 120, 600]: median rank 2 → 120, p90 rank 3 → 600
    assert overall["routing"] == {"n": 3, "median_seconds": 120.0, "p90_seconds": 600.0}
    # pickup [300, 600]: median rank 1 → 300, p90 rank 2 → 600
    assert overall["pickup"] == {"n": 2, "median_seconds": 300.0, "p90_seconds": 600.0}
    assert overall["contact"] == {"n": 1, "median_seconds": 60.0, "p90_seconds": 60.0}
    assert overall["ma_sync"] == {"n": 0, "median_seconds": None, "p90_seconds": None}
    assert figures["slowest"] == "pickup"
    by_source = figures["groups"]["source"]
    assert by_source["zapier"]["routing"] == {"n": 2, "median_seconds": 60.0, "p90_seconds": 120.0}
    assert by_source["mautic"]["routing"] == {"n": 1, "median_seconds": 600.0, "p90_seconds": 600.0}
    by_rep = figures["groups"]["rep"]
    assert by_rep[rep1.pk]["pickup"] == {"n": 2, "median_seconds": 300.0, "p90_seconds": 600.0}
    assert by_rep[rep2.pk]["pickup"]["n"] == 0
    assert list(figures["groups"]["team"]) == [team.pk]


@time_machine.travel(NOW, tick=False)
def test_the_drill_down_lists_the_handoffs_behind_a_hop_slowest_first():
    _team, (rep,), _manager = make_team("Kanto", reps=1, default=True)
    t = NOW - dt.timedelta(hours=2)
    fast = with_timeline(t, rep=rep, assigned_at=60)
    slow = with_timeline(t, rep=rep, assigned_at=600)
    with_timeline(t, rep=rep)  # never assigned: not behind the routing hop

    rows = speed_metrics.hop_handoffs(DAY, "routing")

    assert [(row.handoff_id, row.duration) for row in rows] == [
        (slow.pk, seconds(600)),
        (fast.pk, seconds(60)),
    ]


# --- what slowness costs ------------------------------------------------------------------


def _decide(handoff: Handoff, status: str, *, won: bool = False) -> None:
    Handoff.objects.filter(pk=handoff.pk).update(status=status)
    if won:
        Lead.objects.filter(pk=handoff.lead_id).update(stage=Stage.CUSTOMER)


@time_machine.travel(NOW, tick=False)
def test_delay_buckets_count_mqls_and_rate_sql_and_won_with_wilson_intervals():
    _team, (rep,), _manager = make_team("Kanto", reps=1, default=True)
    t = NOW - dt.timedelta(hours=2)
    minute = 60
    a = with_timeline(t, rep=rep, first_contact_at=3 * minute)  # within 5 minutes
    b = with_timeline(t, rep=rep, first_contact_at=30 * minute)  # within 1 hour
    c = with_timeline(t, rep=rep, first_contact_at=120 * minute)  # within 24 hours
    with_timeline(t, rep=rep, first_contact_at=30 * 60 * minute)  # later, still open
    e = with_timeline(t, rep=rep)  # no contact logged
    _decide(a, HandoffStatus.ACCEPTED, won=True)
    _decide(b, HandoffStatus.REJECTED)
    _decide(c, HandoffStatus.ACCEPTED)
    _decide(e, HandoffStatus.REJECTED)

    recompute()
    result = speed_metrics.delay_outcomes(DAY)

    rows = {bucket["key"]: bucket for bucket in result["buckets"]}
    assert [bucket["key"] for bucket in result["buckets"]] == ["5m", "1h", "24h", "later", "none"]
    # 1 of 1 accepted: 100 % [20.7, 100.0] (see the Wilson test); 1 of 1 won likewise.
    assert rows["5m"] == {
        "key": "5m",
        "label": "within 5 minutes",
        "mqls": 1,
        "share_of_contacted": 25.0,  # 1 of the 4 contacted
        "decided": 1,
        "sql": 1,
        "won": 1,
        "mql_to_sql": {"percent": 100.0, "low": 20.7, "high": 100.0, "n": 1},
        "sql_to_won": {"percent": 100.0, "low": 20.7, "high": 100.0, "n": 1},
        "enough_data": False,
    }
    # 0 of 1: 0 % [0.0, 79.3] (p = 0, n = 1: centre = half = 1.9208 / 4.8416 = 0.39673).
    assert rows["1h"]["mql_to_sql"] == {"percent": 0.0, "low": 0.0, "high": 79.3, "n": 1}
    assert rows["1h"]["sql_to_won"] is None  # no SQL to win
    assert rows["24h"]["sql_to_won"] == {"percent": 0.0, "low": 0.0, "high": 79.3, "n": 1}
    assert (rows["later"]["mqls"], rows["later"]["decided"], rows["later"]["mql_to_sql"]) == (
        1,
        0,
        None,
    )
    assert (rows["none"]["mqls"], rows["none"]["share_of_contacted"]) == (1, None)
    assert result["decided"] == 4
    assert result["verdict"].startswith("Too few MQLs with a verdict to compare delays")


@time_machine.travel(NOW, tick=False)
def test_the_verdict_says_when_intervals_do_not_overlap():
    _team, (rep,), _manager = make_team("Kanto", reps=1, default=True)
    t = NOW - dt.timedelta(hours=2)
    for number in range(20):  # within 5 minutes: 18 of 20 accepted
        handoff = with_timeline(t, rep=rep, first_contact_at=60)
        _decide(handoff, HandoffStatus.ACCEPTED if number < 18 else HandoffStatus.REJECTED)
    for number in range(20):  # after 24 hours: 2 of 20 accepted
        handoff = with_timeline(t, rep=rep, first_contact_at=2 * 86400)
        _decide(handoff, HandoffStatus.ACCEPTED if number < 2 else HandoffStatus.REJECTED)

    recompute()
    result = speed_metrics.delay_outcomes(DAY)

    # 18/20: p = 0.9, centre (0.9 + 0.09604)/1.19208 = 0.83555,
    #   half 1.96·√(0.0045 + 0.0024010)/1.19208 = 0.13658 → [69.9, 97.2];
    # 2/20 is its mirror: [2.8, 30.1]. They do not overlap.
    assert result["verdict"] == (
        "MQLs first contacted within 5 minutes became SQL at 90.0 % (95 % interval 69.9–97.2 %), "
        "those contacted after 24 hours at 10.0 % (2.8–30.1 %)."
    )


# --- deadlines about to break -----------------------------------------------------------

FRIDAY = dt.datetime(2027, 1, 8, 15, 0, tzinfo=JST)  # Monday 2027-01-11 is 成人の日


def _timer(handoff: Handoff, kind: str, due: dt.datetime, **fields) -> SlaTimer:
    return SlaTimer.objects.create(
        handoff=handoff, kind=kind, started_at=FRIDAY - dt.timedelta(hours=1), due_at=due, **fields
    )


@time_machine.travel(FRIDAY, tick=False)
def test_the_forecast_on_a_week_with_a_holiday():
    _team, (rep1, rep2), _manager = make_team("Kanto", reps=2, default=True)
    # History: 2 MQLs at Friday 16:xx on each of the 4 Fridays before (mean 2.0 for that
    # hour), 1 at Tuesday 10:00 on each of the 4 Tuesdays before (mean 1.0).
    for weeks_ago in range(1, 5):
        friday = FRIDAY - dt.timedelta(weeks=weeks_ago)
        for minute in (10, 40):
            old = make_mql()
            Handoff.objects.filter(pk=old.pk).update(
                created_at=friday.replace(hour=16, minute=minute)
            )
        old = make_mql()
        tuesday = friday + dt.timedelta(days=4)  # the Tuesday after it
        Handoff.objects.filter(pk=old.pk).update(created_at=tuesday.replace(hour=10))
    SlaTimer.objects.all().delete()  # the history's own timers are not the point here

    due_friday = make_mql()
    Handoff.objects.filter(pk=due_friday.pk).update(assigned_to=rep1)
    queued = make_mql()
    Handoff.objects.filter(pk=queued.pk).update(assigned_to=None)
    on_holiday = make_mql()
    away = make_mql()
    Handoff.objects.filter(pk=away.pk).update(assigned_to=rep2)
    met = make_mql()
    SlaTimer.objects.all().delete()
    set_profile(rep2, away=True, away_until=dt.datetime(2027, 1, 13, 9, 0, tzinfo=JST))
    t1 = _timer(due_friday, TimerKind.FIRST_CONTACT, FRIDAY.replace(hour=17))
    t2 = _timer(queued, TimerKind.FIRST_CONTACT, dt.datetime(2027, 1, 9, 10, 0, tzinfo=JST))
    _timer(on_holiday, TimerKind.VERDICT, dt.datetime(2027, 1, 11, 12, 0, tzinfo=JST))
    t4 = _timer(away, TimerKind.VERDICT, dt.datetime(2027, 1, 12, 12, 0, tzinfo=JST))
    _timer(met, TimerKind.VERDICT, dt.datetime(2027, 1, 12, 10, 0, tzinfo=JST), met_at=FRIDAY)
    f = MetricsFilter(start=dt.date(2027, 1, 8), end=dt.date(2027, 1, 8))

    recompute()
    result = speed_metrics.forecast(f, calendar=calendar_for())

    next_24h, next_day = result["windows"]
    assert (next_24h["start"], next_24h["end"]) == (FRIDAY, FRIDAY + dt.timedelta(hours=24))
    assert [(i["timer"].pk, i["why"]) for i in next_24h["at_risk"]] == [
        (t1.pk, "untouched"),
        (t2.pk, "queued"),
    ]
    # Friday 15:00 → Saturday 15:00 holds the whole Friday 16:00 hour: 2.0 expected.
    assert next_24h["expected_mqls"] == 2.0
    # Saturday, Sunday and the holiday are skipped: Tuesday 9:00–18:00.
    assert (next_day["start"], next_day["end"]) == (
        dt.datetime(2027, 1, 12, 9, 0, tzinfo=JST),
        dt.datetime(2027, 1, 12, 18, 0, tzinfo=JST),
    )
    assert [(i["timer"].pk, i["why"]) for i in next_day["at_risk"]] == [(t4.pk, "rep_away")]
    assert next_day["expected_mqls"] == 1.0


# --- pages and API ------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_the_speed_page_and_its_drill_down(client):
    _team, (rep,), manager = make_team("Kanto", reps=1, default=True)
    t = NOW - dt.timedelta(hours=2)
    slow = with_timeline(t, rep=rep, assigned_at=60, opened_at=3660)
    client.force_login(manager)

    recompute()
    page = client.get("/dashboard/speed/?from=2026-11-10&to=2026-11-10")
    drill = client.get("/dashboard/speed/?from=2026-11-10&to=2026-11-10&hop=pickup")

    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-hop="pickup" class="slowest"' in html
    assert "each is within ±5 % of the exact value" in html
    assert "Figures as of 2026/11/10 12:00" in html  # the recomputation's clock (pinned)
    assert drill.status_code == 200
    assert f'data-handoff="{slow.pk}"' in drill.content.decode()
    assert client.get("/dashboard/speed/?hop=bogus").status_code == 404
    assert client.get("/dashboard/speed/?from=2026-13-40").status_code == 400


@time_machine.travel(NOW, tick=False)
def test_the_speed_api_gives_marketing_no_per_rep_figures_and_no_forecast(client):
    _team, (rep,), manager = make_team("Kanto", reps=1, default=True)
    with_timeline(NOW - dt.timedelta(hours=1), rep=rep, assigned_at=60)

    recompute()
    client.force_login(manager)
    sales = client.get("/api/v1/metrics/speed/?from=2026-11-10&to=2026-11-10").json()
    client.force_login(UserFactory(username="mkt", roles=[MARKETING]))
    marketing = client.get("/api/v1/metrics/speed/?from=2026-11-10&to=2026-11-10").json()

    hops = sales["results"]["hops"]
    assert hops["overall"]["routing"] == {"n": 1, "median_seconds": 60.0, "p90_seconds": 60.0}
    assert set(hops["groups"]) == {"source", "team", "rep"}
    assert [w["window"] for w in sales["results"]["forecast"]] == ["24h", "next_business_day"]
    assert sales["results"]["observational"] is True
    assert set(marketing["results"]["hops"]["groups"]) == {"source", "team"}
    assert "forecast" not in marketing["results"]


@time_machine.travel(NOW, tick=False)
def test_the_handoff_page_timeline_shows_clock_and_business_time(client):
    _team, (rep,), manager = make_team("Kanto", reps=1, default=True)
    # Tuesday 10:00 → assigned 10:01 → opened 19:01 (after closing at 18:00: 7 h 59 min
    # of business time in the 9 h of clock time).
    mql = dt.datetime(2026, 11, 10, 10, 0, tzinfo=JST)
    handoff = with_timeline(mql, rep=rep, assigned_at=60, opened_at=60 + 9 * 3600)
    client.force_login(manager)

    html = client.get(f"/inbox/handoffs/{handoff.pk}/speed/").content.decode()

    pickup = html.split('data-hop="pickup"')[1].split("</li>")[0]
    assert "9 h" in pickup
    assert "7 h 59 min business time" in pickup
    other = UserFactory(username="stranger", roles=["Sales rep"])
    client.force_login(other)
    assert client.get(f"/inbox/handoffs/{handoff.pk}/speed/").status_code == 404


@time_machine.travel(NOW, tick=False)
def test_a_quantile_inside_a_bucket_is_its_middle_and_within_five_percent():
    _team, (rep,), _manager = make_team("Kanto", reps=1, default=True)
    t = NOW - dt.timedelta(hours=2)
    # 1.1^120 = 92,709 ms and 1.1^121 = 101,980 ms: 100 s, 100.2 s and 101 s share bucket
    # 121; 30 s is in bucket 109 (1.1^108 = 29,540 ms, 1.1^109 = 32,494 ms).
    quick = with_timeline(t, rep=rep, assigned_at=30)
    for seconds_to_assign in (100, 100.2, 101):
        with_timeline(t, rep=rep, assigned_at=seconds_to_assign)

    recompute()
    routing = speed_metrics.hop_figures(DAY)["overall"]["routing"]

    # Median rank ⌈0.5·4⌉ = 2: the first of bucket 121, its shortest → exactly 100 s.
    # p90 rank ⌈0.9·4⌉ = 4: the last of it, its longest → exactly 101 s.
    assert routing == {"n": 4, "median_seconds": 100.0, "p90_seconds": 101.0}

    Handoff.objects.filter(pk=quick.pk).delete()
    recompute()
    routing = speed_metrics.hop_figures(DAY)["overall"]["routing"]

    # [100, 100.2, 101]: median rank 2 is inside bucket 121 (ranks 1–3), read as its
    # middle (100 + 101) / 2 = 100.5 against the exact 100.2 (0.3 % off, under 5 %);
    # p90 rank ⌈2.7⌉ = 3 is its last: exactly 101.
    assert routing == {"n": 3, "median_seconds": 100.5, "p90_seconds": 101.0}


@time_machine.travel(NOW, tick=False)
def test_a_range_holding_whole_weeks_reads_their_week_rows():
    _team, (rep,), _manager = make_team("Kanto", reps=1, default=True)
    # NOW is Tuesday 2026-11-10. Routed in 60 s on Sunday 11-01, 120 s and 180 s in the
    # week of Monday 11-02, 240 s on Monday 11-09.
    for day, seconds_to_assign in ((1, 60), (3, 120), (8, 180), (9, 240)):
        with_timeline(
            dt.datetime(2026, 11, day, 10, 0, tzinfo=JST), rep=rep, assigned_at=seconds_to_assign
        )

    recompute()
    # Sunday 11-01 to Monday 11-09: the days 11-01 and 11-09 by their own rows, the week of
    # 11-02 by its week row (its two days summed at the recomputation).
    figures = speed_metrics.hop_figures(
        MetricsFilter(start=dt.date(2026, 11, 1), end=dt.date(2026, 11, 9))
    )
    week = SpeedHopDay.objects.get(days=7, hop="routing", bucket=speed_days.hop_bucket(120))

    assert (week.day, week.n, week.shortest, week.longest) == (
        dt.date(2026, 11, 2),
        1,
        120.0,
        120.0,
    )
    # Every week with MQLs has its rows, by its Monday (whether a range reads them or not).
    assert sorted(SpeedHopDay.objects.filter(days=7).values_list("day", "n")) == [
        (dt.date(2026, 10, 26), 1),
        (dt.date(2026, 11, 2), 1),
        (dt.date(2026, 11, 2), 1),
        (dt.date(2026, 11, 9), 1),
    ]
    # [60, 120, 180, 240]: median rank 2 → 120, p90 rank 4 → 240; n counts each MQL once.
    assert figures["overall"]["routing"] == {"n": 4, "median_seconds": 120.0, "p90_seconds": 240.0}
    by_rep = figures["groups"]["rep"][rep.pk]["routing"]
    assert by_rep == {"n": 4, "median_seconds": 120.0, "p90_seconds": 240.0}
    # The week alone, Monday to Sunday, and a part of it.
    whole = speed_metrics.hop_figures(
        MetricsFilter(start=dt.date(2026, 11, 2), end=dt.date(2026, 11, 8))
    )
    part = speed_metrics.hop_figures(
        MetricsFilter(start=dt.date(2026, 11, 2), end=dt.date(2026, 11, 7))
    )
    assert whole["overall"]["routing"] == {"n": 2, "median_seconds": 120.0, "p90_seconds": 180.0}
    assert part["overall"]["routing"] == {"n": 1, "median_seconds": 120.0, "p90_seconds": 120.0}


@time_machine.travel(NOW, tick=False)
def test_bucketed_quantiles_stay_within_the_stated_error_of_the_exact_ones():
    _team, (rep1, rep2), _manager = make_team("Kanto", reps=2, default=True)
    t = NOW - dt.timedelta(hours=3)
    # 60 routing times from 0.4 ms to about 9 hours, spread over two reps and sources.
    durations = [0.0004 * 1.29**number for number in range(60)]
    for number, value in enumerate(durations):
        rep, source = [(rep1, "a"), (rep2, "b"), (rep1, "b")][number % 3]
        with_timeline(t, rep=rep, source=source, assigned_at=value)

    recompute()
    figures = speed_metrics.hop_figures(DAY)

    def close(bucketed: float, exact: float) -> bool:  # within 5 %, or 0.5 ms below 1 ms
        return abs(bucketed - exact) <= max(exact * speed_metrics.ERROR_PERCENT / 100, 0.0005)

    exact = sorted(durations)
    routing = figures["overall"]["routing"]
    assert routing["n"] == 60
    assert close(routing["median_seconds"], speed_metrics.quantile(exact, 0.5))
    assert close(routing["p90_seconds"], speed_metrics.quantile(exact, 0.9))
    of_b = sorted(value for number, value in enumerate(durations) if number % 3 != 0)
    by_b = figures["groups"]["source"]["b"]["routing"]
    assert by_b["n"] == 40
    assert close(by_b["median_seconds"], speed_metrics.quantile(of_b, 0.5))
    assert close(by_b["p90_seconds"], speed_metrics.quantile(of_b, 0.9))
    assert figures["error_percent"] == 5.0


# The way the figures were read before the database picked the quantiles' buckets (every
# bucket merged here, in Python): the SQL must give exactly what this gives.
def _reference_figures(rows: list[tuple]) -> dict[str, dict[str, float | int | None]]:
    merged: dict[tuple[str, int], list] = {}
    for hop, bucket, n, shortest, longest in rows:
        mine = merged.setdefault((hop, bucket), [0, shortest, longest])
        mine[0] += n
        mine[1], mine[2] = min(mine[1], shortest), max(mine[2], longest)
    figures = {}
    for hop in speed_days.HOP_KEYS:
        ordered = sorted((b, v) for (h, b), v in merged.items() if h == hop)
        total = sum(n for _b, (n, _s, _l) in ordered)
        result: dict[str, float | int | None] = {"n": total}
        for key, q in (("median_seconds", 0.5), ("p90_seconds", 0.9)):
            result[key], rank, below = None, max(1, math.ceil(q * total)), 0
            for _bucket, (n, shortest, longest) in ordered if total else ():
                if rank <= below + n:
                    result[key] = (
                        float(shortest)
                        if rank == below + 1
                        else float(longest)
                        if rank == below + n
                        else (shortest + longest) / 2
                    )
                    break
                below += n
        figures[hop] = result
    return figures


@pytest.mark.parametrize("team_ids", [None, [1]])
def test_the_quantiles_picked_in_sql_are_those_of_every_bucket_merged(team_ids):
    # Random buckets over 10 days (Monday 11-02 to Wednesday 11-11) and their week rows,
    # two teams and the team queue (None), sources with none (""), reps and no rep (None):
    # the same bucket on many rows, so counts add and the shortest and longest merge.
    rng = random.Random(20)
    source_rows, rep_rows = [], []
    for _row in range(3000):
        day = dt.date(2026, 11, 2) + dt.timedelta(days=rng.randrange(10))
        team = rng.choice([1, 2, None])
        hop, bucket = rng.choice(speed_days.HOP_KEYS[:4]), rng.randrange(40, 60)
        shortest = 1.1 ** (bucket - 1) / 1000 * (1 + rng.random() / 20)
        longest = shortest * (1 + rng.random() / 20)
        n = rng.choice([1, 1, 2, 3, 10])
        common = {"day": day, "team_id": team, "hop": hop, "bucket": bucket, "n": n}
        common |= {"shortest": shortest, "longest": longest}
        source_rows.append(SpeedHopDay(source=rng.choice(["", "web", "csv"]), **common))
        rep_rows.append(SpeedRepHopDay(rep_id=rng.choice([7, 8, None]), **common))
    SpeedHopDay.objects.bulk_create(source_rows)
    SpeedRepHopDay.objects.bulk_create(rep_rows)
    speed_days._roll_up_weeks([dt.date(2026, 11, 2), dt.date(2026, 11, 9)])
    start, end = dt.date(2026, 11, 1), dt.date(2026, 11, 10)  # the week of 11-02 whole

    overall, groups = speed_days.hop_quantiles(start, end, team_ids)

    def of(rows, keep=lambda row: True):
        return _reference_figures(
            [
                (r.hop, r.bucket, r.n, r.shortest, r.longest)
                for r in rows
                if start <= r.day <= end and (team_ids is None or r.team_id in team_ids) and keep(r)
            ]
        )

    assert overall == of(source_rows)
    kept = [r for r in source_rows if team_ids is None or r.team_id in team_ids]
    assert groups["source"] == {
        s: of(source_rows, lambda r, s=s: r.source == s) for s in {r.source for r in kept}
    }
    assert groups["team"] == {
        t: of(source_rows, lambda r, t=t: r.team_id == t) for t in {r.team_id for r in kept}
    }
    kept_reps = [r for r in rep_rows if team_ids is None or r.team_id in team_ids]
    assert groups["rep"] == {
        p: of(rep_rows, lambda r, p=p: r.rep_id == p) for p in {r.rep_id for r in kept_reps}
    }
    # The week row stood for its days: the range read it, not them.
    assert SpeedHopDay.objects.filter(days=7, day=dt.date(2026, 11, 2)).exists()
