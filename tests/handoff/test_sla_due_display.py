"""The rep sees each MQL's next SLA deadline (the one the inbox is ordered by), in Tokyo
time, and which ones are already overdue: on the inbox cards, the team table and the
handoff page."""

import datetime as dt
import re

import pytest
from django.urls import reverse

from handoff.models import Activity, HandoffStatus
from sla.models import SlaTimer
from tests.handoff.helpers import make_team, retime
from tests.handoff.test_pages import _mine

UTC = dt.UTC


@pytest.fixture
def kanto(db):
    return make_team("Kanto", reps=2, default=True)


def _due(body: str) -> list[str]:
    """The deadline badges of a page, tags stripped and spaces squeezed."""
    badges = re.findall(r'<span class="sla-due[^"]*" data-testid="sla-due">.*?</span>', body)
    return [" ".join(re.sub(r"<[^>]+>", "", b).split()) for b in badges]


def _set_due(handoff, kind, due_at):
    """Make `kind` the handoff's next deadline, due at `due_at` (the other one later)."""
    retime(
        SlaTimer.objects.filter(handoff=handoff).exclude(kind=kind),
        due_at=dt.datetime(2099, 12, 31, tzinfo=UTC),
    )
    retime(SlaTimer.objects.filter(handoff=handoff, kind=kind), due_at=due_at)


def test_inbox_cards_show_the_next_deadline_in_tokyo_time_and_mark_overdue(client, kanto):
    _team, (alice, _bob), _ = kanto
    late, early = _mine(alice, 2)
    # 2020-03-02 00:00 UTC is 09:00 in Tokyo: long past. 2099-01-15 00:30 UTC is 09:30.
    _set_due(late, "first_contact", dt.datetime(2020, 3, 2, 0, 0, tzinfo=UTC))
    _set_due(early, "first_contact", dt.datetime(2099, 1, 15, 0, 30, tzinfo=UTC))
    client.force_login(alice)

    body = client.get("/inbox/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    badges = _due(body)
    assert len(badges) == 2
    assert badges[0].startswith("First contact due 03/02 09:00 (overdue, due ")
    assert badges[1].startswith("First contact due 01/15 09:30 (")
    assert "overdue" not in badges[1]
    assert body.count('class="sla-due overdue"') == 1


def test_after_the_first_contact_the_next_deadline_is_the_verdict(client, kanto):
    _team, (alice, _bob), _ = kanto
    (handoff,) = _mine(alice, 1)
    Activity.objects.create(handoff=handoff, kind="call", outcome="reached", by=alice)
    retime(
        SlaTimer.objects.filter(handoff=handoff, kind="first_contact"),
        met_at=handoff.created_at,
        status="met",
    )
    _set_due(handoff, "verdict", dt.datetime(2099, 1, 16, 9, 0, tzinfo=UTC))
    client.force_login(alice)

    body = client.get(
        reverse("handoff:detail", args=[handoff.pk]), HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()

    assert "Next SLA deadline" in body
    assert _due(body)[0].startswith("Verdict due 01/16 18:00 (")


def test_the_deadline_reads_in_japanese(client, kanto, settings):
    settings.LANGUAGE_CODE = "ja"
    _team, (alice, _bob), _ = kanto
    (handoff,) = _mine(alice, 1)
    _set_due(handoff, "first_contact", dt.datetime(2020, 3, 2, 0, 0, tzinfo=UTC))
    client.force_login(alice)

    body = client.get(
        reverse("handoff:detail", args=[handoff.pk]), HTTP_ACCEPT_LANGUAGE="ja"
    ).content.decode()

    assert "次のSLA期限" in body
    assert _due(body)[0].startswith("初回コンタクト期限 03/02 09:00 (期限超過")


def test_the_managers_team_table_has_the_deadline_column(client, kanto):
    _team, (alice, _bob), manager = kanto
    (handoff,) = _mine(alice, 1)
    _set_due(handoff, "first_contact", dt.datetime(2099, 1, 15, 0, 30, tzinfo=UTC))
    client.force_login(manager)

    body = client.get("/inbox/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert "<th>Next SLA deadline</th>" in body
    assert _due(body) == [_due(body)[0]]
    assert _due(body)[0].startswith("First contact due 01/15 09:30 (")


def test_a_decided_handoff_shows_no_deadline(client, kanto):
    _team, (alice, _bob), _ = kanto
    (handoff,) = _mine(alice, 1)
    type(handoff).objects.filter(pk=handoff.pk).update(status=HandoffStatus.ACCEPTED)
    client.force_login(alice)

    body = client.get(reverse("handoff:detail", args=[handoff.pk])).content.decode()

    assert "Next SLA deadline" not in body
    assert _due(body) == []


def test_after_logging_the_first_contact_in_place_the_page_shows_the_verdict_deadline(
    client, kanto
):
    # The htmx answer to "log activity" swaps the activity section; the SLA line of the
    # facts beside it must follow (it kept "First contact due", the deadline just met).
    _team, (alice, _bob), _ = kanto
    (handoff,) = _mine(alice, 1)
    _set_due(handoff, "first_contact", dt.datetime(2099, 1, 15, 0, 30, tzinfo=UTC))
    retime(
        SlaTimer.objects.filter(handoff=handoff, kind="verdict"),
        due_at=dt.datetime(2099, 1, 16, 9, 0, tzinfo=UTC),
    )
    client.force_login(alice)

    response = client.post(
        reverse("handoff:activity-create", args=[handoff.pk]),
        {"kind": "call", "outcome": "reached", "note": ""},
        HTTP_HX_REQUEST="true",
        HTTP_ACCEPT_LANGUAGE="en",
    )

    body = response.content.decode()
    assert response.status_code == 200
    assert '<dd id="sla-next" hx-swap-oob="true">' in body
    assert _due(body) == [_due(body)[0]]
    assert _due(body)[0].startswith("Verdict due 01/16 18:00 (")
