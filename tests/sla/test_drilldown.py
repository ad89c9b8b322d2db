"""Every figure of the dashboard links to the handoff list with the filters that list
exactly the handoffs it counted (sla.kpis.days.handoff_kpi_condition)."""

import datetime as dt
import re

import pytest
from django.utils import timezone

from handoff import activities, verdicts
from handoff.models import Activity, Handoff, RejectionReason
from sla.kpis.days import KPI_LABELS, kpi_days_refresh_all
from sla.models import SlaTimer
from tests.handoff.helpers import make_mql, make_team


@pytest.fixture
def world(db):
    team, _reps, manager = make_team("Kanto", reps=2, default=True)
    handoffs = [make_mql(source="web" if n % 2 else "expo") for n in range(8)]
    now = timezone.now()
    reason = RejectionReason.objects.get_or_create(
        code="not_reachable", defaults={"label_ja": "不通", "label_en": "Not reachable"}
    )[0]
    # contacted and accepted; rejected with a comment; late first contact; left running
    for handoff in handoffs[:3]:
        activities.activity_log(
            handoff=handoff, actor=handoff.assigned_to, kind="call", outcome="reached"
        )
    verdicts.handoff_accept(
        handoff=handoffs[0], actor=handoffs[0].assigned_to, bant={"budget": True, "need": True}
    )
    for _ in range(3):
        Activity.objects.create(
            handoff=handoffs[1], kind="call", outcome="no_answer", by=handoffs[1].assigned_to
        )
    verdicts.handoff_reject(
        handoff=handoffs[1], actor=handoffs[1].assigned_to, reason=reason, comment="3回不通"
    )
    SlaTimer.objects.filter(handoff__in=handoffs[3:5], kind="first_contact").update(
        due_at=now - dt.timedelta(hours=2)
    )
    kpi_days_refresh_all()
    return team, manager, handoffs


def _count(client, url: str) -> int:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.context["listing"].total


def test_each_kpi_card_lists_exactly_the_handoffs_it_counted(client, world):
    _team, manager, _handoffs = world
    client.force_login(manager)
    page = client.get("/dashboard/")
    summary = page.context["summary"]
    body = page.content.decode()
    links = dict(
        re.findall(
            r'data-kpi="(\w+)">\s*<div class="kpi-label">.*?</div>\s*'
            r'<a class="kpi-drill" href="([^"]+)"',
            body,
        )
    )

    figures = {
        "mqls": summary["mqls"],
        "mql_to_sql": summary["sqls"],
        "avg_first_contact": summary["contacted"],
        "sla_compliance": summary["sla_known"],
        "sql_to_won": summary["won"],
    }
    for key, expected in figures.items():
        assert _count(client, links[key].replace("&amp;", "&")) == expected, key
    assert summary["mqls"] == 8 and summary["sqls"] == 1 and summary["contacted"] == 3


def test_every_figure_condition_matches_the_per_day_sums(client, world):
    _team, manager, _handoffs = world
    client.force_login(manager)
    summary = client.get("/dashboard/").context["summary"]
    drill = client.get("/dashboard/").context["drill"]
    compliance = summary["compliance"]
    expected = {
        "sqls": summary["sqls"],
        "rejected": summary["rejected"],
        "open": summary["open"],
        "sla_compliant": summary["sla_compliant"],
        "sla_late": summary["sla_known"] - summary["sla_compliant"],
        "first_contact_on_time": compliance["first_contact"]["on_time"],
        "first_contact_late": compliance["first_contact"]["late"],
        "first_contact_running": compliance["first_contact"]["running"],
        "verdict_on_time": compliance["verdict"]["on_time"],
        "verdict_running": compliance["verdict"]["running"],
        "not_reachable_followed_up": compliance["follow_ups"]["on_time"],
        "rejected_with_reason": compliance["rejection_reason"]["on_time"],
    }
    assert set(expected) <= set(KPI_LABELS)
    for key, figure in expected.items():
        assert _count(client, f"/inbox/list/?{drill}&kpi={key}") == figure, key
    assert expected["first_contact_late"] == 2


def test_per_rep_and_per_source_cells_link_to_their_handoffs(client, world):
    _team, manager, handoffs = world
    client.force_login(manager)
    page = client.get("/dashboard/")
    drill = page.context["drill"]

    for row in page.context["reps"]:
        url = f"/inbox/list/?{drill}&rep={row['rep_id']}&kpi=mqls"
        assert _count(client, url) == row["handoffs"]
    for row in page.context["sources"]:
        assert (
            _count(client, f"/inbox/list/?{drill}&source={row['source']}&kpi=mqls") == row["mqls"]
        )
    assert Handoff.objects.count() == len(handoffs)
