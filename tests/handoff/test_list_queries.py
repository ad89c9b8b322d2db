"""Each handoff list page and API list costs the same number of queries whatever the
number of rows it shows, two or twelve (the list page's table view with a search, the
rep's inbox and the API's list with a search are pinned beside their own tests:
test_list.py, test_pages.py, test_api.py). Every handoff here is overdue, has two
events and as many calls as there are handoffs, so each list has rows to show."""

import datetime as dt

import pytest

from handoff.models import Activity
from leadflow.roles import MARKETING
from sla.kpis.days import kpi_days_refresh_all
from sla.models import SlaTimer
from tests.factories import EngagementEventFactory, UserFactory
from tests.handoff.helpers import make_mql_for, make_team, retime

# The queries every signed-in page and API call starts with: the session (API: the
# session too, the test client logs in), the user, their roles, the teams they manage.
SIGNED_IN = 4


@pytest.fixture
def kanto(db):
    return make_team("Kanto", reps=2, default=True)


def _fill(alice, bob, count: int) -> list:
    handoffs = [make_mql_for(alice, [bob]) for _ in range(count)]
    for handoff in handoffs:
        EngagementEventFactory.create_batch(2, lead=handoff.lead)
    Activity.objects.bulk_create(
        Activity(handoff=handoffs[0], kind="call", outcome="no_answer", by=alice)
        for _ in range(count)
    )
    retime(
        SlaTimer.objects.filter(kind="first_contact"),
        due_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1),
    )
    kpi_days_refresh_all()
    return handoffs


def _listed(response) -> int:
    return len(response.context["rows"])


@pytest.mark.parametrize("count", [2, 12])
@pytest.mark.parametrize(
    "who,url,queries,rows",
    [
        # + availability, mine exists?, the queue's cards, its count, its waves (GROUP BY),
        # its teams, the count and page of the team table, the filter's teams and reps,
        # the poll's mark
        ("manager", "/inbox/", SIGNED_IN + 11, lambda r: len(r.context["team_open"])),
        # + availability, mine exists?, the open handoffs, the poll's mark, permissions
        # (the admin link) twice: the user's and their groups'
        ("marketer", "/inbox/", SIGNED_IN + 6, lambda r: len(r.context["marketing_open"])),
        # + count, page, its events, its activities, the filter's teams and reps
        ("manager", "/inbox/list/?view=cards", SIGNED_IN + 6, _listed),
        # + count, page, the filter's teams and reps: the overdue list, a drill-down
        ("manager", "/inbox/list/?sla=overdue&view=table", SIGNED_IN + 4, _listed),
        ("manager", "/inbox/list/?kpi=mqls&view=table", SIGNED_IN + 4, _listed),
        # + new assignments, newly queued, breaches, the handoffs they name
        ("alice", "/inbox/live/?a=0&h=0&t=0", SIGNED_IN + 4, lambda r: r.context["changes"].count),
        # + count, page
        (
            "manager",
            "/api/v1/handoffs/?status=open&sort=urgency&sla=overdue",
            SIGNED_IN + 2,
            lambda r: len(r.json()["results"]),
        ),
        # + the handoff, its activities
        ("manager", "/api/v1/handoffs/{first}/activities/", SIGNED_IN + 2, lambda r: len(r.json())),
        # + the overdue timers with their handoffs, leads
        ("manager", "/api/v1/metrics/overdue/", SIGNED_IN + 1, lambda r: len(r.json()["results"])),
    ],
)
def test_each_list_costs_the_same_queries_whatever_its_rows(
    client, kanto, count, who, url, queries, rows, django_assert_num_queries
):
    _team, (alice, bob), manager = kanto
    users = {
        "manager": manager,
        "alice": alice,
        "marketer": UserFactory(username="mk", roles=[MARKETING]),
    }
    handoffs = _fill(alice, bob, count)
    client.force_login(users[who])
    url = url.format(first=handoffs[0].pk)
    client.get(url)  # warm up process-wide caches (content types, the SLA setup)

    with django_assert_num_queries(queries):
        response = client.get(url)

    assert response.status_code == 200
    assert rows(response) == count
