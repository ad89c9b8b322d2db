"""A rep switches themselves away and back on the inbox, in a real browser (Japanese UI).

Named to run after test_handoff_browser.py: a transaction=True test flushes the rows the
migrations seeded (rejection reasons), which that test reads; this one needs none."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from handoff.models import Handoff, RepProfile
from tests.e2e.helpers import log_in
from tests.handoff.helpers import make_mql, make_team, set_profile

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_rep_switches_away_and_back(live_server, browser_page, screenshots):
    _team, (rep, colleague), _manager = make_team("東日本営業部", reps=2, default=True)
    page = browser_page
    base = live_server.url
    status = page.locator("#availability-status")

    log_in(page, base, rep.username)
    assert status.inner_text() == "対応可能"

    # A time in the past: the form says so in place, nothing changes.
    page.fill("#availability_away_until", "2020-01-01T09:00")
    page.click("#away-form button[type=submit]")
    page.locator("#away-form .field-error").wait_for()
    assert page.locator("#away-form .field-error").inner_text() == (
        "「戻る日時」は未来の日時にしてください。"
    )
    assert not RepProfile.objects.filter(user=rep).exists()

    # Away until tomorrow 18:00 (Tokyo): htmx swaps the status in, no reload.
    until = (timezone.localtime() + dt.timedelta(days=1)).replace(
        hour=18, minute=0, second=0, microsecond=0
    )
    page.evaluate("window.__same_page = true")
    page.fill("#availability_away_until", until.strftime("%Y-%m-%dT%H:%M"))
    page.click("#away-form button[type=submit]")
    page.locator("#availability-status.status-away").wait_for()
    assert status.inner_text() == f"不在 ({until:%m/%d %H:%M} まで)"
    assert page.evaluate("window.__same_page") is True
    assert (RepProfile.objects.get(user=rep).away_until, page.url) == (until, f"{base}/inbox/")
    page.screenshot(path=str(screenshots / "inbox-away-ja.png"), full_page=True)

    # Meanwhile an MQL comes in that nobody can take: it waits in the queue.
    set_profile(colleague, away=True)
    queued = make_mql(last_name="山本", first_name="美咲")
    assert queued.is_queued

    # Back: the queue is drained to the rep, and the inbox reloads to show the MQL.
    page.click("#back-form button[type=submit]")
    page.locator("#availability-status.status-available").wait_for()
    page.locator(f"#handoff-{queued.pk}").wait_for()
    assert status.inner_text() == "対応可能"
    assert page.locator(".messages").inner_text() == (
        "おかえりなさい。新しいMQLがまた割り当てられます。"
        "チームのキューから 1 件のMQLがあなたに割り当てられました。"
    )
    assert Handoff.objects.get(pk=queued.pk).assigned_to == rep
    assert RepProfile.objects.get(user=rep).away is False
    page.screenshot(path=str(screenshots / "inbox-back-ja.png"), full_page=True)
