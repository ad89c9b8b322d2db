"""The one handoff list (handoff.filters): search, filters, sort and pages on the inbox,
the list page and the API; the poll of what is new; bulk reassign."""

import datetime as dt

import pytest
from django.urls import reverse

from handoff.models import Assignment, Handoff
from handoff.routing import handoff_bulk_reassign
from leadflow.errors import DomainError
from leadflow.normalize import lead_search_key, search_fold
from sla.models import SlaTimer
from tests.factories import CompanyFactory
from tests.handoff.helpers import make_mql_for, make_team, set_profile

UTC = dt.UTC


@pytest.fixture
def kanto(db):
    return make_team("Kanto", reps=2, default=True)


def _ids(response) -> list[int]:
    return [h.pk for h in response.context["rows"]]


def test_search_fold_makes_kana_width_and_punctuation_alike():
    assert search_fold("ヤマダ") == search_fold("やまだ") == search_fold("ﾔﾏﾀﾞ") == "やまだ"
    assert search_fold("０３－１２３４") == "031234"
    assert (
        lead_search_key(
            last_name="山田",
            first_name="太郎",
            last_name_kana="ヤマダ",
            first_name_kana="タロウ",
            email="Taro@Example.jp",
            phone="03-1234-5678",
        )
        == "山田太郎 やまだたろう taro@examplejp 0312345678 81312345678"
    )


def test_hiragana_finds_the_katakana_name_and_full_width_digits_the_phone(client, kanto):
    _team, (alice, bob), manager = kanto
    yamada = make_mql_for(
        alice, [bob], last_name_kana="ヤマダ", first_name_kana="ハナコ", phone="03-1234-5678"
    )
    other = make_mql_for(
        alice, [bob], last_name="鈴木", last_name_kana="スズキ", phone="06-9999-0000"
    )
    client.force_login(manager)

    by_kana = client.get("/inbox/list/", {"q": "やまだ はなこ"})
    by_phone = client.get("/inbox/list/", {"q": "０３１２３４"})
    by_company = client.get("/inbox/list/", {"q": search_fold(other.lead.company.name)})

    assert _ids(by_kana) == [yamada.pk]
    assert _ids(by_phone) == [yamada.pk]
    assert _ids(by_company) == [other.pk]


def test_a_rep_never_sees_another_reps_handoff_through_any_filter(client, kanto):
    team, (alice, bob), _ = kanto
    mine = make_mql_for(alice, [bob], last_name="共通")
    theirs = make_mql_for(bob, [alice], last_name="共通")
    client.force_login(alice)

    for params in (
        {"q": "共通"},
        {"rep": bob.pk},
        {"team": team.pk, "status": "open"},
        {"kpi": "mqls"},
        {"sla": "on_time"},
    ):
        rows = client.get("/inbox/list/", params).context["rows"]
        assert theirs.pk not in [h.pk for h in rows], params
    api = client.get("/api/v1/handoffs/", {"rep": bob.pk}).json()
    assert api["count"] == 0
    assert [h.pk for h in client.get("/inbox/", {"q": "共通"}).context["mine"]] == [mine.pk]


def test_sla_states_partition_the_handoffs_by_their_timers(client, kanto, settings):
    _team, (alice, bob), manager = kanto
    overdue, today, later, met = (make_mql_for(alice, [bob]) for _ in range(4))
    now = dt.datetime.now(UTC)
    SlaTimer.objects.filter(handoff=overdue, kind="first_contact").update(
        due_at=now - dt.timedelta(hours=1)
    )
    SlaTimer.objects.filter(handoff=today).update(due_at=now + dt.timedelta(seconds=30))
    SlaTimer.objects.filter(handoff=later).update(due_at=now + dt.timedelta(days=3))
    SlaTimer.objects.filter(handoff=overdue, kind="verdict").update(
        due_at=now + dt.timedelta(days=3)
    )
    SlaTimer.objects.filter(handoff=met).update(met_at=now, status="met")
    client.force_login(manager)

    def state(value):
        return set(_ids(client.get("/inbox/list/", {"sla": value})))

    assert state("overdue") == {overdue.pk}
    # 30 seconds ahead is today unless the test runs in the last 30 s before midnight.
    assert state("due_today") | state("on_time") == {today.pk, later.pk}
    assert later.pk in state("on_time")
    assert state("met") == {met.pk}


def test_sort_and_pages_keep_the_state_in_the_url(client, kanto):
    _team, (alice, bob), manager = kanto
    set_profile(alice, max_open_handoffs=100)
    made = [
        make_mql_for(alice, [bob], company=CompanyFactory(name=f"社{n:02d}")) for n in range(27)
    ]
    client.force_login(manager)

    first = client.get("/inbox/list/", {"sort": "company", "view": "table"})
    second = client.get("/inbox/list/", {"sort": "company", "view": "table", "page": 2})

    assert _ids(first) == [h.pk for h in made[:25]]
    assert _ids(second) == [h.pk for h in made[25:]]
    body = first.content.decode()
    assert 'href="?sort=company&amp;view=table&amp;page=2"' in body
    assert first.context["listing"].total == 27


