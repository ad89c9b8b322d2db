"""Claim or pass on (#19) in a real browser (Japanese UI): a rep claims a new MQL from the
inbox; another MQL they leave is passed to the second rep once the window is over (the
clock travels in the test; the sweep is the beat's, called here)."""

from __future__ import annotations

import datetime as dt

import pytest

from handoff import claims
from handoff.models import ClaimStatus, ClaimVia, Handoff, HandoffClaim
from tests.e2e.helpers import log_in
from tests.handoff.helpers import make_mql_for, make_team

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

JST = dt.timezone(dt.timedelta(hours=9))
MONDAY_10 = dt.datetime(2026, 11, 2, 10, 0, tzinfo=JST)  # inside business hours


def test_a_rep_claims_one_mql_and_the_other_passes_to_a_colleague(
    live_server, chromium, settings, screenshots, time_machine
):
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    settings.LANGUAGE_CODE = "ja"  # the site's language: the reasons stored with passes
    time_machine.move_to(MONDAY_10, tick=True)
    team, (rep1, rep2), _manager = make_team("東日本営業部", reps=2, default=True)
    team.claim_required = True
    team.save()
    claimed = make_mql_for(rep1, [rep2], last_name="山本", first_name="美咲")
    left = make_mql_for(rep1, [rep2], last_name="佐藤", first_name="健")
    base = live_server.url

    context = chromium.new_context(locale="ja-JP", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    log_in(page, base, rep1.username)
    card = page.locator(f"#handoff-{claimed.pk}")
    assert card.locator(".claim-form .warn").inner_text() == (
        "11/02 10:15 までに取得しないと次の営業担当へ回送されます。"
    )
    page.screenshot(path=str(screenshots / "inbox-claim-ja.png"), full_page=True)

    card.locator(".claim-form button").click()
    page.wait_for_url(f"{base}/inbox/")
    assert page.locator(".messages").inner_text() == "取得しました：山本 美咲 はあなたの担当です。"
    assert card.locator(".claim-form").count() == 0
    assert page.locator(f"#handoff-{left.pk} .claim-form").count() == 1
    row = HandoffClaim.objects.get(handoff=claimed)
    assert (row.status, row.claimed_via) == (ClaimStatus.CLAIMED, ClaimVia.ACKNOWLEDGED)
    context.close()

    # 16 minutes later the beat's sweep passes the one rep1 left to rep2.
    time_machine.move_to(MONDAY_10 + dt.timedelta(minutes=16), tick=True)
    assert claims.claims_sweep().passed == [left.pk]
    assert Handoff.objects.get(pk=left.pk).assigned_to == rep2

    context = chromium.new_context(locale="ja-JP", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    log_in(page, base, rep2.username)
    passed = page.locator(f"#handoff-{left.pk}")
    assert passed.locator(".claim-form .warn").inner_text() == (
        "11/02 10:31 までに取得しないと次の営業担当へ回送されます。"
    )
    # Opening the page claims it; the page shows the pass and the claim.
    passed.locator("a.button").click()
    page.locator("#claims").wait_for()
    rows = page.locator("#claims tbody tr")
    assert rows.count() == 2
    assert rows.nth(0).locator("td").nth(3).inner_text() == "取得済み — 引き渡しを開いた"
    assert rows.nth(1).locator("td").nth(3).inner_text() == (
        f"次の営業担当へ回送 → {rep2}\n\n15分以内に取得されませんでした。"
    )
    page.screenshot(path=str(screenshots / "handoff-claims-ja.png"), full_page=True)
    assert HandoffClaim.objects.get(handoff=left, rep=rep2).claimed_via == ClaimVia.OPENED
    context.close()
