"""Every KPI on a small cohort whose numbers are worked out by hand below, not by the
query under test. The clock is pinned at 2026-11-30 (Mon) 12:00 JST; the range is the two
weeks 11-16 … 11-29. 11-23 (Mon) is a holiday (勤労感謝の日).

    handoff  rep    MQL            source   first contact      verdict
    H1       alice  11-16 10:00    web      11-16 12:00 (2 h)  accept 11-17, won 11-20
    H2       alice  11-17 09:00    web*     11-18 15:00 (30 h) accept 11-19
    H3       bob    11-18 14:00    seminar  11-18 15:00 (1 h)  3 attempts, not reachable 11-20
    H4       bob    11-24 10:00    seminar  11-24 15:00 (5 h)  no budget 11-25   (MQL by hand)
    H5       alice  11-25 10:00    web*     —                  open
    H6       bob    11-29 20:00    web      —                  open
    H0       alice  11-10 10:00    web      —                  open   (before the range)

    * phone and job title missing (incomplete)

First contact is due 24 clock hours after the MQL; the verdict at 18:00 of the fifth
business day after the MQL's day.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import translation

from handoff import activities, verdicts
from handoff.models import RejectionReason
from leadflow import lifecycle
from leadflow.models import Stage
from sla.kpis import metrics
from sla.kpis.days import kpi_days_refresh_all
from sla.kpis.metrics import MetricsFilter
from sla.models import MqlTarget, SlaTimer
from sla.services import timers_sweep
from tests.sla.conftest import at, mql

NOW = at(11, 30, 12)
RANGE = MetricsFilter(start=dt.date(2026, 11, 16), end=dt.date(2026, 11, 29))
H = dt.timedelta(hours=1)


def _call(handoff, rep, when, outcome="reached"):
    activities.activity_log(handoff=handoff, actor=rep, kind="call", outcome=outcome, at=when)


@pytest.fixture
def cohort(kanto, time_machine):
    time_machine.move_to(NOW, tick=False)
    _team, (alice, bob), manager = kanto
    h0 = mql(alice, at(11, 10, 10))
    h1 = mql(alice, at(11, 16, 10))
    _call(h1, alice, at(11, 16, 12))
    verdicts.handoff_accept(
        handoff=h1, actor=alice, bant={"budget": True, "need": True}, at=at(11, 17, 10)
    )
    lifecycle.lead_mark_won(lead=h1.lead, actor=alice, at=at(11, 20, 10))
    h2 = mql(alice, at(11, 17, 9), complete=False)
    _call(h2, alice, at(11, 18, 15))
    verdicts.handoff_accept(
        handoff=h2, actor=alice, bant={"budget": True, "need": True}, at=at(11, 19, 10)
    )
    h3 = mql(bob, at(11, 18, 14), source="seminar")
    for when in (at(11, 18, 15), at(11, 19, 10), at(11, 20, 10)):
        _call(h3, bob, when, outcome="no_answer")
    verdicts.handoff_reject(
        handoff=h3,
        actor=bob,
        reason=RejectionReason.objects.get(code="not_reachable"),
        comment="3回架電、不通",
        at=at(11, 20, 11),
    )
    h4 = mql(bob, at(11, 24, 10), source="seminar", actor=manager)
    _call(h4, bob, at(11, 24, 15))
    verdicts.handoff_reject(
        handoff=h4,
        actor=bob,
        reason=RejectionReason.objects.get(code="no_budget"),
        comment="来期予算",
        at=at(11, 25, 10),
    )
    h5 = mql(alice, at(11, 25, 10), complete=False)
    h6 = mql(bob, at(11, 29, 20))
    MqlTarget.objects.create(month=dt.date(2026, 11, 1), target=5)
    kpi_days_refresh_all(now=NOW)  # what beat does every minute
    return {"h0": h0, "h1": h1, "h2": h2, "h3": h3, "h4": h4, "h5": h5, "h6": h6}


def test_summary(cohort):
    data = metrics.summary(RANGE)

    assert (data["mqls"], data["sqls"], data["rejected"], data["open"], data["won"]) == (
        6,
        2,
        2,
        2,
        1,
    )
    assert data["mql_to_sql_percent"] == 33.3  # 2 / 6
    assert data["sql_to_won_percent"] == 50.0  # 1 / 2
    assert data["avg_first_contact_hours"] == 9.5  # (2 + 30 + 1 + 5) / 4
    assert data["median_first_contact_hours"] == 3.5  # (2 + 5) / 2 of 1, 2, 5, 30
    # H1, H3, H4 kept every deadline; H2 (late call) and H5 (no call) did not; H6 runs.
    assert (data["sla_known"], data["sla_compliant"], data["sla_compliance_percent"]) == (
        5,
        3,
        60.0,
    )
    assert data["compliance"]["first_contact"] == {
        "known": 5,  # H6's is not due yet
        "on_time": 3,  # H1, H3, H4
        "late": 2,  # H2 met late, H5 due and not met
        "running": 1,
        "percent": 60.0,
    }
    assert data["compliance"]["verdict"] == {
        "known": 4,
        "on_time": 4,
        "late": 0,
        "running": 2,
        "percent": 100.0,
    }
    assert data["compliance"]["follow_ups"]["percent"] == 100.0  # H3: 3 attempts
    assert data["compliance"]["rejection_reason"]["percent"] == 100.0


def test_kpis_carry_the_article_bands(cohort):
    kpis = {k.key: k for k in metrics.kpis(metrics.summary(RANGE))}

    assert (kpis["mql_to_sql"].value, kpis["mql_to_sql"].band, kpis["mql_to_sql"].status) == (
        33.3,
        "20–30 %",
        "above",  # above a conversion band is good (at most: the MQL bar may be strict)
    )
    assert (kpis["avg_first_contact"].value, kpis["avg_first_contact"].status) == (9.5, "in")
    assert (kpis["sla_compliance"].band, kpis["sla_compliance"].status) == ("≥ 90 %", "out")
    assert (kpis["sql_to_won"].band, kpis["sql_to_won"].status) == ("15–25 %", "above")


def test_each_kpi_carries_the_counts_behind_it(cohort):
    kpis = {k.key: k for k in metrics.kpis(metrics.summary(RANGE))}

    assert {key: (k.numerator, k.denominator) for key, k in kpis.items()} == {
        "mqls": (None, None),
        "mql_to_sql": (2, 6),  # SQLs of MQLs
        "avg_first_contact": (None, 4),  # over the contacted MQLs
        "median_first_contact": (None, 4),
        "sla_compliance": (3, 5),  # MQLs that missed no deadline, of those with an outcome
        "sql_to_won": (1, 2),
    }
    assert all(k.definition for k in kpis.values())


@pytest.mark.parametrize(
    ("value", "band", "status"),
    [
        # A conversion band (MQL → SQL 20–30 %): below is bad, above is good news.
        (37.5, {"low": 20.0, "high": 30.0, "above": "above"}, "above"),
        (30.0, {"low": 20.0, "high": 30.0, "above": "above"}, "in"),
        (20.0, {"low": 20.0, "high": 30.0, "above": "above"}, "in"),
        (19.9, {"low": 20.0, "high": 30.0, "above": "above"}, "out"),
        # A time target (≤ 24 h): above is bad.
        (24.5, {"high": 24.0}, "out"),
        (3.0, {"high": 24.0}, "in"),
        # A compliance target (≥ 90 %): below is bad, 100 % is in.
        (89.9, {"low": 90.0}, "out"),
        (100.0, {"low": 90.0}, "in"),
        (None, {"low": 90.0}, "none"),
    ],
)
def test_a_band_has_a_direction(value, band, status):
    assert metrics.band_status(value, **band) == status


def test_statuses_read_as_words_in_the_ui_language():
    with translation.override("ja"):
        assert [
            metrics.status_label("in"),
            metrics.status_label("out"),
            metrics.status_label("above"),
            metrics.status_label("none", has_band=False),
            metrics.status_label("none"),
        ] == ["目安内", "目安外", "目安超え（良好）", "目安なし", "データなし"]


def test_weekly_trend(cohort):
    rows = metrics.weekly(RANGE)

    assert rows == [
        {
            "week": dt.date(2026, 11, 16),
            "mqls": 3,
            "sqls": 2,
            "won": 1,
            "mql_to_sql_percent": 66.7,
            "avg_first_contact_hours": 11.0,  # (2 + 30 + 1) / 3
            "first_contact_sla_percent": 66.7,  # H1, H3 of H1–H3
            "verdict_sla_percent": 100.0,
        },
        {
            "week": dt.date(2026, 11, 23),
            "mqls": 3,
            "sqls": 0,
            "won": 0,
            "mql_to_sql_percent": 0.0,
            "avg_first_contact_hours": 5.0,
            "first_contact_sla_percent": 50.0,  # H4 yes, H5 no, H6 not due
            "verdict_sla_percent": 100.0,  # H4 only
        },
    ]


def test_per_rep(cohort):
    rows = {row["rep"]: row for row in metrics.per_rep(RANGE)}

    alice, bob = rows["kanto-rep1"], rows["kanto-rep2"]
    assert (alice["handoffs"], alice["sqls"], alice["rejected"], alice["open"]) == (3, 2, 0, 1)
    assert alice["mql_to_sql_percent"] == 66.7
    assert alice["avg_first_contact_hours"] == 16.0  # (2 + 30) / 2
    assert alice["first_contact_sla_percent"] == 33.3  # H1 of H1, H2, H5
    assert alice["verdict_sla_percent"] == 100.0
    assert (alice["breaches"], alice["inherited"]) == (2, 0)
    assert (bob["handoffs"], bob["sqls"], bob["rejected"], bob["open"]) == (3, 0, 2, 1)
    assert bob["avg_first_contact_hours"] == 3.0  # (1 + 5) / 2
    assert (bob["first_contact_sla_percent"], bob["verdict_sla_percent"]) == (100.0, 100.0)
    assert bob["breaches"] == 0


def test_per_source(cohort):
    rows = {row["source"]: row for row in metrics.per_source(RANGE)}

    assert rows["web"] == {
        "source": "web",
        "mqls": 4,
        "sqls": 2,
        "won": 1,
        "mql_to_sql_percent": 50.0,
        "sql_to_won_percent": 50.0,
        "avg_first_contact_hours": 16.0,
        "first_contact_sla_percent": 33.3,  # H1 of H1, H2, H5 (H6 not due)
    }
    assert rows["seminar"] == {
        "source": "seminar",
        "mqls": 2,
        "sqls": 0,
        "won": 0,
        "mql_to_sql_percent": 0.0,
        "sql_to_won_percent": None,
        "avg_first_contact_hours": 3.0,
        "first_contact_sla_percent": 100.0,
    }


def test_rejection_reasons(cohort):
    assert [
        (r["code"], r["reason"], r["count"], r["percent"]) for r in metrics.rejection_reasons(RANGE)
    ] == [
        ("not_reachable", "Not reachable", 1, 50.0),
        ("no_budget", "No budget", 1, 50.0),
    ]


def test_overdue_is_now_whatever_the_range(cohort):
    rows = metrics.overdue(RANGE, now=NOW)

    assert [(t.handoff_id, t.kind, t.due_at) for t in rows] == [
        (cohort["h0"].pk, "first_contact", at(11, 11, 10)),
        (cohort["h0"].pk, "verdict", at(11, 17, 18)),  # 5th business day after 11-10
        (cohort["h5"].pk, "first_contact", at(11, 26, 10)),
    ]


def test_marketing_side(cohort):
    data = metrics.marketing(RANGE)

    assert data["mqls"] == 6
    assert (data["by_policy"], data["quality_percent"]) == (5, 83.3)  # H4 was moved by hand
    assert (data["complete"], data["completeness_percent"]) == (4, 66.7)  # H2, H5 lack phone
    assert data["completeness_status"] == "out"
    assert data["months"] == [
        {
            "month": dt.date(2026, 11, 1),
            "mqls": 6,
            "target": 5,
            "percent_of_target": 120.0,
            "status": "in",
        }
    ]


def test_a_team_filter_and_an_empty_range(cohort, kanto):
    team = kanto[0]
    assert (
        metrics.summary(
            MetricsFilter(start=RANGE.start, end=RANGE.end, team_ids=frozenset({team.pk}))
        )["mqls"]
        == 6
    )
    empty = metrics.summary(
        MetricsFilter(start=RANGE.start, end=RANGE.end, team_ids=frozenset({team.pk + 1}))
    )
    assert (empty["mqls"], empty["mql_to_sql_percent"], empty["median_first_contact_hours"]) == (
        0,
        None,
        None,
    )


def test_the_sweep_changes_no_figure(cohort):
    before = metrics.summary(RANGE)
    result = timers_sweep(now=NOW)
    kpi_days_refresh_all(now=NOW)

    assert len(result.breached) == 3  # H0 ×2, H5
    assert SlaTimer.objects.filter(status="breached").count() == 4  # + H2's, met late
    assert metrics.summary(RANGE) == before


def test_the_won_lead_must_be_won_after_the_verdict(cohort):
    # Sanity of the fixture itself: H1's lead is a customer, H2's an SQL.
    cohort["h1"].lead.refresh_from_db()
    cohort["h2"].lead.refresh_from_db()
    assert (cohort["h1"].lead.stage, cohort["h2"].lead.stage) == (Stage.CUSTOMER, Stage.SQL)
