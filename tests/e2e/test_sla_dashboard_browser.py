"""A sales manager opens the SLA dashboard in a real browser and reads the KPIs of the
hand-computed cohort (tests/sla/test_metrics.py), drawn with the bundled Chart.js."""

from __future__ import annotations

import pytest

from tests.sla.conftest import kanto, seeded  # noqa: F401 - fixtures
from tests.sla.test_metrics import cohort  # noqa: F401

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

PASSWORD = "pw-for-tests"  # tests.factories.UserFactory's
RANGE = "from=2026-11-16&to=2026-11-29"


def test_a_manager_reads_the_kpis_on_the_dashboard(
    seeded,  # noqa: F811 - the data migrations' rows, gone after earlier flushes
    live_server,
    browser_page,
    screenshots,
    cohort,  # noqa: F811
    kanto,  # noqa: F811
):
    manager = kanto[2]
    page = browser_page
    base = live_server.url

    page.goto(f"{base}/accounts/login/?next=/dashboard/%3F{RANGE.replace('&', '%26')}")
    page.fill("#id_username", manager.username)
    page.fill("#id_password", PASSWORD)
    page.click("form.stacked button[type=submit]")
    page.wait_for_url(f"{base}/dashboard/?{RANGE}")

    assert page.locator("h1").inner_text() == "SLAダッシュボード"
    # The figures are the per-day sums the fixture refreshed at the pinned clock.
    assert "2026/11/30 12:00" in page.get_by_test_id("as-of").inner_text()

    def kpi(key):
        return page.locator(f'[data-kpi="{key}"]')

    assert kpi("mqls").locator(".kpi-value").inner_text() == "6"
    assert kpi("mql_to_sql").locator(".kpi-value").inner_text() == "33.3%"
    assert kpi("mql_to_sql").get_attribute("class") == "kpi status-above"  # good, not red
    assert "20–30 %" in kpi("mql_to_sql").locator(".kpi-band").inner_text()
    assert kpi("avg_first_contact").locator(".kpi-value").inner_text() == "9.5 時間"
    assert kpi("avg_first_contact").get_attribute("class") == "kpi status-in"
    assert kpi("median_first_contact").locator(".kpi-value").inner_text() == "3.5 時間"
    assert kpi("sla_compliance").locator(".kpi-value").inner_text() == "60.0%"
    assert kpi("sql_to_won").locator(".kpi-value").inner_text() == "50.0%"
    first_contact = page.locator('#obligations tr[data-obligation="first_contact"] td')
    assert first_contact.nth(5).inner_text() == "60.0 %"  # after in time, late, counted, running
    assert page.locator("#overdue tbody tr").count() == 3
    assert page.locator("#rejections tbody tr").first.inner_text().startswith("連絡がつかない")
    # Chart.js (static/vendor/chartjs) drew the weekly trend and the reasons.
    assert page.evaluate("typeof Chart !== 'undefined' && !!Chart.getChart('chart-weekly')")
    assert page.evaluate("Chart.getChart('chart-weekly').data.labels") == [
        "2026/11/16",
        "2026/11/23",
    ]
    # A week at 100 % is drawn whole on the top edge, not cut in half.
    assert page.evaluate("Chart.getChart('chart-weekly').data.datasets[2].clip") is False
    assert page.evaluate("!!Chart.getChart('chart-rejections')")
    page.screenshot(path=str(screenshots / "sla-dashboard-ja.png"), full_page=True)
