"""The dashboard page, its CSV exports, the metrics API and who may see what, on the
hand-computed cohort of test_metrics (clock pinned at 2026-11-30 12:00 JST)."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from handoff.models import Assignment, Handoff
from leadflow.roles import MARKETING
from sla.kpis.days import kpi_days_refresh_all
from tests.factories import UserFactory
from tests.sla.conftest import mql
from tests.sla.test_metrics import NOW, cohort  # noqa: F401 - the fixture

RANGE = "from=2026-11-16&to=2026-11-29"


@pytest.fixture
def manager(kanto):
    return kanto[2]


@pytest.fixture
def marketer(db):
    return UserFactory(username="marketer", roles=[MARKETING])


def test_a_manager_sees_the_kpis_with_their_bands(client, cohort, manager):  # noqa: F811
    client.force_login(manager)

    response = client.get(f"/dashboard/?{RANGE}")

    assert response.status_code == 200
    kpis = {k.key: k for k in response.context["kpis"]}
    assert kpis["mql_to_sql"].value == 33.3
    assert kpis["avg_first_contact"].value == 9.5
    assert kpis["sla_compliance"].value == 60.0
    body = response.content.decode()
    assert 'data-kpi="mql_to_sql"' in body
    assert "20–30 %" in body and "15–25 %" in body and "≥ 90 %" in body
    assert "vendor/chartjs/chart.umd.min.js" in body
    assert [t.handoff_id for t in response.context["overdue"]] == [
        cohort["h0"].pk,
        cohort["h0"].pk,
        cohort["h5"].pk,
    ]
    assert "marketing" not in response.context  # marketing's side is marketing's


def test_the_page_costs_the_same_queries_whatever_the_data(
    client, kanto, manager, time_machine, django_assert_num_queries
):
    from tests.sla.conftest import at

    time_machine.move_to(NOW, tick=False)
    client.force_login(manager)
    alice, bob = kanto[1]
    mql(alice, at(11, 20, 10))
    kpi_days_refresh_all()
    client.get(f"/dashboard/?{RANGE}")  # warm the session and the content types

    # No MQL here has a first contact: the median is one query on either database. Two
    # are the claims panel's (its counts and its durations; no claims, so no names).
    with django_assert_num_queries(22) as small:
        assert client.get(f"/dashboard/?{RANGE}").status_code == 200
    for day in range(16, 29):
        mql(alice if day % 2 else bob, at(11, day, 11))
    mql(alice, at(11, 1, 10))  # overdue, outside the range
    kpi_days_refresh_all()
    with django_assert_num_queries(len(small.captured_queries)):
        assert client.get(f"/dashboard/?{RANGE}").status_code == 200


def test_a_rep_gets_403_and_a_stranger_the_login(client, kanto):
    rep = kanto[1][0]
    assert client.get("/dashboard/").status_code == 302
    assert client.get("/api/v1/metrics/summary/").status_code in (401, 403)
    client.force_login(rep)

    assert client.get("/dashboard/").status_code == 403
    assert client.get("/dashboard/export/weekly.csv").status_code == 403
    denied = client.get("/api/v1/metrics/summary/")
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "permission_denied"


def test_a_manager_sees_only_their_teams(client, cohort, manager):  # noqa: F811
    from tests.handoff.helpers import make_team

    other, (_osaka_rep,), _boss = make_team("Kansai", reps=1)
    client.force_login(manager)

    assert [t.pk for t in client.get("/dashboard/").context["teams"]] == [
        manager.managed_teams.get().pk
    ]
    refused = client.get(f"/api/v1/metrics/summary/?team={other.pk}")
    assert refused.status_code == 422
    assert refused.json() == {
        "error": {
            "code": "invalid_params",
            "message": "You do not see this team.",
            "fields": {"team": ["You do not see this team."]},
        }
    }
    assert client.get(f"/dashboard/?team={other.pk}").status_code == 400


def test_marketing_sees_its_side_and_not_the_reps(client, cohort, marketer):  # noqa: F811
    client.force_login(marketer)

    response = client.get(f"/dashboard/?{RANGE}")

    assert response.status_code == 200
    assert response.context["marketing"]["completeness_percent"] == 66.7
    assert "reps" not in response.context and "overdue" not in response.context
    body = response.content.decode()
    assert 'data-kpi="completeness"' in body
    assert (
        client.get(f"/api/v1/metrics/marketing/?{RANGE}").json()["results"]["quality_percent"]
        == 83.3
    )
    assert client.get("/api/v1/metrics/reps/").status_code == 403
    assert client.get("/dashboard/export/reps.csv").status_code == 403


@pytest.mark.parametrize(
    ("query", "status", "field", "message"),
    [
        # Malformed (what the schema calls invalid): 400.
        ("from=2026-13-01", 400, "from", "Enter a valid date."),
        ("to=0001-01-01", 400, "to", "Choose a day between 2000-01-01 and 2099-12-31."),
        ("to=9999-12-31", 400, "to", "Choose a day between 2000-01-01 and 2099-12-31."),
        (
            "from=0001-01-01&to=0001-01-02",
            400,
            "from",
            "Choose a day between 2000-01-01 and 2099-12-31.",
        ),
        ("to=2026-02-30", 400, "to", "Enter a valid date."),
        ("team=abc", 400, "team", "Enter a whole number."),
        ("to=", 400, "to", "Give a value, or leave the parameter out."),
        ("team=", 400, "team", "Give a value, or leave the parameter out."),
        # Well formed, refused by a rule (between two parameters, or the caller's teams):
        # 422.
        ("from=2026-11-30&to=2026-11-01", 422, "from", "The range starts after it ends."),
        ("from=2024-01-01&to=2026-11-01", 422, "from", "Choose at most 366 days."),
        ("team=999999", 422, "team", "You do not see this team."),
    ],
)
def test_bad_parameters_answer_in_the_error_shape(
    client, kanto, manager, query, status, field, message
):
    client.force_login(manager)

    response = client.get(f"/api/v1/metrics/weekly/?{query}")

    assert response.status_code == status
    assert response.json()["error"]["code"] == "invalid_params"
    assert response.json()["error"]["fields"][field] == [message]


@pytest.mark.parametrize("query", ["to=0001-01-01", "to=9999-12-31", "from=9999-12-31"])
@pytest.mark.parametrize(
    "url", ["/dashboard/", "/dashboard/export/summary.csv", "/dashboard/export/marketing.csv"]
)
def test_days_at_the_ends_of_the_calendar_are_refused_not_a_500(client, kanto, manager, url, query):
    client.force_login(manager)

    response = client.get(f"{url}?{query}")

    assert response.status_code == 400


def test_the_api_gives_the_page_figures(client, cohort, manager):  # noqa: F811
    client.force_login(manager)

    summary = client.get(f"/api/v1/metrics/summary/?{RANGE}").json()
    weekly = client.get(f"/api/v1/metrics/weekly/?{RANGE}").json()
    reps = client.get(f"/api/v1/metrics/reps/?{RANGE}").json()
    sources = client.get(f"/api/v1/metrics/sources/?{RANGE}").json()
    rejections = client.get(f"/api/v1/metrics/rejections/?{RANGE}").json()
    overdue = client.get("/api/v1/metrics/overdue/").json()

    assert (summary["from"], summary["to"], summary["teams"]) == (
        "2026-11-16",
        "2026-11-29",
        [manager.managed_teams.get().pk],
    )
    results = summary["results"]
    assert (results["mqls"], results["sqls"], results["won"]) == (6, 2, 1)
    assert results["median_first_contact_hours"] == 3.5
    assert {o["key"]: o["percent"] for o in results["obligations"]} == {
        "first_contact": 60.0,
        "verdict": 100.0,
        "follow_ups": 100.0,
        "rejection_reason": 100.0,
    }
    assert results["kpis"][1] == {
        "key": "mql_to_sql",
        "label": "MQL → SQL",
        "value": 33.3,
        "unit": "%",
        "band": "20–30 %",
        "status": "above",  # above a conversion band is good news, not a red figure
        "definition": (
            "MQLs of the range accepted as SQL ÷ MQLs of the range. Open and rejected MQLs "
            "count in the denominator. Above the band is good news, below is not."
        ),
        "numerator": 2,
        "denominator": 6,
    }
    assert [w["week"] for w in weekly["results"]] == ["2026-11-16", "2026-11-23"]
    assert sorted((r["rep"], r["breaches"]) for r in reps["results"]) == [
        ("kanto-rep1", 2),
        ("kanto-rep2", 0),
    ]
    assert {s["source"]: s["mqls"] for s in sources["results"]} == {"web": 4, "seminar": 2}
    assert [r["code"] for r in rejections["results"]] == ["not_reachable", "no_budget"]
    assert [(o["handoff"], o["obligation"]) for o in overdue["results"]] == [
        (cohort["h0"].pk, "first_contact"),
        (cohort["h0"].pk, "verdict"),
        (cohort["h5"].pk, "first_contact"),
    ]


def test_every_table_exports_as_csv_with_a_bom(client, cohort, manager, marketer):  # noqa: F811
    client.force_login(manager)
    for table in ("summary", "weekly", "reps", "sources", "rejections", "overdue"):
        response = client.get(f"/dashboard/export/{table}.csv?{RANGE}")
        assert response.status_code == 200, table
        assert response["Content-Type"] == "text/csv; charset=utf-8"
        assert response.content.startswith(b"\xef\xbb\xbf")
        assert f"leadflow-{table}-20261116-20261129.csv" in response["Content-Disposition"]

    weekly = client.get(f"/dashboard/export/weekly.csv?{RANGE}").content.decode("utf-8-sig")
    assert list(csv.reader(io.StringIO(weekly))) == [
        [
            "Week of",
            "MQLs",
            "SQLs",
            "Won",
            "MQL → SQL (%)",
            "Average time to first contact (h)",
            "First contact in time (%)",
            "Verdict in time (%)",
        ],
        ["2026-11-16", "3", "2", "1", "66.7", "11.0", "66.7", "100.0"],
        ["2026-11-23", "3", "0", "0", "0.0", "5.0", "50.0", "100.0"],
    ]
    overdue = list(
        csv.reader(
            io.StringIO(client.get("/dashboard/export/overdue.csv").content.decode("utf-8-sig"))
        )
    )
    assert overdue[3][:5] == [
        cohort["h5"].lead.full_name,
        cohort["h5"].lead.company.name,
        "Kanto",
        "kanto-rep1",
        "First contact",
    ]
    assert client.get("/dashboard/export/nothing.csv").status_code == 404
    assert client.get("/dashboard/export/weekly.csv?from=x").status_code == 400

    client.force_login(marketer)
    marketing = client.get(f"/dashboard/export/marketing.csv?{RANGE}").content.decode("utf-8-sig")
    assert list(csv.reader(io.StringIO(marketing)))[1] == ["2026-11", "6", "5", "120.0"]


def test_csv_in_japanese_carries_the_japanese_labels(client, cohort, manager, settings):  # noqa: F811
    client.force_login(manager)
    client.cookies["django_language"] = "ja"

    body = client.get(f"/dashboard/export/rejections.csv?{RANGE}").content.decode("utf-8-sig")

    rows = list(csv.reader(io.StringIO(body)))
    assert rows[1][0] == "連絡がつかない"


def test_the_overdue_list_reassigns_through_the_handoff_service(client, cohort, manager):  # noqa: F811
    client.force_login(manager)
    h5 = cohort["h5"]
    bob = h5.team.members.get(username="kanto-rep2")
    page = client.get(f"/dashboard/?{RANGE}")
    assert f'action="/dashboard/handoffs/{h5.pk}/reassign/"' in page.content.decode()

    response = client.post(
        f"/dashboard/handoffs/{h5.pk}/reassign/", {"rep": bob.pk, "next": f"/dashboard/?{RANGE}"}
    )

    assert response.status_code == 302
    assert response["Location"] == f"/dashboard/?{RANGE}"
    assert Handoff.objects.get(pk=h5.pk).assigned_to == bob
    last = Assignment.objects.filter(handoff=h5).latest("id")
    assert (last.via, last.by, last.reason) == ("manual", manager, "Overdue on the SLA dashboard.")


def test_reassign_refuses_strangers_and_unknown_reps(client, cohort, manager, marketer):  # noqa: F811
    h5 = cohort["h5"]
    client.force_login(manager)
    outsider = UserFactory(username="outsider")
    client.post(f"/dashboard/handoffs/{h5.pk}/reassign/", {"rep": outsider.pk})
    assert Handoff.objects.get(pk=h5.pk).assigned_to == h5.assigned_to

    client.force_login(marketer)  # sees every handoff, manages none
    assert client.post(f"/dashboard/handoffs/{h5.pk}/reassign/", {"rep": 1}).status_code == 403
    client.force_login(h5.assigned_to)
    assert client.post(f"/dashboard/handoffs/{h5.pk}/reassign/", {"rep": 1}).status_code == 403


def test_the_figures_line_reads_as_japanese_sentences(client, cohort, manager):  # noqa: F811
    # Two sentences, Japanese punctuation, and the page's own date format (2026/11/30).
    client.force_login(manager)
    client.cookies["django_language"] = "ja"

    body = client.get(f"/dashboard/?{RANGE}").content.decode()

    line = re.search(r'<p class="muted small">(.*?)</p>', body, re.S).group(1)
    text = " ".join(re.sub(r"<[^>]+>", "", line).split())
    assert text == (
        "MQL 6件：SQL 2件、差し戻し 2件、対応中 2件／受注 1件。"
        " 2026/11/30 12:00 時点の数値です（毎分更新。期限超過リストはリアルタイム）。"
    )


def test_the_charts_label_dates_as_the_tables_do(client, cohort, marketer):  # noqa: F811
    client.force_login(marketer)

    response = client.get(f"/dashboard/?{RANGE}")

    charts = response.context["charts"]
    assert charts["week_labels"] == ["2026/11/16", "2026/11/23"]
    assert charts["month_labels"] == [
        row["month"].strftime("%Y/%m") for row in response.context["marketing"]["months"]
    ]
    assert charts["month_labels"] and all(
        re.fullmatch(r"\d{4}/\d{2}", label) for label in charts["month_labels"]
    )
    body = response.content.decode()
    assert '"week_labels": ["2026/11/16", "2026/11/23"]' in body
    assert "2026/11/16</td>" in body  # the weekly table, same format


def test_the_weekly_chart_leaves_room_for_a_point_at_100_percent():
    # Chart.js cuts points on the edge of the chart area unless told otherwise.
    from django.contrib.staticfiles import finders

    text = Path(finders.find("js/sla-dashboard.js")).read_text(encoding="utf-8")

    assert "labels: data.week_labels" in text and "labels: data.month_labels" in text
    assert 'yAxisID: "pct", spanGaps: true, clip: false' in text
    assert "layout: { padding: { top: 8 } }" in text


def test_the_summary_csv_says_in_words_where_each_figure_stands(client, cohort, manager):  # noqa: F811
    client.force_login(manager)
    client.cookies["django_language"] = "ja"

    body = client.get(f"/dashboard/export/summary.csv?{RANGE}").content.decode("utf-8-sig")

    assert list(csv.reader(io.StringIO(body))) == CSV_SUMMARY_JA


# Words, not codes (目安内, not "in"); hours as 時間; the counts behind every rate, so that the
# SLA compliance (3 of 5 MQLs) and the first-contact row (3 of 5 deadlines) can be checked.
CSV_SUMMARY_JA = [
    ["KPI", "値", "単位", "目安値", "目安との比較", "該当数（分子）", "対象数（分母）"],
    ["MQL数", "6", "", "", "目安なし", "", ""],
    ["MQL→SQL転換率", "33.3", "%", "20–30 %", "目安超え（良好）", "2", "6"],
    ["平均初回コンタクト時間", "9.5", "時間", "24時間以内", "目安内", "", "4"],
    ["初回コンタクト時間（中央値）", "3.5", "時間", "24時間以内", "目安内", "", "4"],
    ["SLA遵守率", "60.0", "%", "≥ 90 %", "目安外", "3", "5"],
    ["SQL→受注転換率", "50.0", "%", "15–25 %", "目安超え（良好）", "1", "2"],
    ["初回コンタクト期限内率", "60.0", "%", "≥ 90 %", "目安外", "3", "5"],
    ["SQL/非SQL判定の期限内報告", "100.0", "%", "≥ 90 %", "目安内", "4", "4"],
    ["「連絡がつかない」前のアプローチ回数", "100.0", "%", "≥ 90 %", "目安内", "1", "1"],
    ["非SQL理由のフィードバック", "100.0", "%", "≥ 90 %", "目安内", "2", "2"],
]
