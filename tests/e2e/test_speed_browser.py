"""A sales manager opens speed to lead, sees the slowest hop marked, drills into the
handoffs behind it, and opens one: its page loads the hop-by-hop timeline (htmx)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from tests.sla.conftest import kanto, seeded  # noqa: F401 - fixtures
from tests.sla.test_speed import recompute, with_timeline

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-for-tests"  # tests.factories.UserFactory's


def test_a_manager_drills_from_the_slowest_hop_into_its_handoffs(
    seeded,  # noqa: F811
    kanto,  # noqa: F811
    live_server,
    browser_page,
    screenshots,
):
    _team, (alice, bob), manager = kanto
    mql_at = timezone.now() - dt.timedelta(hours=3)
    # Picked up after 40 and 5 minutes; routed at once (the slowest hop is the pickup).
    slow = with_timeline(mql_at, rep=alice, assigned_at=1, opened_at=2401)
    quick = with_timeline(mql_at, rep=bob, assigned_at=1, opened_at=301)
    with_timeline(mql_at, rep=bob, assigned_at=2)  # not opened yet: not behind the pickup
    recompute()  # what beat does within a minute
    page = browser_page
    base = live_server.url

    page.goto(f"{base}/accounts/login/?next=/dashboard/speed/")
    page.fill("#id_username", manager.username)
    page.fill("#id_password", PASSWORD)
    page.click("form.stacked button[type=submit]")
    page.wait_for_url(f"{base}/dashboard/speed/")

    slowest = page.locator("#hops tr.slowest")
    assert slowest.get_attribute("data-hop") == "pickup"
    slowest.locator("a").click()
    page.wait_for_url("**hop=pickup#drill")
    rows = page.locator("#drill-rows tbody tr")
    assert [rows.nth(i).get_attribute("data-handoff") for i in range(rows.count())] == [
        str(slow.pk),
        str(quick.pk),
    ]
    page.screenshot(path=str(screenshots / "speed-drill.png"), full_page=True)

    rows.first.locator("a").click()
    page.wait_for_url(f"{base}/inbox/handoffs/{slow.pk}/")
    pickup = page.get_by_test_id("speed-timeline").locator('[data-hop="pickup"]')
    assert "40分" in pickup.inner_text()
