"""A marketer, in a real browser, clones the published model, edits one rule, sees the
diff, waits for the preview, reads the calibration table and the threshold explorer,
publishes, and watches the rescore finish without reloading. The history is the
hand-built one of tests/scoring/test_calibration.py, whose figures are worked out there."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from scoring.models import RescoreRun, RunStatus, ScoringModel
from scoring.services import rescore_run_execute
from tests.factories import UserFactory
from tests.scoring.test_calibration import _build_history

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

PASSWORD = "pw-for-tests"  # tests.factories.UserFactory's


@pytest.fixture
def history(db):
    # The calibration tests' hand-built history, built for this test alone: the live
    # server reads committed rows, not the savepoints test_calibration.py shares.
    return _build_history()


def test_a_marketer_tunes_a_rule_on_sales_verdicts_and_publishes_it(
    live_server,
    browser_page,
    screenshots,
    history,
):
    published = history
    marketer = UserFactory(roles=["Marketing"], is_staff=True)
    page = browser_page
    base = live_server.url
    errors: list[str] = []
    page.on(
        "console",
        # The browser reports the explorer's refused request (400) itself; that one is
        # expected below, any other error is not.
        lambda m: (
            errors.append(f"{page.url}: {m.text[:80]}")
            if m.type == "error" and "status of 400" not in m.text
            else None
        ),
    )

    page.goto(f"{base}/admin/login/?next=/admin/scoring/scoringmodel/{published.pk}/change/")
    page.fill("#id_username", marketer.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")

    # Clone the published model into a draft.
    page.click(f'a[href$="/scoringmodel/{published.pk}/clone/"]')
    page.click("#content form input[type=submit]")
    page.wait_for_url(re.compile(r"/admin/scoring/scoringmodel/\d+/change/$"))
    draft = ScoringModel.objects.get(based_on=published)
    expect(page.locator("#scoring-diff")).to_contain_text("公開中のモデルと同じ")

    # Edit one rule: a page view gives 5 points instead of 10. The diff says so.
    points = page.locator('input[name="engagement_rules-0-points"]')
    expect(points).to_have_value("10")
    points.fill("5")
    page.click('input[name="_continue"]')
    diff = page.locator('#scoring-diff li[data-kind="rule_points"]')
    expect(diff).to_have_text("Webページ閲覧 10→5点")

    # The preview.
    page.click(f'a[href$="/scoringmodel/{draft.pk}/preview/"]')
    expect(page.locator(".scoring-promise")).to_be_visible()
    promised = page.locator(".scoring-promise strong").inner_text()
    assert re.fullmatch(r"今この下書きを公開すると、\d+件のリードがMQLに移行します。", promised)
    promised = promised.replace("今この下書きを", "今")
    expect(page.locator('#scoring-diff li[data-kind="rule_points"]')).to_have_text(
        "Webページ閲覧 10→5点"
    )

    # The calibration: 84 decided leads; precision and recall of both models.
    page.click(f'a[href$="/scoringmodel/{draft.pk}/calibration/"]')
    expect(page.locator("#calibration-basis")).to_contain_text("84")
    rows = page.locator("#threshold-summary tbody tr")
    expect(rows).to_have_count(2)
    # Published: 60 MQLs, 30 became SQL (50.0 %), recall 30/32. Draft: only G2.
    expect(rows.nth(0).locator("td").nth(1)).to_have_text("60 / 84")
    expect(rows.nth(0).locator("td").nth(2)).to_have_text("50.0% (30/60)")
    expect(rows.nth(0).locator("td").nth(3)).to_have_text("93.8% (30/32)")
    expect(rows.nth(1).locator("td").nth(1)).to_have_text("30 / 84")
    expect(rows.nth(1).locator("td").nth(2)).to_have_text("80.0% (24/30)")
    expect(rows.nth(1).locator("td").nth(3)).to_have_text("75.0% (24/32)")
    expect(page.locator("#missing-history")).to_be_visible()
    grid = page.locator(f"#calibration-v{published.version} .calibration-grid")
    expect(grid.locator("td.mql-cell").first).to_be_visible()
    expect(page.locator(f"#calibration-v{published.version} .calibration-deciles")).to_contain_text(
        "データ不足"
    )

    # The threshold explorer: the curves are drawn; moving the fit threshold to 0 redraws
    # them over the same leads (the draft: G2 at 60 and G1 at 30 engagement).
    expect(page.locator("#threshold-explorer[data-drawn=true]")).to_be_attached()
    curve = "Chart.getChart(document.querySelector('canvas[data-chart=over-engagement]'))"
    assert page.evaluate(f"!!{curve}")
    page.fill("#explore-engagement", "0")
    page.locator("#explore-engagement").dispatch_event("change")
    # fit ≥ 30 and engagement ≥ 0: G1, G2 and G5 = 64 leads, 30 of them SQL.
    expect(page.locator("#explorer-point")).to_contain_text("64")
    expect(page.locator("#explorer-point")).to_contain_text("46.9% (30/64)")
    expect(page.locator("#explorer-engagement tr.chosen th")).to_have_text("0")
    expect(page.locator("#threshold-explorer[data-drawn=true]")).to_be_attached()
    assert page.evaluate(f"{curve}.data.datasets[0].data[0]") == 64
    page.screenshot(path=str(screenshots / "scoring-calibration.png"), full_page=True)

    # A threshold out of range: the server's 400 is the form's error, the figures stay.
    page.fill("#explore-fit", "99999")
    page.locator("#explore-fit").dispatch_event("change")
    refusal = page.locator("#explorer-error")
    expect(refusal).to_be_visible()
    expect(refusal).to_have_text("閾値は -1000 〜 10000 の範囲で指定してください。")
    expect(page.locator("#explore-fit")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#explorer-point")).to_contain_text("46.9% (30/64)")
    page.fill("#explore-fit", "30")
    page.locator("#explore-fit").dispatch_event("change")
    expect(refusal).to_be_hidden()
    expect(page.locator("#explore-fit")).not_to_have_attribute("aria-invalid", "true")

    # Publish, then watch the rescore finish on the page that refreshes itself.
    # The confirmation states the figure the preview job computed for this draft.
    page.goto(f"{base}/admin/scoring/scoringmodel/{draft.pk}/publish/")
    promise = page.locator("#publish-promise")
    expect(promise).to_have_attribute("data-state", "current")
    expect(promise.locator(".scoring-promise strong")).to_have_text(promised)
    page.click("#publish-form input[type=submit]")
    page.wait_for_url(re.compile(r"/admin/scoring/rescorerun/\d+/change/$"))
    run = RescoreRun.objects.filter(model=draft).get()
    progress = page.locator("#rescore-progress")
    expect(progress).to_have_attribute("data-status", RunStatus.QUEUED)
    rescore_run_execute(run_id=run.pk)  # the worker
    expect(progress).to_have_attribute("data-status", RunStatus.DONE, timeout=15_000)
    expect(progress).to_contain_text("100%")
    assert errors == []
