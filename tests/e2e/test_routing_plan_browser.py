"""A sales manager, in a real browser, makes a draft routing plan, edits a capacity and a
rep's hours, starts a replay, sees it finish without reloading, reads the per-rep table,
and publishes the plan. The history and its figures are tests/handoff/test_replay.py's
(test_capacity_and_working_hours_replayed_rep_by_rep)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.sync_api import expect

from handoff.models import PlanStatus, ReplayRun, ReplayStatus, RepProfile, RoutingPlan
from handoff.replay import replay_run_execute
from leadflow.roles import SALES_MANAGER
from sla.models import RepWorkingHours
from tests.factories import UserFactory
from tests.handoff.test_replay import history  # noqa: F401 - fixture

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

PASSWORD = "pw-for-tests"  # tests.factories.UserFactory's


def test_a_manager_replays_a_draft_routing_plan_and_publishes_it(
    live_server,
    browser_page,
    screenshots,
    history,  # noqa: F811
):
    _kanto, rep_a, rep_b = history
    manager = UserFactory(username="plan-boss", roles=[SALES_MANAGER], is_staff=True)
    page = browser_page
    base = live_server.url
    errors: list[str] = []
    page.on(
        "console",
        lambda m: errors.append(f"{page.url}: {m.text[:80]}") if m.type == "error" else None,
    )

    page.goto(f"{base}/admin/login/?next=/admin/handoff/routingplan/add/")
    page.fill("#id_username", manager.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")

    # A new draft: a copy of live routing.
    page.fill("#id_name", "午後のB")
    page.click('input[name="_continue"]')
    page.wait_for_url(re.compile(r"/admin/handoff/routingplan/\d+/change/$"))
    plan = RoutingPlan.objects.get(name="午後のB")

    # Edit it: A takes one open handoff at a time, B works from 13:00. (Reps by name.)
    expect(page.locator('select[name="reps-0-rep"], input[name="reps-0-rep"]')).to_have_value(
        str(rep_a.pk)
    )
    page.fill('input[name="reps-0-max_open_handoffs"]', "1")
    page.fill('input[name="reps-1-starts_at"]', "13:00")
    page.click('input[name="_continue"]')
    expect(page.locator(".messagelist .success")).to_be_visible()

    # Replay it over the last week.
    page.click(f'a[href$="/routingplan/{plan.pk}/replay/"]')
    page.fill("#id_weeks", "1")
    page.click("#replay-start input[type=submit]")
    progress = page.locator("#replay-progress")
    expect(progress).to_have_attribute("data-status", ReplayStatus.QUEUED)
    run = ReplayRun.objects.get(plan=plan)
    replay_run_execute(run_id=run.pk)  # the worker

    # The panel notices, the page reloads itself, and the table is there.
    table = page.locator("#replay-reps")
    expect(table).to_be_visible(timeout=15_000)
    expect(page.locator("#replay-basis")).to_contain_text("4")
    row_b = table.locator(f'tr[data-rep="{rep_b}"] td')
    # B: 2 received under the draft (1 actual), peak open 2 (1), 1 breach (0).
    expect(row_b.nth(0)).to_have_text("2")
    expect(row_b.nth(1)).to_have_text("1")
    expect(row_b.nth(4)).to_have_text("2")
    expect(row_b.nth(5)).to_have_text("1")
    expect(row_b.nth(8)).to_have_text("1")
    expect(row_b.nth(9)).to_have_text("0")
    row_a = table.locator(f'tr[data-rep="{rep_a}"] td')
    # A: 2 received (3 actual), peak 1 (2), no breach (1).
    expect(row_a.nth(0)).to_have_text("2")
    expect(row_a.nth(1)).to_have_text("3")
    expect(row_a.nth(8)).to_have_text("0")
    expect(row_a.nth(9)).to_have_text("1")
    page.screenshot(path=str(screenshots / "routing-plan-replay.png"), full_page=True)

    # Publish.
    page.click(f'a[href$="/routingplan/{plan.pk}/publish/"]')
    expect(page.locator("#publish-replayed")).to_be_visible()
    page.click("#publish-submit")
    # The publish rewrites the teams, rules, memberships and hours in one SQLite write
    # transaction and then renders the list: in a clean-clone CI run on a loaded machine
    # this navigation once took over the default 10 s (6 s for the whole test when quiet).
    page.wait_for_url(re.compile(r"/admin/handoff/routingplan/$"), timeout=30_000)
    expect(page.locator(".messagelist .success")).to_be_visible()
    plan.refresh_from_db()
    assert (plan.status, plan.published_by) == (PlanStatus.PUBLISHED, manager)
    assert RepProfile.objects.get(user=rep_a).max_open_handoffs == 1
    assert RepWorkingHours.objects.get(user=rep_b).starts_at == dt.time(13)
    assert errors == []
