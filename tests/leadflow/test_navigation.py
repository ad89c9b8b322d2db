"""The header links every page a user may open, on every page (not only on some)."""

import pytest
from django.urls import reverse

from leadflow.roles import MARKETING
from tests.factories import UserFactory
from tests.handoff.helpers import make_team

INBOX = reverse("handoff:inbox")
DASHBOARD = reverse("sla:dashboard")
TOKEN = reverse("account-token")


def _nav(response) -> str:
    body = response.content.decode()
    return body[body.index('<nav class="mainnav">') : body.index("</nav>")]


@pytest.fixture
def kanto(db):
    return make_team("Kanto", reps=1, default=True)


@pytest.mark.parametrize("page", [INBOX, DASHBOARD, TOKEN, "/"])
def test_a_manager_can_reach_inbox_and_dashboard_from_every_page(client, kanto, page):
    _team, _reps, manager = kanto
    client.force_login(manager)

    nav = _nav(client.get(page))

    assert f'href="{INBOX}"' in nav
    assert f'href="{DASHBOARD}"' in nav


@pytest.mark.parametrize("page", [INBOX, TOKEN, "/"])
def test_marketing_can_reach_the_dashboard_from_the_inbox_too(client, db, page):
    client.force_login(UserFactory(username="marketer", roles=[MARKETING]))

    nav = _nav(client.get(page))

    assert f'href="{INBOX}"' in nav
    assert f'href="{DASHBOARD}"' in nav


@pytest.mark.parametrize("page", [INBOX, TOKEN, "/"])
def test_a_rep_gets_the_inbox_link_but_no_dashboard_link_they_could_not_open(client, kanto, page):
    _team, (rep,), _manager = kanto
    client.force_login(rep)

    nav = _nav(client.get(page))

    assert f'href="{INBOX}"' in nav
    assert DASHBOARD not in nav


def test_the_current_page_is_marked_in_the_header(client, kanto):
    client.force_login(kanto[2])

    nav = _nav(client.get(DASHBOARD))

    assert f'href="{DASHBOARD}" aria-current="page"' in nav
    assert f'href="{INBOX}" aria-current' not in nav


def test_anonymous_visitors_get_no_app_links(client, db):
    nav = _nav(client.get("/"))

    assert INBOX not in nav
    assert DASHBOARD not in nav
