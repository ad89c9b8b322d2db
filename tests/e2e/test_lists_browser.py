"""The handoff lists in a real browser, at a phone's width (390×844) and a laptop's
(1366×900): search + filter + sort + the next page list the expected handoffs and the
back button returns to the first; a new MQL shows in an open inbox without a reload, in
the page and in the header; a KPI card of the dashboard opens the list of exactly the
handoffs it counted; bulk reassign writes one assignment row each, with the reason; a wave
in a manager's inbox shows its most urgent cards and links to the list of all of them."""

from __future__ import annotations

import re

import pytest

from handoff.activities import activity_log
from handoff.models import Assignment, Handoff
from handoff.verdicts import handoff_accept, handoff_reject
from sla.kpis.days import kpi_days_refresh_all
from tests.factories import LeadFactory
from tests.handoff.helpers import make_mql, make_mql_for, make_team, make_wave, set_profile
from tests.sla.conftest import seeded  # noqa: F401 - fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-for-tests"  # tests.factories.UserFactory's
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 900}
VIEWPORTS = pytest.mark.parametrize("viewport", [PHONE, LAPTOP], ids=["390", "1366"])
NO_SIDEWAYS_SCROLL = "document.documentElement.scrollWidth <= window.innerWidth"


@pytest.fixture
def page_at(chromium, settings):
    """A new browser page at the viewport asked for, logged in as `user`."""
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False  # plain http
    contexts = []

    def open_page(base: str, user, viewport: dict, next_path: str):
        context = chromium.new_context(locale="ja-JP", viewport=viewport)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{base}/accounts/login/?next={next_path}")
        page.fill("#id_username", user.username)
        page.fill("#id_password", PASSWORD)
        page.click("form.stacked button[type=submit]")
        page.wait_for_load_state()
        return page

    yield open_page
    for context in contexts:
        context.close()


def _rows(page) -> list[int]:
    return [
        int(pk)
        for pk in page.eval_on_selector_all(
            "tr[data-handoff]", "rows => rows.map(r => r.dataset.handoff)"
        )
    ]


@VIEWPORTS
def test_search_filter_sort_and_the_next_page_list_the_expected_handoffs(
    seeded,  # noqa: F811
    live_server,
    page_at,
    viewport,
):
    _team, (_alice, _bob), manager = make_team("Kanto", reps=2, default=True)
    yamada = [make_mql(last_name="山田", last_name_kana="ヤマダ") for _ in range(28)]
    make_mql(last_name="佐藤", last_name_kana="サトウ")  # another name: not found
    decided = yamada.pop(0)  # a 山田 no longer open: the status filter leaves it out
    handoff_reject(handoff=decided, actor=decided.assigned_to, reason="timing", comment="来期")
    newest_first = [h.pk for h in reversed(yamada)]  # 27 open 山田, newest MQL first
    page = page_at(live_server.url, manager, viewport, "/inbox/list/")

    # Katakana typed, full width: the key is folded the same way (やまだ).
    page.fill("input[name=q]", "ﾔﾏﾀﾞ")
    page.select_option("select[name=status]", "open")
    page.select_option("select[name=sort]", "newest")
    page.select_option("select[name=view]", "table")
    page.click("#handoff-filters button[type=submit]")
    page.wait_for_load_state()

    assert re.search(r"[?&]status=open", page.url) and re.search(r"[?&]sort=newest", page.url)
    assert page.get_by_test_id("result-count").inner_text() == "27"
    assert _rows(page) == newest_first[:25]
    assert page.evaluate(NO_SIDEWAYS_SCROLL)

    page.click("a[rel=next]")
    page.wait_for_load_state()
    assert "page=2" in page.url
    assert _rows(page) == newest_first[25:]

    page.go_back()
    page.wait_for_load_state()
    assert _rows(page) == newest_first[:25]
    assert page.locator("select[name=sort]").input_value() == "newest"


