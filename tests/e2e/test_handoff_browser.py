"""A rep works their inbox in a real browser: log a call, accept with BANT, reject."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import translation

from handoff.models import Activity, Handoff, HandoffStatus, RejectionReason
from leadflow.models import EventKind, Lead, Stage
from tests.e2e.helpers import log_in
from tests.factories import CompanyFactory, EngagementEventFactory
from tests.handoff.helpers import make_mql, make_team
from tests.sla.conftest import seeded  # noqa: F401 - fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TOKYO = dt.timezone(dt.timedelta(hours=9))


def _seed():
    _team, (rep,), _manager = make_team("東日本営業部", reps=1, default=True, prefix="sato")
    rep.last_name, rep.first_name = "佐藤", "健"
    rep.save()
    people = [
        ("山本", "美咲", "株式会社北辰精機", "manufacturing", "神奈川県", 420, "製造部 部長"),
        ("高橋", "大輔", "みなと物流株式会社", "logistics", "東京都", 1200, "情報システム課 課長"),
        ("伊藤", "さくら", "株式会社さくらソフト", "it", "大阪府", 85, "代表取締役"),
    ]
    handoffs = []
    for number, (last, first, company, industry, prefecture, size, title) in enumerate(people):
        lead_company = CompanyFactory(
            name=company, industry=industry, prefecture=prefecture, employee_count=size
        )
        handoff = make_mql(
            company=lead_company,
            last_name=last,
            first_name=first,
            job_title=title,
            email=f"lead{number}@example.co.jp",
        )
        for hours, kind in enumerate(
            [
                EventKind.PRICING_PAGE_VIEW,
                EventKind.CASE_STUDY_DOWNLOAD,
                EventKind.SEMINAR_ATTENDANCE,
            ]
        ):
            EngagementEventFactory(
                lead=handoff.lead,
                kind=kind,
                occurred_at=dt.datetime(2026, 11, 2, 9 + hours, 30, tzinfo=TOKYO),
            )
        handoffs.append(handoff)
    return rep, handoffs


def test_rep_logs_a_call_accepts_and_rejects(
    seeded,  # noqa: F811 - the rejection reasons: another browser test may have run first
    live_server,
    browser_page,
    screenshots,
):
    rep, (first, second, third) = _seed()
    page = browser_page
    base = live_server.url

    log_in(page, base, rep.username)
    assert page.locator("html").get_attribute("lang") == "ja"
    assert page.locator("article.hcard").count() == 3
    page.screenshot(path=str(screenshots / "inbox-ja.png"), full_page=True)

    # Open the first MQL and log a call: htmx swaps the activity log in place.
    page.click(f"#handoff-{first.pk} a.lead-name")
    page.wait_for_url(f"{base}/inbox/handoffs/{first.pk}/")
    page.select_option("#activity_kind", "call")
    page.select_option("#activity_outcome", "reached")
    page.fill("#activity_note", "部長と通話。来期の予算を検討中")
    page.click("#activity-form button[type=submit]")
    page.locator("#activity-log").get_by_text("部長と通話。来期の予算を検討中").wait_for()
    assert page.url == f"{base}/inbox/handoffs/{first.pk}/"  # in place, no reload
    assert page.locator("#first-contact .warn").count() == 0
    assert Activity.objects.get(handoff=first).by == rep

    # One BANT answer is not enough: the form says so, nothing changes.
    page.check("#accept_budget")
    page.click("#accept-form button[type=submit]")
    page.locator("#accept-form .form-errors").wait_for()
    assert "2" in page.locator("#accept-form .form-errors").inner_text()
    assert Lead.objects.get(pk=first.lead_id).stage == Stage.MQL
    page.screenshot(path=str(screenshots / "detail-bant-error-ja.png"), full_page=True)

    # Two answers: accepted, the lead is an SQL.
    page.check("#accept_need")
    page.click("#accept-form button[type=submit]")
    page.locator("#handoff-status.status-accepted").wait_for()
    assert page.locator("#accept-form").count() == 0
    assert Lead.objects.get(pk=first.lead_id).stage == Stage.SQL
    assert Handoff.objects.get(pk=first.pk).status == HandoffStatus.ACCEPTED

    # Another one is rejected: first without a reason, then with one.
    page.goto(f"{base}/inbox/handoffs/{second.pk}/")
    page.click("#reject-form button[type=submit]")
    page.locator("#reject-form .field-error").first.wait_for()
    assert page.locator("#reject-form .field-error").count() == 2
    assert Lead.objects.get(pk=second.lead_id).stage == Stage.MQL

    reason = RejectionReason.objects.get(code="timing")
    page.select_option("#reject_reason", str(reason.pk))
    page.fill("#reject_comment", "導入は再来年度の予定。半年後に再度ナーチャリング")
    page.click("#reject-form button[type=submit]")
    page.locator("#handoff-status.status-rejected").wait_for()
    with translation.override("ja"):
        assert page.locator("#lead-stage").inner_text() == str(Stage.RECYCLED.label)
    assert Lead.objects.get(pk=second.lead_id).stage == Stage.RECYCLED
    assert page.locator("#rejection-reason").inner_text() == reason.label_ja

    # The inbox now holds the one left; switch to English and keep a screenshot of it too.
    page.goto(f"{base}/inbox/")
    assert page.locator("article.hcard").count() == 1
    page.click(".langswitch button[value=en]")
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "en"
    page.get_by_role("heading", name="Inbox").wait_for()
    page.screenshot(path=str(screenshots / "inbox-en.png"), full_page=True)
    page.goto(f"{base}/inbox/handoffs/{second.pk}/")
    assert page.locator("#lead-stage").inner_text() == "Recycled (nurture)"
    page.screenshot(path=str(screenshots / "detail-rejected-en.png"), full_page=True)
    assert third.pk in [h.pk for h in Handoff.objects.filter(status=HandoffStatus.OPEN)]
