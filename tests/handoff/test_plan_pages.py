"""The routing plan studio's admin pages: a manager makes a draft (a copy of live
routing), edits it, replays it (a job whose panel asks the page to reload once done),
and publishes it. The history and its figures are tests/handoff/test_replay.py's."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from handoff import replay
from handoff.models import (
    PlanRep,
    PlanStatus,
    PlanTeam,
    ReplayRun,
    ReplayStatus,
    RepProfile,
    RoutingPlan,
)
from leadflow.roles import SALES_MANAGER, SALES_REP
from tests.factories import UserFactory
from tests.handoff.test_replay import history  # noqa: F401 - fixture

pytestmark = pytest.mark.usefixtures("history")


@pytest.fixture
def manager_client(client):
    manager = UserFactory(username="plan-boss", roles=[SALES_MANAGER], is_staff=True)
    client.force_login(manager)
    client.manager = manager
    return client


def _add_plan(client) -> RoutingPlan:
    response = client.post(
        reverse("admin:handoff_routingplan_add"), {"name": "Afternoon B", "notes": ""}
    )
    assert response.status_code == 302
    return RoutingPlan.objects.get(name="Afternoon B")


def test_a_manager_makes_a_draft_that_copies_live_routing(manager_client):
    plan = _add_plan(manager_client)
    assert (plan.status, plan.created_by) == (PlanStatus.DRAFT, manager_client.manager)
    assert PlanTeam.objects.filter(plan=plan).count() == 1
    assert PlanRep.objects.filter(plan=plan).count() == 2
    page = manager_client.get(reverse("admin:handoff_routingplan_change", args=[plan.pk]))
    assert page.status_code == 200
    assert reverse("admin:handoff_routingplan_replay", args=[plan.pk]) in page.content.decode()


def test_the_replay_page_starts_a_job_shows_its_progress_then_the_table(manager_client, history):  # noqa: F811
    _kanto, rep_a, rep_b = history
    plan = _add_plan(manager_client)
    PlanRep.objects.filter(plan=plan, rep=rep_b).update(starts_at=dt.time(13))
    PlanRep.objects.filter(plan=plan, rep=rep_a).update(max_open_handoffs=1)
    url = reverse("admin:handoff_routingplan_replay", args=[plan.pk])
    progress = reverse("admin:handoff_routingplan_replay_progress", args=[plan.pk])

    assert "has not been replayed" in manager_client.get(url).content.decode()
    assert manager_client.post(url, {"weeks": "1"}).status_code == 302
    run = ReplayRun.objects.get(plan=plan)
    assert (run.status, run.weeks) == (ReplayStatus.QUEUED, 1)
    page = manager_client.get(url).content.decode()
    assert 'id="replay-progress"' in page and f'hx-get="{progress}"' in page
    polled = manager_client.get(progress)
    assert polled.status_code == 200 and "HX-Refresh" not in polled

    replay.replay_run_execute(run_id=run.pk)  # the worker

    assert manager_client.get(progress)["HX-Refresh"] == "true"
    page = manager_client.get(url).content.decode()
    assert 'id="replay-reps"' in page
    # B: 2 received under the draft (1 actual), peak 2 (1), 1 predicted breach (0).
    row = page.split(f'data-rep="{rep_b}"')[1].split("</tr>")[0]
    cells = [cell.split(">")[1].split("<")[0] for cell in row.split("<td")[1:]]
    assert cells[:8] == ["2", "1", "0", "0", "2", "1", "0.0 / 0.0", "0.0 / 0.0"]
    assert cells[8:10] == ["1", "0"]


def test_an_edit_makes_the_replay_page_offer_a_new_replay(manager_client, history):  # noqa: F811
    _kanto, _rep_a, rep_b = history
    plan = _add_plan(manager_client)
    run = replay.replay_run_start(plan=plan, weeks=1)
    replay.replay_run_execute(run_id=run.pk)
    PlanRep.objects.filter(plan=plan, rep=rep_b).update(max_open_handoffs=2)

    page = manager_client.get(reverse("admin:handoff_routingplan_replay", args=[plan.pk]))

    assert "has not been replayed" in page.content.decode()
    assert 'id="replay-reps"' not in page.content.decode()


def test_weeks_out_of_range_start_nothing(manager_client):
    plan = _add_plan(manager_client)
    url = reverse("admin:handoff_routingplan_replay", args=[plan.pk])
    response = manager_client.post(url, {"weeks": "27"}, follow=True)
    assert "Replay between 1 and 26 weeks." in response.content.decode()
    assert manager_client.post(url, {"weeks": "many"}).status_code == 302
    assert not ReplayRun.objects.exists()


def test_a_manager_publishes_the_draft(manager_client, history):  # noqa: F811
    _kanto, rep_a, _rep_b = history
    plan = _add_plan(manager_client)
    PlanRep.objects.filter(plan=plan, rep=rep_a).update(max_open_handoffs=3)
    url = reverse("admin:handoff_routingplan_publish", args=[plan.pk])
    assert "has no replay of its current content" in manager_client.get(url).content.decode()

    response = manager_client.post(url)

    assert response.status_code == 302
    plan.refresh_from_db()
    assert (plan.status, plan.published_by) == (PlanStatus.PUBLISHED, manager_client.manager)
    assert RepProfile.objects.get(user=rep_a).max_open_handoffs == 3
    # Published: read-only, no replay.
    change = manager_client.get(reverse("admin:handoff_routingplan_change", args=[plan.pk]))
    assert "read-only" in change.content.decode()
    assert manager_client.post(manager_client_replay(plan), {"weeks": "1"}).status_code == 403


def manager_client_replay(plan) -> str:
    return reverse("admin:handoff_routingplan_replay", args=[plan.pk])


def test_reps_and_staff_without_the_publish_permission_cannot_publish(client, manager_client):
    plan = _add_plan(manager_client)
    rep = UserFactory(username="plain-rep", roles=[SALES_REP], is_staff=True)
    client.force_login(rep)
    assert client.get(manager_client_replay(plan)).status_code == 403
    assert (
        client.post(reverse("admin:handoff_routingplan_publish", args=[plan.pk])).status_code == 403
    )
    plan.refresh_from_db()
    assert plan.status == PlanStatus.DRAFT
