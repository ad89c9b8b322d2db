"""Every kind of page works in chromium under the Content-Security-Policy, with no
violation: the login page, the inbox and its htmx actions, the dashboard's Chart.js, the
Django admin (lists, forms with their widgets) and the Swagger UI at /api/docs/.

Violations are caught twice: chromium's console message ("Refused to ...") and the
page's `securitypolicyviolation` events. A probe that injects an inline script proves
the policy is enforced and that a violation would be seen.
"""

from __future__ import annotations

import pytest

from leadflow.models import Lead
from sla.kpis.days import kpi_days_refresh_all
from sla.models import BusinessCalendar
from tests.factories import UserFactory
from tests.handoff.helpers import make_mql, make_team
from tests.sla.conftest import seeded  # noqa: F401 - fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-for-tests"  # tests.factories.UserFactory's
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline"));
});
"""


class Watch:
    """Console CSP messages and violation events of one page, read after each step."""

    def __init__(self, page):
        self.page = page
        self.console: list[str] = []
        page.add_init_script(RECORD_VIOLATIONS)
        page.on("console", self._console)

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text:
            self.console.append(message.text)

    def violations(self) -> list[str]:
        events = self.page.evaluate("window.__csp || []")
        found = [*self.console, *events]
        self.console.clear()
        self.page.evaluate("window.__csp = []")
        return found


def _log_in(page, base: str, username: str, then: str) -> None:
    page.goto(f"{base}/accounts/login/?next={then}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("form.stacked button[type=submit]")
    page.wait_for_url(f"{base}{then}")


def test_the_policy_is_enforced_and_a_violation_would_be_seen(live_server, browser_page):
    page = browser_page
    watch = Watch(page)

    response = page.goto(f"{live_server.url}/accounts/login/")
    page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.__ran = true'; document.head.appendChild(s); }"
    )

    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert page.evaluate("window.__ran === true") is False
    assert watch.violations()  # the console message and the event


def test_pages_work_with_no_csp_violation(
    seeded,  # noqa: F811 - the data migrations' rows, gone after earlier flushes
    live_server,
    browser_page,
):
    _team, (rep,), manager = make_team("Kanto", reps=1, default=True)
    handoff = make_mql(email="csp-lead@example.jp", last_name="山田")
    assert handoff.assigned_to == rep
    kpi_days_refresh_all()
    UserFactory(username="root", is_superuser=True, is_staff=True)
    page = browser_page
    base = live_server.url
    watch = Watch(page)
    seen: dict[str, list[str]] = {}

    page.goto(f"{base}/accounts/login/")
    seen["login"] = watch.violations()
    page.goto(f"{base}/no/such/page/")
    seen["404"] = watch.violations()

    # The rep's inbox and an htmx action (the activity log is swapped in place).
    _log_in(page, base, rep.username, "/inbox/")
    assert page.evaluate("typeof htmx") == "object"
    seen["inbox"] = watch.violations()
    page.goto(f"{base}/inbox/handoffs/{handoff.pk}/")
    page.select_option("#activity_kind", "call")
    page.select_option("#activity_outcome", "reached")
    page.fill("#activity_note", "CSP: 通話")
    page.click("#activity-form button[type=submit]")
    page.locator("#activity-log").get_by_text("CSP: 通話").wait_for()
    assert page.url == f"{base}/inbox/handoffs/{handoff.pk}/"
    seen["handoff detail + htmx"] = watch.violations()
    page.context.clear_cookies()

    # The manager's dashboard: Chart.js draws the weekly trend.
    _log_in(page, base, manager.username, "/dashboard/")
    page.wait_for_function("typeof Chart !== 'undefined' && !!Chart.getChart('chart-weekly')")
    seen["dashboard"] = watch.violations()
    page.context.clear_cookies()

    # The admin: index, a list with actions, forms with date/time and related widgets.
    _log_in(page, base, "root", "/admin/")
    # Admin pages that load htmx (the scoring studio) get its CSP config from base_site.
    page.add_script_tag(url="/static/vendor/htmx/htmx.min.js")
    page.wait_for_function("typeof htmx !== 'undefined'")
    assert page.evaluate("htmx.config.includeIndicatorStyles") is False
    seen["admin index + htmx"] = watch.violations()
    lead = Lead.objects.get(email="csp-lead@example.jp")
    for url in [
        "/admin/leadflow/lead/",
        f"/admin/leadflow/lead/{lead.pk}/change/",
        "/admin/integrations/outboxmessage/",
        "/admin/integrations/destination/add/",
        "/admin/auth/group/add/",
    ]:
        response = page.goto(f"{base}{url}")
        assert response.status == 200, url
        page.wait_for_load_state("load")
        seen[url] = watch.violations()
    # The business calendar: its closures inline ("add another" row) with calendar
    # pickers and clock widgets, all the admin's own scripts.
    calendar = BusinessCalendar.objects.get(is_default=True)
    page.goto(f"{base}/admin/sla/businesscalendar/{calendar.pk}/change/")
    rows = page.locator("#closures-group tr.form-row:not(.empty-form)")
    before = rows.count()
    page.locator(".add-row a").click()
    assert rows.count() == before + 1
    page.locator("a[id^=clocklink]").first.click()
    page.locator(".clockbox:visible").wait_for()
    page.keyboard.press("Escape")
    rows.last.locator("a[id^=calendarlink]").first.click()
    page.locator(".calendarbox:visible").wait_for()
    seen["admin inline + widgets"] = watch.violations()

    # The Swagger UI loads the schema with the session and lists the operations.
    page.goto(f"{base}/api/docs/")
    page.locator(".opblock").first.wait_for()
    assert page.locator(".opblock").count() > 10
    seen["api docs"] = watch.violations()

    assert {name: found for name, found in seen.items() if found} == {}