@pytest.mark.parametrize(
    "params, field, api_status, api_code",
    [
        ({"sla": "late-ish"}, "sla", 400, "validation_error"),
        ({"sort": "random"}, "sort", 400, "validation_error"),
        ({"mql_from": "2026-02-30"}, "mql_from", 400, "validation_error"),
        # Well-formed parameters a rule across them refuses: the API's 422.
        ({"mql_from": "2026-03-02", "mql_to": "2026-03-01"}, "mql_from", 422, "invalid_params"),
        ({"fit_min": "50", "fit_max": "10"}, "fit_min", 422, "invalid_params"),
        ({"kpi": "nonsense"}, "kpi", 422, "invalid_params"),
        ({"team": "1e308"}, "team", 400, "validation_error"),
        ({"q": "x" * 101}, "q", 400, "validation_error"),
    ],
)
def test_bad_parameters_are_a_form_error_on_the_page_and_a_4xx_in_the_api(
    client, kanto, params, field, api_status, api_code
):
    _team, (alice, _bob), _ = kanto
    client.force_login(alice)

    page = client.get("/inbox/list/", params)
    api = client.get("/api/v1/handoffs/", params)

    assert page.status_code == 400
    assert field in page.context["listing"].filterset.form.errors
    assert api.status_code == api_status
    assert api.json()["error"]["code"] == api_code
    assert field in api.json()["error"]["fields"]


@pytest.mark.parametrize("count", [2, 12])
def test_list_page_queries_are_constant_in_rows(client, kanto, count, django_assert_num_queries):
    _team, (alice, bob), manager = kanto
    for _ in range(count):
        make_mql_for(alice, [bob])
    client.force_login(manager)

    # session, user, roles, managed teams, count, page, filter teams, filter reps
    with django_assert_num_queries(8):
        response = client.get("/inbox/list/", {"view": "table", "q": "山田", "sla": "on_time"})
    assert len(response.context["rows"]) == count


@pytest.mark.parametrize("count", [2, 12])
def test_api_list_queries_are_constant_in_rows(client, kanto, count, django_assert_num_queries):
    _team, (alice, bob), manager = kanto
    for _ in range(count):
        make_mql_for(alice, [bob])
    client.force_login(manager)

    # session, user, roles, managed teams, count, page
    with django_assert_num_queries(6):
        response = client.get("/api/v1/handoffs/", {"q": "山田", "sort": "urgency"})
    assert response.json()["count"] == count


def test_the_poll_answers_304_until_something_changes_then_lists_it(client, kanto):
    _team, (alice, bob), _ = kanto
    make_mql_for(alice, [bob])
    client.force_login(alice)
    page = client.get("/inbox/")
    params = page.context["live_params"]

    quiet = client.get("/inbox/live/", params)
    again = client.get("/inbox/live/", params, HTTP_IF_NONE_MATCH=quiet["ETag"])
    new = make_mql_for(alice, [bob], last_name="新人")
    changed = client.get("/inbox/live/", params, HTTP_IF_NONE_MATCH=quiet["ETag"])

    assert quiet.status_code == 200 and "live-news" not in quiet.content.decode()
    assert again.status_code == 304
    assert changed.status_code == 200
    assert changed["ETag"] != quiet["ETag"]
    assert f'href="/inbox/handoffs/{new.pk}/"' in changed.content.decode()
    assert 'data-testid="live-count">1<' in changed.content.decode()


def test_bulk_reassign_writes_one_assignment_each_with_the_reason(client, kanto):
    _team, (alice, bob), manager = kanto
    first, second = make_mql_for(alice, [bob]), make_mql_for(alice, [bob])
    client.force_login(manager)

    response = client.post(
        "/inbox/bulk-reassign/",
        {
            "handoff": [first.pk, second.pk],
            "rep": bob.pk,
            "reason": "休暇の代行",
            "next": "/inbox/list/",
        },
    )

    assert response.status_code == 302
    rows = Assignment.objects.filter(handoff__in=[first, second], via="manual")
    assert sorted((a.handoff_id, a.rep_id, a.previous_rep_id, a.by_id, a.reason) for a in rows) == [
        (first.pk, bob.pk, alice.pk, manager.pk, "休暇の代行"),
        (second.pk, bob.pk, alice.pk, manager.pk, "休暇の代行"),
    ]
    client.force_login(bob)
    assert "休暇の代行" in client.get(reverse("handoff:detail", args=[first.pk])).content.decode()


def test_bulk_reassign_by_round_robin_and_a_refusal_leaves_the_others_moved(kanto):
    _team, (alice, bob), manager = kanto
    first, decided = make_mql_for(alice, [bob]), make_mql_for(alice, [bob])
    Handoff.objects.filter(pk=decided.pk).update(status="rejected")

    result = handoff_bulk_reassign(
        handoffs=[first, decided], to_rep=None, actor=manager, reason="負荷分散"
    )

    assert [h.pk for h in result.moved] == [first.pk]
    assert Handoff.objects.get(pk=first.pk).assigned_to == bob
    assert list(result.refused) == [decided.pk]
    assert Assignment.objects.filter(handoff=decided, via="manual").count() == 0


def test_bulk_reassign_needs_a_reason(kanto):
    _team, (alice, bob), manager = kanto
    handoff = make_mql_for(alice, [bob])
    with pytest.raises(DomainError) as error:
        handoff_bulk_reassign(handoffs=[handoff], to_rep=bob, actor=manager, reason=" ")
    assert error.value.code == "reason_required"
    assert Handoff.objects.get(pk=handoff.pk).assigned_to == alice
