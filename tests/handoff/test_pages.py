import pytest
from django.urls import reverse

from handoff import selectors
from handoff.models import Activity, Handoff, HandoffStatus, RejectionReason
from handoff.selectors import LeadScores, ScoreLine
from leadflow.models import Lead, Stage
from leadflow.roles import MARKETING
from tests.factories import EngagementEventFactory, UserFactory
from tests.handoff.helpers import make_mql, make_team, retime, set_profile


@pytest.fixture
def kanto(db):
    team, reps, manager = make_team("Kanto", reps=2, default=True)
    return team, reps, manager


def _mine(rep, count):
    """`count` handoffs assigned to `rep`: the other reps are made away meanwhile."""
    others = [m.rep for m in rep.team_memberships.get().team.memberships.exclude(rep=rep)]
    for other in others:
        set_profile(other, away=True)
    handoffs = [make_mql() for _ in range(count)]
    for other in others:
        set_profile(other, away=False)
    assert all(h.assigned_to == rep for h in handoffs)
    return handoffs


def detail_url(handoff, action=""):
    name = "handoff:detail" if not action else f"handoff:{action}"
    return reverse(name, args=[handoff.pk])


def test_inbox_needs_a_login(client, db):
    response = client.get("/inbox/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_rep_sees_only_their_own_open_handoffs(client, kanto):
    _team, (alice, bob), _ = kanto
    own = _mine(alice, 2)
    theirs = _mine(bob, 1)
    client.force_login(alice)

    response = client.get("/inbox/")

    assert response.status_code == 200
    assert [h.pk for h in response.context["mine"]] == [h.pk for h in own]
    body = response.content.decode()
    assert detail_url(own[0]) in body
    assert detail_url(theirs[0]) not in body
    assert "Team queue" not in body


def test_inbox_order_is_the_nearest_sla_deadline_first(client, kanto):
    # The order is sla's (registered into handoff.selectors): the nearest due time of a
    # timer not yet met. All three MQLs came in together (first contact due in 24 h);
    # [0] had its first call, so its next deadline is the verdict, days later; [2]'s
    # first contact is due earlier than [1]'s.
    from sla.models import SlaTimer

    _team, (alice, _bob), _ = kanto
    handoffs = _mine(alice, 3)
    Activity.objects.create(handoff=handoffs[0], kind="call", outcome="reached", by=alice)
    retime(
        SlaTimer.objects.filter(handoff=handoffs[0], kind="first_contact"),
        met_at=handoffs[0].created_at,
        status="met",
    )
    first_contact = SlaTimer.objects.get(handoff=handoffs[1], kind="first_contact")
    retime(
        SlaTimer.objects.filter(handoff=handoffs[2], kind="first_contact"),
        due_at=first_contact.due_at.replace(year=2020),
    )
    client.force_login(alice)

    response = client.get("/inbox/")

    assert [h.pk for h in response.context["mine"]] == [
        handoffs[2].pk,
        handoffs[1].pk,
        handoffs[0].pk,
    ]


def test_another_reps_handoff_is_a_404_for_every_url(client, kanto):
    _team, (alice, bob), _ = kanto
    (theirs,) = _mine(bob, 1)
    client.force_login(alice)

    assert client.get(detail_url(theirs)).status_code == 404
    for action in ("activity-create", "accept", "reject", "reassign", "stage"):
        assert client.post(detail_url(theirs, action), {}).status_code == 404
    assert client.get(reverse("handoff:detail", args=[999999])).status_code == 404
    assert Handoff.objects.get(pk=theirs.pk).status == HandoffStatus.OPEN


def test_the_manager_sees_team_handoffs_and_the_queue_and_reassigns(client, kanto):
    _team, (alice, bob), manager = kanto
    (handoff,) = _mine(alice, 1)
    set_profile(alice, away=True)
    set_profile(bob, away=True)
    queued = make_mql()
    other_team_handoff = make_mql_in_other_team()
    client.force_login(manager)

    inbox = client.get("/inbox/")
    assert [h.pk for h in inbox.context["queue"]] == [queued.pk]
    assert [h.pk for h in inbox.context["team_open"]] == [handoff.pk]
    assert client.get(detail_url(other_team_handoff)).status_code == 404

    response = client.post(
        detail_url(handoff, "reassign"), {"rep": bob.pk, "reason": "Alice is on leave"}
    )
    assert response.status_code == 302
    assert Handoff.objects.get(pk=handoff.pk).assigned_to == bob

    response = client.post(detail_url(queued, "reassign"), {"rep": alice.pk, "reason": ""})
    assert response.status_code == 302
    assert Handoff.objects.get(pk=queued.pk).assigned_to == alice


def make_mql_in_other_team():
    from handoff.models import RoutingRule

    other, _reps, _ = make_team("Kyushu", reps=1)
    rule = RoutingRule.objects.create(name="kyushu", order=1, team=other)
    handoff = make_mql()
    rule.delete()
    return handoff


def test_reassign_without_reason_shows_the_error_in_the_form(client, kanto):
    _team, (alice, bob), manager = kanto
    (handoff,) = _mine(alice, 1)
    client.force_login(manager)

    response = client.post(detail_url(handoff, "reassign"), {"rep": bob.pk, "reason": ""})

    assert response.status_code == 422
    assert response.context["reassign_form"].errors == {
        "reason": ["Say why the handoff moves to another rep."]
    }
    assert Handoff.objects.get(pk=handoff.pk).assigned_to == alice


def test_the_manager_assigns_the_team_queue_with_one_button(client, kanto):
    team, (alice, bob), manager = kanto
    set_profile(alice, away=True)
    set_profile(bob, away=True)
    queued = make_mql()
    set_profile(bob, away=False)
    client.force_login(manager)

    response = client.post(reverse("handoff:team-assign-queue", args=[team.pk]), follow=True)

    assert Handoff.objects.get(pk=queued.pk).assigned_to == bob
    assert "1 queued handoff of Kanto assigned." in response.content.decode()


def test_the_queue_button_counts_in_english_plurals_and_in_japanese(client, kanto):
    team, (alice, bob), manager = kanto
    set_profile(alice, away=True)
    set_profile(bob, away=True)
    make_mql(), make_mql(), make_mql()
    set_profile(bob, away=False)
    client.force_login(manager)
    url = reverse("handoff:team-assign-queue", args=[team.pk])

    english = client.post(url, follow=True).content.decode()
    set_profile(bob, away=True)
    make_mql()
    set_profile(bob, away=False)
    japanese = client.post(url, follow=True, HTTP_ACCEPT_LANGUAGE="ja").content.decode()

    assert "3 queued handoffs of Kanto assigned." in english
    assert "Kanto のキューから1件を割り当てました。" in japanese


def test_a_rep_cannot_press_the_queue_button(client, kanto):
    team, (alice, _bob), _ = kanto
    client.force_login(alice)
    assert client.post(reverse("handoff:team-assign-queue", args=[team.pk])).status_code == 404


def test_marketing_reads_but_cannot_act(client, kanto):
    _team, (alice, _bob), _ = kanto
    (handoff,) = _mine(alice, 1)
    marketer = UserFactory(username="mk", roles=[MARKETING])
    client.force_login(marketer)

    assert handoff in client.get("/inbox/").context["marketing_open"]
    page = client.get(detail_url(handoff))
    assert page.status_code == 200
    assert 'id="accept-form"' not in page.content.decode()
    response = client.post(detail_url(handoff, "accept"), {"budget": "on", "need": "on"})
    assert response.status_code == 403
    assert Handoff.objects.get(pk=handoff.pk).status == HandoffStatus.OPEN


def test_marketing_gets_a_page_for_marketing_not_the_reps_to_do_list(client, kanto):
    _team, (alice, _bob), _ = kanto
    _mine(alice, 1)
    client.force_login(UserFactory(username="mk", roles=[MARKETING]))

    response = client.get("/inbox/")

    body = response.content.decode()
    assert response.context["works_handoffs"] is False
    assert "My open handoffs" not in body
    assert "accept it as an SQL (BANT)" not in body
    assert "The MQLs marketing has handed to sales, and where each one stands." in body
    assert 'href="/dashboard/"' in body
    assert 'href="/admin/scoring/scoringmodel/"' in body


def test_a_manager_outside_the_teams_rep_list_gets_the_managers_intro(client, kanto):
    _team, _reps, manager = kanto
    client.force_login(manager)

    body = client.get("/inbox/").content.decode()

    assert "My open handoffs" not in body
    assert "accept it as an SQL (BANT)" not in body
    assert "Your teams' MQLs: the queue no rep could take" in body


def test_a_user_in_no_team_and_no_role_is_told_why_the_page_is_empty(client, db):
    client.force_login(UserFactory(username="nobody"))

    body = client.get("/inbox/").content.decode()

    assert "My open handoffs" not in body
    assert "You are not in a sales team, so no MQLs are handed to you." in body


def test_a_rep_still_gets_the_reps_intro_and_list_when_it_is_empty(client, kanto):
    _team, (alice, _bob), _ = kanto
    client.force_login(alice)

    body = client.get("/inbox/").content.decode()

    assert "accept it as an SQL (BANT)" in body
    assert "My open handoffs" in body
    assert "No open handoffs for you right now." in body


def test_log_an_activity_with_a_plain_post(client, kanto):
    _team, (alice, _bob), _ = kanto
    (handoff,) = _mine(alice, 1)
    client.force_login(alice)

    response = client.post(
        detail_url(handoff, "activity-create"),
        {"kind": "call", "outcome": "reached", "note": "担当者と話せた"},
        follow=True,
    )

    assert response.redirect_chain == [(detail_url(handoff), 302)]
    assert "Logged: Call (Reached the person)." in response.content.decode()
    activity = Activity.objects.get(handoff=handoff)
    assert (activity.kind, activity.by, activity.note) == ("call", alice, "担当者と話せた")
    assert Handoff.objects.get(pk=handoff.pk).first_contact_at == activity.at


def test_log_an_activity_with_htmx_answers_the_fragment(client, kanto):
    _team, (alice, _bob), _ = kanto
    (handoff,) = _mine(alice, 1)
    client.force_login(alice)

    response = client.post(
        detail_url(handoff, "activity-create"),
        {"kind": "email", "outcome": "left_message"},
        headers={"HX-Request": "true"},
    )

    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<section class="panel" id="activity-section">')
    assert "Logged: E-mail (Left a message)." in body
    assert 'hx-swap-oob="true"' in body


def test_logging_a_call_in_place_clears_a_stale_refusal_on_the_verdict_forms(client, kanto):
    _team, (alice, _bob), _ = kanto
    (handoff,) = _mine(alice, 1)
    client.force_login(alice)
    reason = RejectionReason.objects.get(code="not_reachable")
    refused = client.post(
        detail_url(handoff, "reject"),
        {"reason": reason.pk, "comment": "3回電話したが不在"},
        headers={"HX-Request": "true"},
    )
    assert refused.status_code == 422
    assert "contact attempts" in refused.content.decode()

    # htmx sends the verdict forms' values along (hx-include) with the activity.
    detail = client.get(detail_url(handoff)).content.decode()
    assert 'hx-include="#accept-form, #reject-form"' in detail
    response = client.post(
        detail_url(handoff, "activity-create"),
        {
            "kind": "call",
            "outcome": "no_answer",
            "budget": "on",
            "reason": str(reason.pk),
            "comment": "3回電話したが不在",
        },
        headers={"HX-Request": "true"},
    )

    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="accept-form" hx-swap-oob="true"' in body
    assert 'id="reject-form" hx-swap-oob="true"' in body
    assert "form-errors" not in body and "field-error" not in body
    assert 'name="budget" id="accept_budget" checked' in body
    assert f'<option value="{reason.pk}" selected>' in body
    assert "3回電話したが不在</textarea>" in body


def test_a_failed_activity_leaves_the_verdict_forms_alone(client, kanto):
    _team, (alice, _bob), _ = kanto
    (handoff,) = _mine(alice, 1)
    client.force_login(alice)

    response = client.post(
        detail_url(handoff, "activity-create"), {"kind": "fax"}, headers={"HX-Request": "true"}
    )

    assert response.status_code == 422
    assert "hx-swap-oob" not in response.content.decode()


def test_activity_form_errors_render_in_the_form(client, kanto):
    _team, (alice, _bob), _ = kanto
    (handoff,) = _mine(alice, 1)
    client.force_login(alice)

    response = client.post(detail_url(handoff, "activity-create"), {"kind": "fax"})

    assert response.status_code == 422
    assert set(response.context["activity_form"].errors) == {"kind", "outcome"}
    assert Activity.objects.count() == 0


def test_accept_with_one_bant_answer_shows_the_error_then_two_accept(client, kanto):
    _team, (alice, _bob), _ = kanto
    (handoff,) = _mine(alice, 1)
    client.force_login(alice)

    refused = client.post(detail_url(handoff, "accept"), {"budget": "on"})
    assert refused.status_code == 422
    message = (
        "To accept as SQL, at least 2 of budget, authority, need and timeline must be yes "
        "(1 checked)."
    )
    assert refused.context["accept_form"].non_field_errors() == [message]
    assert message in refused.content.decode()
    assert Lead.objects.get(pk=handoff.lead_id).stage == Stage.MQL

    accepted = client.post(detail_url(handoff, "accept"), {"budget": "on", "need": "on"})
    assert accepted.status_code == 302
    assert Lead.objects.get(pk=handoff.lead_id).stage == Stage.SQL
    # The confirmation names the lead as the page does, without "<address>".
    lead = handoff.lead
    assert [str(m) for m in client.get(accepted["Location"]).context["messages"]] == [
        f"Accepted: {lead.last_name} {lead.first_name} is now an SQL."
    ]


def test_accept_errors_with_htmx_come_back_as_the_form(client, kanto):
    _team, (alice, _bob), _ = kanto
    (handoff,) = _mine(alice, 1)
    client.force_login(alice)

    response = client.post(
        detail_url(handoff, "accept"), {"need": "on"}, headers={"HX-Request": "true"}
    )

    assert response.status_code == 422
    assert response.content.decode().lstrip().startswith("<form")
    assert "(1 checked)" in response.content.decode()


def test_accept_with_htmx_redirects_the_page(client, kanto):
    _team, (alice, _bob), _ = kanto
    (handoff,) = _mine(alice, 1)
    client.force_login(alice)

    response = client.post(
        detail_url(handoff, "accept"),
        {"need": "on", "timeline": "on"},
        headers={"HX-Request": "true"},
    )

    assert response.status_code == 200
    assert response["HX-Redirect"] == detail_url(handoff)


def test_reject_without_reason_then_with_recycles_the_lead(client, kanto):
    _team, (alice, _bob), _ = kanto
    (handoff,) = _mine(alice, 1)
    client.force_login(alice)

    refused = client.post(detail_url(handoff, "reject"), {"reason": "", "comment": ""})
    assert refused.status_code == 422
    assert refused.context["reject_form"].errors == {
        "reason": ["Choose a reason."],
        "comment": ["Write a comment for marketing."],
        "__all__": [
            "A rejection needs a reason and a comment, so marketing knows what to do next."
        ],
    }
    assert Lead.objects.get(pk=handoff.lead_id).stage == Stage.MQL

    reason = RejectionReason.objects.get(code="competitor")
    done = client.post(
        detail_url(handoff, "reject"),
        {"reason": reason.pk, "comment": "他社で決定済み"},
        follow=True,
    )
    assert Lead.objects.get(pk=handoff.lead_id).stage == Stage.RECYCLED
    body = done.content.decode()
    assert "Recycled (nurture)" in body
    assert "Competitor" in body
    lead = handoff.lead
    assert [str(m) for m in done.context["messages"]] == [
        f"Rejected: {lead.last_name} {lead.first_name} goes back to marketing for nurture."
    ]


def test_after_sql_the_rep_records_opportunity_and_lost(client, kanto):
    _team, (alice, _bob), _ = kanto
    (handoff,) = _mine(alice, 1)
    client.force_login(alice)
    client.post(detail_url(handoff, "accept"), {"budget": "on", "need": "on"})

    client.post(detail_url(handoff, "stage"), {"to": "opportunity"})
    assert Lead.objects.get(pk=handoff.lead_id).stage == Stage.OPPORTUNITY
    refused = client.post(detail_url(handoff, "stage"), {"to": "lost", "reason": ""})
    assert refused.status_code == 422
    client.post(detail_url(handoff, "stage"), {"to": "lost", "reason": "価格で失注"})
    assert Lead.objects.get(pk=handoff.lead_id).stage == Stage.RECYCLED


def test_the_page_shows_scores_from_the_one_selector(client, kanto, monkeypatch):
    _team, (alice, _bob), _ = kanto
    (handoff,) = _mine(alice, 1)
    monkeypatch.setattr(
        selectors,
        "lead_scores_for",
        lambda *, lead_ids: {
            handoff.lead_id: LeadScores(
                fit=42,
                engagement=65,
                fit_explanation=[ScoreLine("Manufacturing", 15)],
                engagement_explanation=[ScoreLine("Pricing page view", 15)],
            )
        },
    )
    client.force_login(alice)

    for url in ("/inbox/", detail_url(handoff)):
        body = client.get(url).content.decode()
        assert '<span class="score-value">42</span>' in body
        assert '<span class="score-value">65</span>' in body
        assert "<span>Pricing page view</span><b>+15</b>" in body


def test_without_scores_the_page_says_so(client, kanto):
    _team, (alice, _bob), _ = kanto
    (handoff,) = _mine(alice, 1)
    client.force_login(alice)
    assert "No score yet." in client.get(detail_url(handoff)).content.decode()


@pytest.mark.parametrize("count", [2, 20])
def test_inbox_queries_do_not_grow_with_the_number_of_handoffs(
    client, kanto, count, django_assert_num_queries
):
    _team, (alice, _bob), _ = kanto
    for handoff in _mine(alice, count):
        EngagementEventFactory.create_batch(3, lead=handoff.lead)
        Activity.objects.create(handoff=handoff, kind="call", outcome="reached", by=alice)
    client.force_login(alice)

    # session, user, roles, managed teams, the rep's own availability, the count of the
    # list, handoffs, their events, their activities, scores, the live poll's mark
    with django_assert_num_queries(11):
        response = client.get("/inbox/")
    assert len(response.context["mine"]) == count


@pytest.mark.parametrize("count", [2, 20])
def test_inbox_with_real_scores_stays_at_the_same_query_count(
    client, kanto, count, django_assert_num_queries
):
    from scoring.services import lead_score_recompute, published_model

    _team, (alice, _bob), _ = kanto
    for handoff in _mine(alice, count):
        EngagementEventFactory.create_batch(2, lead=handoff.lead, kind="email_click")
        lead_score_recompute(lead=handoff.lead)
    published_model()  # compiles the published model, which is then cached per process
    client.force_login(alice)

    with django_assert_num_queries(11):  # as above
        response = client.get("/inbox/")

    body = response.content.decode()
    assert body.count("メールクリック ×2") + body.count("Email click ×2") >= count


@pytest.mark.parametrize("count", [2, 20])
def test_manager_inbox_queries_do_not_grow_either(client, kanto, count, django_assert_num_queries):
    _team, (alice, bob), manager = kanto
    _mine(alice, count // 2)
    _mine(bob, count // 2)
    set_profile(alice, away=True)
    set_profile(bob, away=True)
    for _ in range(count):
        make_mql()
    client.force_login(manager)

    # session, user, roles, managed teams, availability, own handoffs (none), queue's cards
    # + their events + their activities, the queue's count, its waves, its teams, the team
    # table's count and page, the filter's teams and reps, scores, the live poll's mark
    with django_assert_num_queries(18):
        response = client.get("/inbox/")
    assert len(response.context["queue"]) == count
    assert len(response.context["team_open"]) == count
