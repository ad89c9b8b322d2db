"""What a Japanese rep needs on the page (issue #15, item 6): the reading of each name
beside it, phone numbers a phone can dial, and the company's other people and handoffs."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from handoff.models import HandoffStatus
from leadflow.templatetags.leadflow_tags import tel_href
from tests.factories import CompanyFactory, LeadFactory
from tests.handoff.helpers import make_mql_for, make_team


@pytest.fixture
def kanto(db):
    return make_team("Kanto", reps=2, default=True)


@pytest.mark.parametrize(
    ("typed", "href"),
    [
        ("03-1234-5678", "tel:+81312345678"),
        ("０３－１２３４－５６７８", "tel:+81312345678"),  # full width, as Excel exports it
        ("+1 (415) 555-0100", "tel:+14155550100"),
        ("内線 12", "tel:12"),  # not a number phonenumbers knows: its digits
        ("", ""),
    ],
)
def test_a_phone_number_becomes_a_tel_uri_a_phone_dials(typed, href):
    assert tel_href(typed) == href


def test_the_inbox_card_shows_the_kana_and_a_tappable_phone(client, kanto):
    _team, (alice, bob), _manager = kanto
    handoff = make_mql_for(
        alice,
        [bob],
        last_name="山田",
        first_name="花子",
        last_name_kana="ヤマダ",
        first_name_kana="ハナコ",
        phone="03-1234-5678",
    )
    client.force_login(alice)

    body = client.get(reverse("handoff:inbox")).content.decode()
    card = body[body.index(f'id="handoff-{handoff.pk}"') :]

    assert '<span class="kana" lang="ja">ヤマダ ハナコ</span>' in card
    assert '<a class="tel" href="tel:+81312345678">03-1234-5678</a>' in card


def test_the_managers_team_table_shows_the_kana_and_phone_too(client, kanto):
    _team, (alice, bob), manager = kanto
    make_mql_for(
        alice, [bob], last_name_kana="スズキ", first_name_kana="イチロウ", phone="06-1111-2222"
    )
    client.force_login(manager)

    body = client.get(reverse("handoff:inbox")).content.decode()
    table = body[body.index('<table class="handoffs stack"') :]

    assert '<span class="kana" lang="ja">スズキ イチロウ</span>' in table
    assert 'href="tel:+81611112222"' in table
    assert 'data-label="Lead"' in table  # each cell is named when rows stack on a phone


def test_a_lead_without_kana_or_phone_shows_neither(client, kanto):
    _team, (alice, bob), _manager = kanto
    handoff = make_mql_for(alice, [bob], last_name_kana="", first_name_kana="", phone="")
    client.force_login(alice)

    body = client.get(reverse("handoff:detail", args=[handoff.pk])).content.decode()

    assert 'class="kana"' not in body
    assert 'id="lead-kana"' not in body
    assert "tel:" not in body


def test_the_handoff_page_lists_the_companys_other_people_and_handoffs(client, kanto):
    _team, (alice, bob), _manager = kanto
    company = CompanyFactory(name="株式会社アルプス電工")
    colleague_lead = make_mql_for(
        bob, [alice], company=company, last_name="佐藤", first_name="次郎", job_title="部長"
    )
    LeadFactory(
        company=company,
        last_name="高橋",
        first_name="三郎",
        last_name_kana="タカハシ",
        first_name_kana="サブロウ",
        phone="03-9999-0000",
    )
    mine = make_mql_for(alice, [bob], company=company, last_name="伊藤", first_name="由美")
    earlier_mine = make_mql_for(alice, [bob], company=company, last_name="伊藤", first_name="健")
    LeadFactory(last_name="別会社", first_name="太郎")  # another company: not listed
    client.force_login(alice)

    body = client.get(reverse("handoff:detail", args=[mine.pk])).content.decode()
    panel = body[
        body.index('id="company-history"') : body.index(
            "</section>", body.index('id="company-history"')
        )
    ]

    assert "At 株式会社アルプス電工" in panel
    people = panel[
        panel.index('id="company-leads"') : panel.index("</ul>", panel.index('id="company-leads"'))
    ]
    assert [
        name in people for name in ("高橋 三郎", "佐藤 次郎", "伊藤 健", "伊藤 由美", "別会社")
    ] == [
        True,
        True,
        True,
        False,  # the lead of this page
        False,
    ]
    assert '<span class="kana" lang="ja">タカハシ サブロウ</span>' in people
    assert 'href="tel:+81399990000"' in people
    handoffs = panel[panel.index('id="company-handoffs"') :]
    # Alice may open her own earlier handoff, not Bob's; she still sees that Bob has it.
    assert f'href="{reverse("handoff:detail", args=[earlier_mine.pk])}"' in handoffs
    assert reverse("handoff:detail", args=[colleague_lead.pk]) not in handoffs
    assert "佐藤 次郎" in handoffs and "kanto-rep2" in handoffs
    assert str(HandoffStatus.OPEN.label) in handoffs


def test_the_company_panel_costs_the_same_queries_for_a_big_company(client, kanto):
    _team, (alice, bob), _manager = kanto
    company = CompanyFactory()
    mine = make_mql_for(alice, [bob], company=company)
    make_mql_for(bob, [alice], company=company)
    url = reverse("handoff:detail", args=[mine.pk])
    client.force_login(alice)
    client.get(url)  # warm caches (routing table, policy)

    with CaptureQueriesContext(connection) as small:
        client.get(url)
    for _ in range(5):
        make_mql_for(bob, [alice], company=company)
        LeadFactory(company=company)
    with CaptureQueriesContext(connection) as big:
        body = client.get(url).content.decode()

    start = body.index('id="company-handoffs"')
    assert body.count("<li>", start, body.index("</ul>", start)) == 6
    assert len(big.captured_queries) == len(small.captured_queries)
