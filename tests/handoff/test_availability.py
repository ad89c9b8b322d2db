"""A rep sets themselves away (now, or until a time) and back: the service, and the form on
the inbox (plain POST and htmx)."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine

from handoff import availability, selectors
from handoff.models import Assignment, AssignmentVia, Handoff, HandoffStatus, RepProfile
from handoff.selectors import Availability
from leadflow.errors import DomainError
from leadflow.roles import MARKETING
from tests.factories import UserFactory
from tests.handoff.helpers import make_mql, make_team, set_profile

TOKYO = ZoneInfo("Asia/Tokyo")
NOW = dt.datetime(2026, 11, 30, 10, 0, tzinfo=TOKYO)
URL = "/inbox/availability/"
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def _pinned_clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def kanto(db):
    team, (alice, bob), manager = make_team("Kanto", reps=2, default=True)
    return team, alice, bob, manager


def _queue(team, reps, count):
    """`count` MQLs that nobody can take: every rep is away while they come in."""
    for rep in reps:
        set_profile(rep, away=True)
    handoffs = [make_mql() for _ in range(count)]
    assert all(h.is_queued for h in handoffs)
    return handoffs


# --- the service -----------------------------------------------------------------------


def test_a_rep_sets_themselves_away_now(kanto):
    _team, alice, bob, _manager = kanto

    profile = availability.rep_set_away(rep=alice, actor=alice)

    assert (profile.away, profile.away_until) == (True, None)
    assert selectors.availability_for(user=alice) == Availability(is_rep=True, away=True)
    # The round robin skips her: the next two MQLs both go to bob.
    assert [make_mql().assigned_to for _ in range(2)] == [bob, bob]


def test_a_rep_sets_themselves_away_until_a_time(kanto):
    _team, alice, _bob, _manager = kanto
    until = dt.datetime(2026, 12, 1, 18, 0, tzinfo=TOKYO)

    availability.rep_set_away(rep=alice, actor=alice, until=until)

    profile = RepProfile.objects.get(user=alice)
    assert (profile.away, profile.away_until) == (True, until)
    assert selectors.availability_for(user=alice) == Availability(
        is_rep=True, away=True, until=until
    )
    # Back by the clock at that time, with nothing to switch.
    assert selectors.availability_for(user=alice, at=until) == Availability(is_rep=True, away=False)


@pytest.mark.parametrize(
    "until",
    [NOW - dt.timedelta(minutes=1), NOW],
    ids=["past", "now"],
)
def test_away_until_must_be_in_the_future(kanto, until):
    _team, alice, _bob, _manager = kanto

    with pytest.raises(DomainError) as refused:
        availability.rep_set_away(rep=alice, actor=alice, until=until)

    assert refused.value.code == "invalid_away_until"
    assert refused.value.fields == {"away_until": ["“Away until” must be in the future."]}
    assert not RepProfile.objects.filter(user=alice).exists()


def test_away_until_without_a_time_zone_is_refused(kanto):
    _team, alice, _bob, _manager = kanto

    with pytest.raises(DomainError) as refused:
        availability.rep_set_away(rep=alice, actor=alice, until=dt.datetime(2026, 12, 1, 18, 0))

    assert refused.value.fields == {"away_until": ["The time has no time zone."]}
    assert not RepProfile.objects.filter(user=alice).exists()


def test_coming_back_drains_the_team_queue_to_that_rep(kanto):
    team, alice, bob, _manager = kanto
    queued = _queue(team, [alice, bob], 3)

    comeback = availability.rep_set_back(rep=alice, actor=alice)

    assert (comeback.profile.away, comeback.profile.away_until) == (False, None)
    assert [h.pk for h in comeback.assigned] == [h.pk for h in queued]  # oldest first
    assert (
        list(
            Handoff.objects.filter(pk__in=[h.pk for h in queued]).values_list(
                "assigned_to_id", flat=True
            )
        )
        == [alice.pk] * 3
    )
    assignments = Assignment.objects.filter(handoff__in=queued)
    assert {(a.rep_id, a.via, a.by_id) for a in assignments} == {
        (alice.pk, AssignmentVia.QUEUE, None)
    }
    assert RepProfile.objects.get(user=bob).away is True  # bob stays away, gets nothing


def test_coming_back_takes_only_what_fits_the_capacity(kanto):
    team, alice, bob, _manager = kanto
    queued = _queue(team, [alice, bob], 3)
    set_profile(alice, away=True, max_open_handoffs=2)

    comeback = availability.rep_set_back(rep=alice, actor=alice)

    assert [h.pk for h in comeback.assigned] == [queued[0].pk, queued[1].pk]
    assert Handoff.objects.get(pk=queued[2].pk).is_queued


def test_coming_back_with_an_empty_queue_assigns_nothing(kanto):
    _team, alice, _bob, _manager = kanto
    availability.rep_set_away(rep=alice, actor=alice, until=NOW + dt.timedelta(days=1))

    comeback = availability.rep_set_back(rep=alice, actor=alice)

    assert comeback.assigned == []
    assert selectors.availability_for(user=alice) == Availability(is_rep=True, away=False)
    assert not Assignment.objects.exists()


def test_a_rep_cannot_set_a_colleagues_availability(kanto):
    _team, alice, bob, _manager = kanto

    with pytest.raises(DomainError) as refused:
        availability.rep_set_away(rep=bob, actor=alice)
    assert refused.value.code == "not_your_availability"
    with pytest.raises(DomainError):
        availability.rep_set_back(rep=bob, actor=alice)

    assert not RepProfile.objects.filter(user=bob).exists()


def test_the_reps_manager_may_set_it(kanto):
    _team, _alice, bob, manager = kanto

    availability.rep_set_away(rep=bob, actor=manager)

    assert RepProfile.objects.get(user=bob).away is True


def test_a_user_in_no_team_has_no_availability_to_set(db):
    marketer = UserFactory(username="mkt", roles=[MARKETING])

    with pytest.raises(DomainError) as refused:
        availability.rep_set_away(rep=marketer, actor=marketer)

    assert refused.value.code == "not_a_rep"
    assert selectors.availability_for(user=marketer) == Availability(is_rep=False, away=False)
    assert not RepProfile.objects.exists()


# --- the inbox form --------------------------------------------------------------------


def test_the_inbox_shows_the_reps_status_and_the_form(client, kanto):
    _team, alice, _bob, _manager = kanto
    client.force_login(alice)

    body = client.get("/inbox/").content.decode()

    assert '<span id="availability-status" class="status status-available">Available</span>' in (
        body
    )
    assert 'id="away-form"' in body
    assert 'id="back-form"' not in body


def test_the_inbox_header_says_until_when_in_japanese(client, kanto):
    _team, alice, _bob, _manager = kanto
    set_profile(alice, away=True, away_until=dt.datetime(2026, 12, 1, 18, 0, tzinfo=TOKYO))
    client.force_login(alice)

    body = client.get("/inbox/", HTTP_ACCEPT_LANGUAGE="ja").content.decode()

    assert (
        '<span id="availability-status" class="status status-away">不在 (12/01 18:00 まで)</span>'
        in (body)
    )
    assert 'id="back-form"' in body
    # The field starts at the current "until", so changing it is one edit.
    assert 'name="away_until" value="2026-12-01T18:00"' in body


def test_no_form_for_users_in_no_team(client, kanto):
    _team, _alice, _bob, manager = kanto
    client.force_login(manager)  # manages the team, takes no leads

    body = client.get("/inbox/").content.decode()

    assert 'id="availability"' not in body


def test_plain_post_sets_the_rep_away_until_a_tokyo_time(client, kanto):
    _team, alice, _bob, _manager = kanto
    client.force_login(alice)

    response = client.post(URL, {"action": "away", "away_until": "2026-12-01T18:00"})

    assert response.status_code == 302
    assert response["Location"] == "/inbox/"
    profile = RepProfile.objects.get(user=alice)
    assert (profile.away, profile.away_until) == (
        True,
        dt.datetime(2026, 12, 1, 18, 0, tzinfo=TOKYO),
    )
    page = client.get("/inbox/").content.decode()
    assert "You are away until 12/01 18:00: no new MQLs come to you until then." in page
    assert "Away (until 12/01 18:00)" in page


def test_plain_post_away_without_a_time(client, kanto):
    _team, alice, _bob, _manager = kanto
    client.force_login(alice)

    response = client.post(URL, {"action": "away", "away_until": ""}, follow=True)

    assert response.redirect_chain == [("/inbox/", 302)]
    assert (RepProfile.objects.get(user=alice).away_until, response.status_code) == (None, 200)
    body = response.content.decode()
    assert "You are away: no new MQLs come to you until you say you are back." in body
    assert '<span id="availability-status" class="status status-away">Away</span>' in body


def test_htmx_post_swaps_the_status_in_place(client, kanto):
    _team, alice, _bob, _manager = kanto
    client.force_login(alice)

    response = client.post(URL, {"action": "away", "away_until": "2026-12-01T18:00"}, **HTMX)

    assert response.status_code == 200
    assert response.templates[0].name == "handoff/_availability.html"
    body = response.content.decode()
    assert body.lstrip().startswith('<section class="panel availability" id="availability"')
    assert "<html" not in body
    assert "Away (until 12/01 18:00)" in body
    assert '<p class="flash" role="status">You are away until 12/01 18:00' in body
    assert 'id="back-form"' in body


@pytest.mark.parametrize(
    ("until", "error"),
    [
        ("2026-11-30T09:59", "“Away until” must be in the future."),
        ("tomorrow", "Enter a valid date/time."),
        ("0001-01-01T00:00", "“Away until” must be in the future."),
        ("0001-01-01T00:00:00+09:00", "“Away until” must be in the future."),
        ("2100-01-01T00:00", "“Away until” must be before 2100."),
        ("9999-12-31T23:59:59-09:00", "“Away until” must be before 2100."),
    ],
)
def test_a_bad_time_comes_back_with_the_error_and_changes_nothing(client, kanto, until, error):
    _team, alice, _bob, _manager = kanto
    client.force_login(alice)

    page = client.post(URL, {"action": "away", "away_until": until})
    fragment = client.post(URL, {"action": "away", "away_until": until}, **HTMX)

    assert (page.status_code, fragment.status_code) == (422, 422)
    assert "handoff/inbox.html" in [t.name for t in page.templates]
    assert "<html" not in fragment.content.decode()
    for response in (page, fragment):
        body = response.content.decode()
        assert f'<p class="field-error" role="alert">{error}</p>' in body
        assert f'value="{until}"' in body  # what the rep typed stays in the field
    assert not RepProfile.objects.filter(user=alice).exists()


def test_an_unknown_action_is_a_form_error(client, kanto):
    _team, alice, _bob, _manager = kanto
    client.force_login(alice)

    response = client.post(URL, {"action": "holiday"}, **HTMX)

    assert response.status_code == 422
    assert "Choose “away” or “I&#x27;m back”." in response.content.decode()
    assert not RepProfile.objects.filter(user=alice).exists()


def test_another_users_id_in_the_post_changes_only_the_caller(client, kanto):
    _team, alice, bob, _manager = kanto
    client.force_login(alice)

    response = client.post(
        URL, {"action": "away", "user": bob.pk, "rep": bob.pk, "user_id": bob.pk}
    )

    assert response.status_code == 302
    assert RepProfile.objects.get(user=alice).away is True
    assert not RepProfile.objects.filter(user=bob).exists()


def test_another_users_id_cannot_bring_them_back(client, kanto):
    _team, alice, bob, _manager = kanto
    set_profile(bob, away=True)
    client.force_login(alice)

    client.post(URL, {"action": "back", "user": bob.pk})

    assert RepProfile.objects.get(user=bob).away is True


def test_users_in_no_team_get_403(client, db):
    marketer = UserFactory(username="mkt", roles=[MARKETING])
    client.force_login(marketer)

    assert client.post(URL, {"action": "away"}).status_code == 403
    assert not RepProfile.objects.exists()


def test_anonymous_is_sent_to_log_in(client, db):
    response = client.post(URL, {"action": "away"})

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_get_is_not_allowed(client, kanto):
    _team, alice, _bob, _manager = kanto
    client.force_login(alice)

    assert client.get(URL).status_code == 405


def test_back_with_htmx_and_an_empty_queue_swaps_in_place(client, kanto):
    _team, alice, _bob, _manager = kanto
    set_profile(alice, away=True)
    client.force_login(alice)

    response = client.post(URL, {"action": "back"}, **HTMX)

    assert response.status_code == 200
    body = response.content.decode()
    assert '<span id="availability-status" class="status status-available">Available</span>' in (
        body
    )
    assert '<p class="flash" role="status">Welcome back: new MQLs come to you again.</p>' in body
    assert RepProfile.objects.get(user=alice).away is False


def test_back_with_a_queue_reloads_the_inbox_with_the_new_mqls(client, kanto):
    team, alice, bob, _manager = kanto
    queued = _queue(team, [alice, bob], 2)
    client.force_login(alice)

    response = client.post(URL, {"action": "back"}, **HTMX)

    assert response.status_code == 200
    assert response["HX-Redirect"] == "/inbox/"
    page = client.get("/inbox/")
    assert [h.pk for h in page.context["mine"]] == [h.pk for h in queued]
    assert (
        "Welcome back: new MQLs come to you again. 2 MQLs from the team queue are now yours."
        in page.content.decode()
    )


def test_back_with_a_plain_post_redirects_with_the_count(client, kanto):
    team, alice, bob, _manager = kanto
    _queue(team, [alice, bob], 1)
    client.force_login(alice)

    response = client.post(URL, {"action": "back"}, follow=True)

    assert response.redirect_chain == [("/inbox/", 302)]
    assert "1 MQL from the team queue is now yours." in response.content.decode()
    assert (
        Handoff.objects.filter(assigned_to=alice, status=HandoffStatus.OPEN).count(),
        Handoff.objects.filter(assigned_to__isnull=True).count(),
    ) == (1, 0)


# --- the managers' queue count -----------------------------------------------------------


def test_managers_see_the_queue_count_at_the_top_of_the_inbox(client, kanto):
    team, alice, bob, manager = kanto
    _queue(team, [alice, bob], 2)

    client.force_login(manager)
    body = client.get("/inbox/").content.decode()
    assert (
        '<p class="queue-alert" id="queue-alert" role="status"><a href="#queue-title">'
        "2 MQLs wait in the team queue: nobody could take them.</a></p>"
    ) in body
    # At the top: above every section (a manager who is no rep has no "mine" section).
    assert body.index('id="queue-alert"') < body.index("<section")

    client.force_login(alice)
    assert 'id="queue-alert"' not in client.get("/inbox/").content.decode()


def test_no_queue_alert_when_the_queue_is_empty(client, kanto):
    _team, _alice, _bob, manager = kanto
    client.force_login(manager)

    assert 'id="queue-alert"' not in client.get("/inbox/").content.decode()


def test_a_refused_comeback_is_a_form_error_not_a_500(client, kanto, monkeypatch):
    # E.g. the rep was taken out of their last team between the page and the click.
    _team, alice, _bob, _manager = kanto
    set_profile(alice, away=True)

    def refuse(**kwargs):
        raise DomainError("kanto-rep1 is not a rep in any team.", code="not_a_rep")

    monkeypatch.setattr(availability, "rep_set_back", refuse)
    client.force_login(alice)

    response = client.post(URL, {"action": "back"}, **HTMX)

    assert response.status_code == 422
    assert '<div class="form-errors" role="alert"><p>kanto-rep1 is not a rep in any team.</p>' in (
        response.content.decode()
    )
    assert RepProfile.objects.get(user=alice).away is True


def test_the_assign_queue_button_shows_only_for_teams_with_a_queue(client, kanto):
    team, alice, bob, manager = kanto
    kansai, _reps, _ = make_team("Kansai", reps=1, manager=False)
    kansai.managers.add(manager)
    client.force_login(manager)

    empty = client.get("/inbox/").content.decode()
    assert "queue</button>" not in empty
    assert empty.count("/assign-queue/") == 0

    _queue(team, [alice, bob], 1)
    body = client.get("/inbox/").content.decode()

    assert "Assign Kanto's queue</button>" in body
    assert "Assign Kansai's queue" not in body
