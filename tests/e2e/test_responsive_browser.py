"""Every page of every role at a phone's width (390×844) and a laptop's (1366×900): the
page never scrolls sideways, the header menu opens at phone width with every link in
reach, and at phone width the header's and the page's buttons are at least 44 px high.

One browser for the whole file (the session's `chromium`), one context per viewport."""

from __future__ import annotations

import pytest

from leadflow.roles import MARKETING
from tests.factories import UserFactory
from tests.sla.conftest import kanto, seeded  # noqa: F401 - fixtures
from tests.sla.test_metrics import cohort  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-for-tests"  # tests.factories.UserFactory's
RANGE = "from=2026-11-16&to=2026-11-29"
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 900}
TAP = 44  # px: the smallest comfortable tap target (Apple HIG, WCAG 2.5.5)

NO_SIDEWAYS_SCROLL = "document.documentElement.scrollWidth <= window.innerWidth"
# Visible controls only: a closed <details> or a collapsed menu hides some on purpose.
TOO_SMALL = """selector => [...document.querySelectorAll(selector)]
  .filter(el => el.offsetParent !== null)
  .map(el => [el.textContent.trim().slice(0, 30), el.getBoundingClientRect().height])
  .filter(([, height]) => height < 44)"""


def _pages(role, handoffs):
    """(path, expected status, is one of ours with the LeadFlow header) per role."""
    own = f"/inbox/handoffs/{handoffs['h0'].pk}/"  # alice's (kanto-rep1) open handoff
    others = f"/inbox/handoffs/{handoffs['h6'].pk}/"  # bob's
    common = [("/", 200, True), ("/inbox/", 200, True), (own, 200, True)]
    common.append(("/account/token/", 200, True))
    if role == "rep":
        return [*common, (others, 404, True), ("/dashboard/", 403, True)]
    pages = [*common, (f"/dashboard/?{RANGE}", 200, True)]
    if role in ("marketer", "admin"):
        pages.append(("/admin/integrations/source/import/", 200, False))  # the CSV import
    return pages


def _users(kanto):  # noqa: F811
    _team, (alice, _bob), manager = kanto
    return {
        "rep": alice,
        "manager": manager,
        "marketer": UserFactory(username="marketer", roles=[MARKETING], is_staff=True),
        "admin": UserFactory(username="admin", is_staff=True, is_superuser=True),
    }


def _log_in(page, base, user):
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("form.stacked button[type=submit]")
    page.wait_for_load_state()
    assert page.locator("#menu").count() == 1, page.url  # logged in, on one of our pages


def _check_header_at_phone_width(page):
    toggle = page.locator("#menu-toggle")
    menu = page.locator("#menu")
    assert toggle.is_visible() and not menu.is_visible()
    assert toggle.bounding_box()["height"] >= TAP
    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "true"
    assert menu.is_visible()
    # In reach: every link and button inside the screen's width and tall enough to tap.
    out_of_reach = page.evaluate(
        """width => [...document.querySelectorAll("#menu a, #menu button")]
          .map(el => [el.textContent.trim(), el.getBoundingClientRect()])
          .filter(([, box]) => box.left < 0 || box.right > width || box.height < 44)
          .map(([text, box]) => [text, box.left, box.right, box.height])""",
        PHONE["width"],
    )
    assert out_of_reach == []
    assert page.get_by_role("button", name="ログアウト").is_visible()
    assert page.evaluate(NO_SIDEWAYS_SCROLL)
    toggle.click()
    assert not menu.is_visible()


@pytest.mark.parametrize("role", ["rep", "manager", "marketer", "admin"])
def test_every_page_of_a_role_fits_a_phone_and_a_laptop(
    seeded,  # noqa: F811
    live_server,
    chromium,
    settings,
    cohort,  # noqa: F811
    kanto,  # noqa: F811
    role,
):
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False  # plain http
    user = _users(kanto)[role]
    base = live_server.url
    for viewport in (PHONE, LAPTOP):
        context = chromium.new_context(locale="ja-JP", viewport=viewport)
        context.set_default_timeout(10_000)
        page = context.new_page()
        page.goto(f"{base}/accounts/login/")
        assert page.evaluate(NO_SIDEWAYS_SCROLL), ("login", viewport)
        _log_in(page, base, user)
        for path, status, ours in _pages(role, cohort):
            response = page.goto(f"{base}{path}")
            assert response.status == status, path
            width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            assert page.evaluate(NO_SIDEWAYS_SCROLL), (path, viewport, width)
            if not ours:
                continue  # Django's admin: its own header and buttons
            if viewport is PHONE:
                _check_header_at_phone_width(page)
                assert page.evaluate(TOO_SMALL, "main button, main .button") == [], path
            else:
                assert not page.locator("#menu-toggle").is_visible()
                assert page.get_by_role("button", name="ログアウト").is_visible()
        context.close()