@VIEWPORTS
def test_a_new_mql_shows_in_the_open_inbox_and_the_header_without_a_reload(
    seeded,  # noqa: F811
    live_server,
    page_at,
    viewport,
    settings,
):
    settings.HANDOFF_POLL_SECONDS = 1
    _team, (alice, bob), _manager = make_team("Kanto", reps=2, default=True)
    make_mql_for(alice, [bob], last_name="既存")
    page = page_at(live_server.url, alice, viewport, "/inbox/")
    assert page.url.endswith("/inbox/")
    header = page.get_by_test_id("header-new-count")
    assert header.is_hidden()
    page.wait_for_timeout(1500)  # a poll or more with nothing new: 304s, nothing shown
    assert header.is_hidden() and page.get_by_test_id("live-news").count() == 0

    make_mql_for(alice, [bob], last_name="新着", first_name="花子")

    news = page.get_by_test_id("live-news")
    news.wait_for(state="visible", timeout=10_000)
    assert "新着 花子" in news.inner_text()
    assert page.get_by_test_id("live-count").inner_text() == "1"
    # In the header too, where it shows while the phone's menu is folded.
    assert header.is_visible()
    assert header.inner_text() == "新着1件"
    assert page.evaluate(NO_SIDEWAYS_SCROLL)


def test_a_kpi_card_opens_the_list_of_exactly_the_handoffs_it_counted(
    seeded,  # noqa: F811
    live_server,
    page_at,
):
    _team, (alice, bob), manager = make_team("Kanto", reps=2, default=True)
    handoffs = [make_mql_for(alice, [bob]) for _ in range(3)]
    activity_log(handoff=handoffs[0], actor=alice, kind="call", outcome="reached")
    handoff_accept(handoff=handoffs[0], actor=alice, bant={"budget": True, "need": True})
    kpi_days_refresh_all()
    page = page_at(live_server.url, manager, LAPTOP, "/dashboard/")

    mqls = page.locator('[data-kpi="mqls"]')
    assert mqls.locator(".kpi-value").inner_text().strip() == "3"
    mqls.locator("a.kpi-drill").click()
    page.wait_for_load_state()
    assert "kpi=mqls" in page.url
    assert page.get_by_test_id("result-count").inner_text() == "3"
    assert sorted(_rows(page)) == sorted(h.pk for h in handoffs)

    page.go_back()
    page.wait_for_load_state()
    page.locator('[data-kpi="mql_to_sql"] a.kpi-drill').click()
    page.wait_for_load_state()
    assert page.get_by_test_id("result-count").inner_text() == "1"
    assert _rows(page) == [handoffs[0].pk]


@VIEWPORTS
def test_bulk_reassign_writes_one_assignment_row_each_with_the_reason(
    seeded,  # noqa: F811
    live_server,
    page_at,
    viewport,
):
    _team, (alice, bob), manager = make_team("Kanto", reps=2, default=True)
    moved = [make_mql_for(alice, [bob]) for _ in range(2)]
    stays = make_mql_for(alice, [bob])
    page = page_at(live_server.url, manager, viewport, "/inbox/list/?view=table&status=open")

    for handoff in moved:
        page.check(f'tr[data-handoff="{handoff.pk}"] input[name=handoff]')
    page.select_option("#bulk-reassign select[name=rep]", str(bob.pk))
    page.fill("#bulk-reassign [name=reason]", "休暇の代行")
    page.click("#bulk-reassign button[type=submit]")
    page.wait_for_load_state()

    assert "2件の引き渡しの担当を変更しました。" in page.locator("ul.messages").inner_text()
    rows = Assignment.objects.filter(via="manual").values_list(
        "handoff_id", "rep_id", "previous_rep_id", "by_id", "reason"
    )
    assert sorted(rows) == sorted((h.pk, bob.pk, alice.pk, manager.pk, "休暇の代行") for h in moved)
    assert Handoff.objects.get(pk=stays.pk).assigned_to_id == alice.pk
    assert page.evaluate(NO_SIDEWAYS_SCROLL)


@VIEWPORTS
def test_a_wave_in_the_managers_inbox_shows_50_cards_and_links_to_all_of_them(
    seeded,  # noqa: F811
    live_server,
    page_at,
    viewport,
):
    _team, (rep,), manager = make_team("Kanto", reps=1, default=True)
    set_profile(rep, max_open_handoffs=2)
    leads = LeadFactory.create_batch(55)
    make_wave(leads)
    page = page_at(live_server.url, manager, viewport, "/inbox/")

    assert page.get_by_test_id("queue-count").inner_text() == "53"
    assert page.locator("section[aria-labelledby=queue-title] article.hcard").count() == 50
    more = page.locator("#queue-more a")
    assert more.is_visible()
    assert page.evaluate(NO_SIDEWAYS_SCROLL)

    more.click()
    page.wait_for_url(re.compile(r"/inbox/list/\?status=open&queued=true$"))
    assert page.get_by_test_id("total").inner_text() == "53件の引き渡し · 1 / 3 ページ"
    assert page.evaluate(NO_SIDEWAYS_SCROLL)
