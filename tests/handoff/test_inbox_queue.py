"""The manager's inbox after a wave: tens of thousands queued is normal, so the page shows
the most urgent cards, says the true figures of the whole queue from SQL, and links to the
paged list of all of them. Its queries do not grow with the queue."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from handoff.models import Handoff
from handoff.views import INBOX_QUEUE_CARDS
from sla.models import SlaTimer
from tests.factories import LeadFactory
from tests.handoff.helpers import make_mql, make_team, make_wave, retime, set_profile

TOKYO = dt.timezone(dt.timedelta(hours=9))
NOW = dt.datetime(2026, 11, 2, 10, 0, tzinfo=TOKYO)  # a Monday, in business hours
QUEUE_URL = "/inbox/list/?status=open&amp;queued=true"

pytestmark = pytest.mark.django_db


def _wave(*, queued: int):
    """A publish that makes `queued` + 2 MQLs for a team of one rep with room for 2."""
    team, (rep,), manager = make_team("Kanto", reps=1, default=True)
    set_profile(rep, max_open_handoffs=2)
    leads = LeadFactory.create_batch(queued + 2)
    with time_machine.travel(NOW, tick=False):
        wave = make_wave(leads)
    assert Handoff.objects.filter(assigned_to__isnull=True).count() == queued
    return team, manager, wave


def test_the_queue_shows_the_50_most_urgent_cards_and_the_true_figures_of_all_60(client):
    team, manager, wave = _wave(queued=60)
    client.force_login(manager)

    response = client.get("/inbox/")

    body = response.content.decode()
    assert INBOX_QUEUE_CARDS == 50
    assert len(response.context["queue"]) == 50
    assert body.count('<article class="hcard"') == 50
    assert response.context["queue_total"] == 60
    assert "60 MQLs wait in the team queue: nobody could take them." in body
    assert '<span class="count alert" data-testid="queue-count">60</span>' in body
    assert (
        f'<p class="queue-alert" id="queue-wave-{wave.pk}" role="status">A wave of MQLs: '
        "Scoring model v2 (2026-11-02 10:00) made 62 MQLs; 2 went to reps at once and 60 of "
        "them wait here. Their SLA clocks start when a rep gets them.</p>"
    ) in body
    assert f'action="/inbox/teams/{team.pk}/assign-queue/"' in body
    assert "Assign Kanto's queue</button>" in body
    assert (
        f'<a href="{QUEUE_URL}">The 50 most urgent are shown. See all 60 queued, page by page</a>'
    ) in body


def test_the_cards_are_the_most_urgent_of_the_queue(client):
    """Running SLA clocks first, nearest deadline first; then the held wave MQLs (no
    deadline), oldest first. The held ones' ages are shuffled against their ids."""
    _team, manager, _ = _wave(queued=55)
    held = list(
        Handoff.objects.filter(assigned_to__isnull=True).order_by("pk").values_list("pk", flat=True)
    )
    # 7 and 55 are coprime: every held one gets its own age, in no id order.
    ages = {pk: (index * 7) % 55 for index, pk in enumerate(held)}
    for pk, minutes in ages.items():
        Handoff.objects.filter(pk=pk).update(created_at=NOW - dt.timedelta(minutes=minutes))
    # Three MQLs made by events while the rep is full: queued, their clocks running.
    running = []
    for hours in (1, 2, 3):
        with time_machine.travel(NOW + dt.timedelta(hours=hours), tick=False):
            running.append(make_mql())
    assert [h.assigned_to_id for h in running] == [None, None, None]
    retime(SlaTimer.objects.filter(handoff=running[0]), due_at=NOW + dt.timedelta(days=3))
    oldest_first = sorted(held, key=lambda pk: -ages[pk])
    assert oldest_first[:3] == [held[47], held[39], held[31]]  # 54, 53, 52 minutes old
    client.force_login(manager)

    response = client.get("/inbox/")

    expected = [running[1].pk, running[2].pk, running[0].pk, *oldest_first[:47]]
    assert [h.pk for h in response.context["queue"]] == expected


def test_the_queue_link_says_so_in_japanese(client):
    _team, manager, _ = _wave(queued=60)
    client.force_login(manager)

    body = client.get("/inbox/", HTTP_ACCEPT_LANGUAGE="ja").content.decode()

    assert (
        f'<a href="{QUEUE_URL}">緊急度の高い50件を表示しています。'
        "キューの60件すべてを見る（ページ送り）</a>" in body
    )


def test_a_short_queue_shows_every_card_and_links_to_its_search(client):
    _team, manager, _ = _wave(queued=5)
    client.force_login(manager)

    response = client.get("/inbox/")

    body = response.content.decode()
    assert len(response.context["queue"]) == 5
    assert body.count('<article class="hcard"') == 5
    assert f'<a href="{QUEUE_URL}">Search and filter the queue</a>' in body
    assert "most urgent are shown" not in body


@pytest.mark.parametrize("queued", [5, 60])
def test_the_manager_inbox_queries_do_not_grow_with_the_queue(
    client, queued, django_assert_num_queries
):
    _team, manager, _ = _wave(queued=queued)
    client.force_login(manager)

    # session, user, roles, managed teams, availability, own handoffs (none), the queue's
    # cards + their events + their activities, the queue's count, its waves, its teams,
    # the team table's count and page, the filter's teams and reps, scores, the poll's mark
    with django_assert_num_queries(18):
        response = client.get("/inbox/")

    assert response.context["queue_total"] == queued


def test_the_queue_link_lists_every_queued_handoff_page_by_page(client):
    _team, manager, _ = _wave(queued=60)
    client.force_login(manager)
    queued = set(Handoff.objects.filter(assigned_to__isnull=True).values_list("pk", flat=True))

    pages = [
        client.get("/inbox/list/", {"status": "open", "queued": "true", "page": page})
        for page in (1, 2, 3)
    ]

    assert [p.status_code for p in pages] == [200, 200, 200]
    assert [p.context["listing"].total for p in pages] == [60, 60, 60]
    assert [len(p.context["rows"]) for p in pages] == [25, 25, 10]
    assert {h.pk for p in pages for h in p.context["rows"]} == queued


def test_beside_a_managers_own_list_the_team_table_shows_50_rows_and_counts_all(client):
    _team, (rep,), manager = make_team("Kanto", reps=1, default=True)
    set_profile(rep, max_open_handoffs=100)
    leads = LeadFactory.create_batch(56)
    with time_machine.travel(NOW, tick=False):
        make_wave(leads)
    # One of them is the manager's own: their inbox then pages their own list.
    Handoff.objects.filter(lead=leads[0]).update(assigned_to=manager)
    client.force_login(manager)

    response = client.get("/inbox/")

    body = response.content.decode()
    assert response.context["mine_filtered"] is True
    assert len(response.context["team_open"]) == 50
    assert response.context["team_open_total"] == 55
    assert (
        '<a href="/inbox/list/?status=open&amp;queued=false">'
        "The 50 most urgent are shown. See every open handoff in your teams, yours included,"
        " page by page</a>"
    ) in body
    assert response.context["queue_total"] == 0
    assert "The queue is empty." in body
