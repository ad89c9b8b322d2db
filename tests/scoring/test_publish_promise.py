"""What the preview promises is what the publish does: the same policy (stage, cool-down
after a recycle, a hand raised before the recycle) decides both, and the leads the draft
changes are listed with their scores, their stage and the rules that make the
difference, paged and searchable."""

import datetime as dt

import pytest
import time_machine

from leadflow.lifecycle import lead_transition
from leadflow.models import Stage, StageTransition
from scoring import selectors
from scoring.models import EngagementRule, RescoreRun
from scoring.selectors import scoring_model_changes, scoring_model_preview
from scoring.services import (
    preview_run_execute,
    preview_run_start,
    rescore_run_execute,
    scoring_model_clone,
    scoring_model_publish,
)
from tests.factories import CompanyFactory, EngagementEventFactory, LeadFactory
from tests.scoring.conftest import T0, make_model, publish

DAY = dt.timedelta(days=1)
NOW = T0 + 100 * DAY


def events(lead, kind, n, start=T0):
    for i in range(n):
        EngagementEventFactory(lead=lead, kind=kind, occurred_at=start + dt.timedelta(hours=i))


def walk(lead, *moves):
    for stage, days_ago in moves:
        lead_transition(lead=lead, to_stage=stage, actor="test", at=NOW - days_ago * DAY)


@pytest.fixture
def studio(db):
    """Published: seminar 15, page view 10, MQL at fit 30 and engagement 50, consultation
    is a hand-raiser at fit 20, 30 days' cool-down. The draft, cloned from it: seminar 30
    and MQL at engagement 45. Every lead but `lowfit` is a manager (fit 30)."""
    published = make_model(
        fit=[
            {"label": "部長・課長", "field": "role", "operator": "equals", "value": "manager"}
            | {"points": 30}
        ],
        engagement=[
            {"label": "セミナー参加", "kind": "seminar_attendance", "points": 15},
            {"label": "ページ閲覧", "kind": "page_view", "points": 10},
        ],
        fit_threshold=30,
        engagement_threshold=50,
        hand_raiser_kind="consultation",
        hand_raiser_min_fit=20,
        recycle_cooldown_days=30,
    )
    publish(published)
    draft = scoring_model_clone(source=published)
    draft.engagement_threshold = 45
    draft.save()
    seminar = EngagementRule.objects.get(model=draft, kind="seminar_attendance")
    seminar.points = 30
    seminar.save()

    def lead(name, **fields):
        fields.setdefault("role", "manager")
        return LeadFactory(email=f"{name}@example.jp", **fields)

    leads = {
        "a": lead("a"),
        "b": lead(
            "b", last_name="佐藤", first_name="花子", company=CompanyFactory(name="東京精密")
        ),
        "c": lead("c"),
        "d": lead("d"),
        "cooling": lead("cooling"),
        "cooled": lead("cooled"),
        "mql": lead("mql"),
        "sql": lead("sql"),
        "oldhand": lead("oldhand"),
        "disq": lead("disq"),
        "lowfit": lead("lowfit", role="staff"),
    }
    events(leads["a"], "seminar_attendance", 2)  # 30 → 60: moves
    events(leads["b"], "seminar_attendance", 1)  # 15 + 20 = 35 → 30 + 20 = 50: moves
    events(leads["b"], "page_view", 2)
    events(leads["c"], "seminar_attendance", 1)  # 15 + 30 = 45 → 60: moves
    events(leads["c"], "page_view", 3)
    events(leads["d"], "seminar_attendance", 1)  # 15 → 30: below 45 still
    for name in ("cooling", "cooled", "mql", "sql", "disq", "lowfit"):
        events(leads[name], "seminar_attendance", 2 if name != "lowfit" else 3)  # → 60 (90)
    events(leads["oldhand"], "consultation", 1, start=NOW - 45 * DAY)
    walk(leads["cooling"], ("mql", 20), ("recycled", 10))  # inside the 30-day cool-down
    walk(leads["cooled"], ("mql", 50), ("recycled", 40))  # past it: moves
    walk(leads["mql"], ("mql", 5))
    walk(leads["sql"], ("mql", 5), ("sql", 4))
    walk(leads["oldhand"], ("mql", 44), ("recycled", 40))  # its hand-raise predates this
    walk(leads["disq"], ("disqualified", 3))
    return published, draft, leads


@pytest.mark.django_db
def test_the_preview_reports_each_outcome_apart(studio):
    _published, draft, _leads = studio

    preview = scoring_model_preview(draft=draft, as_of=NOW)

    assert preview.total_leads == 11
    d = preview.now_draft
    # a, b, c, cooling, cooled, mql, sql, oldhand (its hand-raise), disq
    assert d.qualify == 9
    assert (d.moves, d.with_sales, d.cooling, d.old_hand, d.other_stage) == (4, 2, 1, 1, 1)
    p = preview.now_published
    assert (p.qualify, p.moves, p.old_hand) == (1, 0, 1)  # only oldhand, by its hand-raise
    assert (preview.gained, preview.lost, preview.mql_change) == (8, 0, "+8")


@pytest.mark.django_db
def test_publishing_moves_exactly_the_leads_the_preview_promised(studio):
    _published, draft, leads = studio
    with time_machine.travel(NOW, tick=False):
        promised = scoring_model_preview(draft=draft, backtest=False).now_draft.moves
        listed = scoring_model_changes(draft=draft, only=selectors.MOVES)

        run = scoring_model_publish(model=draft)
        rescore_run_execute(run_id=run.pk)

    run = RescoreRun.objects.get(pk=run.pk)
    moved = StageTransition.objects.filter(to_stage=Stage.MQL, actor_system="scoring")
    assert promised == 4
    assert run.moved_to_mql == 4
    assert (
        {t.lead.email for t in moved}
        == {c.email for c in listed.leads}
        == {
            "a@example.jp",
            "b@example.jp",
            "c@example.jp",
            "cooled@example.jp",
        }
    )
    for name, stage in {
        "cooling": Stage.RECYCLED,
        "oldhand": Stage.RECYCLED,
        "sql": Stage.SQL,
    }.items():
        leads[name].refresh_from_db()
        assert leads[name].stage == stage


@pytest.mark.django_db
def test_the_changed_leads_are_paged_in_a_stable_order(studio):
    _published, draft, _leads = studio

    first = scoring_model_changes(draft=draft, as_of=NOW, per_page=3)
    last = scoring_model_changes(draft=draft, as_of=NOW, per_page=3, page=3)
    past_the_end = scoring_model_changes(draft=draft, as_of=NOW, per_page=3, page=9)

    # All 8 gained; draft score 90 for all but b (80), then by id.
    assert (first.total, first.pages, first.has_next, first.has_previous) == (8, 3, True, False)
    assert [c.email for c in first.leads] == ["a@example.jp", "c@example.jp", "cooling@example.jp"]
    assert (first.first_index, first.last_index) == (1, 3)
    assert [c.email for c in last.leads] == ["disq@example.jp", "b@example.jp"]
    assert (last.first_index, last.last_index, last.has_next) == (7, 8, False)
    assert (past_the_end.page, len(past_the_end.leads)) == (1, 3)


@pytest.mark.django_db
def test_a_changed_lead_shows_name_company_stage_scores_and_the_rules_that_differ(studio):
    _published, draft, _leads = studio

    found = scoring_model_changes(draft=draft, as_of=NOW, search="佐藤")

    assert found.total == 1
    b = found.leads[0]
    assert (b.name, b.company, b.stage, b.email) == (
        "佐藤 花子",
        "東京精密",
        Stage.KNOWN,
        "b@example.jp",
    )
    assert (b.published_fit, b.published_engagement) == (30, 35)
    assert (b.draft_fit, b.draft_engagement) == (30, 50)
    assert (b.published_outcome, b.draft_outcome, b.gained) == (None, selectors.MOVES, True)
    # The page views give 20 under both models: only the seminar rule differs.
    assert [(r.label, r.before, r.after, r.delta) for r in b.rules] == [
        ("セミナー参加", 15, 30, 15)
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("search", "emails"),
    [
        ("東京精密", ["b@example.jp"]),
        ("COOLED@", ["cooled@example.jp"]),  # letter case is ignored
        ("  佐藤   花子 ", ["b@example.jp"]),  # spaces are squeezed
        ("100%", []),  # LIKE wildcards are literal
        ("nobody", []),
    ],
)
def test_the_changed_leads_are_searchable(studio, search, emails):
    _published, draft, _leads = studio

    found = scoring_model_changes(draft=draft, as_of=NOW, search=search)

    assert ([c.email for c in found.leads], found.total) == (emails, len(emails))


@pytest.mark.django_db
def test_the_list_can_show_one_draft_outcome(studio):
    _published, draft, _leads = studio

    waiting = scoring_model_changes(draft=draft, as_of=NOW, only=selectors.COOLING)
    stale = scoring_model_changes(draft=draft, as_of=NOW, only=selectors.OLD_HAND)
    with_sales = scoring_model_changes(draft=draft, as_of=NOW, only=selectors.WITH_SALES)

    assert [c.email for c in waiting.leads] == ["cooling@example.jp"]
    # oldhand meets the policy under both models the same way: no rule differs for it.
    assert [(c.email, c.rules) for c in stale.leads] == [("oldhand@example.jp", [])]
    assert {c.email for c in with_sales.leads} == {"mql@example.jp", "sql@example.jp"}
    with pytest.raises(ValueError, match="Unknown filter"):
        scoring_model_changes(draft=draft, as_of=NOW, only="everything")


@pytest.mark.django_db
def test_the_preview_page_states_the_promise_and_lists_the_changed_leads(client, marketer, studio):
    _published, draft, _leads = studio

    with time_machine.travel(NOW, tick=False):
        client.force_login(marketer)  # in the travelled time: the session must not expire
        page = client.get(f"/admin/scoring/scoringmodel/{draft.pk}/preview/")
        fragment = client.get(
            f"/admin/scoring/scoringmodel/{draft.pk}/preview/changes/",
            {"only": selectors.MOVES, "q": "東京"},
        )
        bad_filter = client.get(
            f"/admin/scoring/scoringmodel/{draft.pk}/preview/changes/", {"only": "x", "page": "z"}
        )
        publish_page = client.get(f"/admin/scoring/scoringmodel/{draft.pk}/publish/")

    html = page.content.decode()
    assert "Publishing the draft now moves 4 leads to MQL." in html
    assert f'hx-get="/admin/scoring/scoringmodel/{draft.pk}/preview/changes/"' in html
    assert "Leads 1–8 of 8." in html
    assert "佐藤 花子" in html and "東京精密" in html
    assert "セミナー参加: 15 → 30" in html
    body = fragment.content.decode()
    assert fragment.status_code == 200
    assert body.count("<tr>") == 2  # the header and 佐藤 花子
    assert "佐藤 花子" in body and "Leads 1–1 of 1." in body
    assert "<html" not in body and "<script" not in body
    assert "Leads 1–8 of 8." in bad_filter.content.decode()  # back to the default list
    assert "Publishing now moves 4 leads to MQL." in publish_page.content.decode()


@pytest.mark.django_db
def test_the_preview_page_speaks_japanese(client, marketer, studio, settings):
    _published, draft, _leads = studio
    settings.LANGUAGE_CODE = "ja"

    with time_machine.travel(NOW, tick=False):
        client.force_login(marketer)
        page = client.get(
            f"/admin/scoring/scoringmodel/{draft.pk}/preview/", HTTP_ACCEPT_LANGUAGE="ja"
        )

    html = page.content.decode()
    assert "今この下書きを公開すると、4件のリードがMQLに移行します。" in html
    assert "MQL行動スコア閾値 50→45" in html and "セミナー参加 15→30点" in html
    assert "…リサイクル後の待機期間中: 待機" in html
    assert "8件中 1〜8件目" in html


@pytest.mark.django_db
def test_the_rescore_panel_polls_while_the_run_goes_and_stops_when_it_is_done(
    client, marketer, studio
):
    _published, draft, _leads = studio
    with time_machine.travel(NOW, tick=False):
        client.force_login(marketer)
        run = scoring_model_publish(model=draft)
        url = f"/admin/scoring/rescorerun/{run.pk}/progress/"

        page = client.get(f"/admin/scoring/rescorerun/{run.pk}/change/")
        running = client.get(url)
        rescore_run_execute(run_id=run.pk)
        done = client.get(url)

    html = page.content.decode()
    assert 'src="/static/vendor/htmx/htmx.min.js"' in html
    assert f'hx-get="{url}" hx-trigger="every 2s" hx-swap="outerHTML"' in html
    assert 'hx-trigger="every 2s"' in running.content.decode()
    assert "0% (0 / 11)" in running.content.decode()
    body = done.content.decode()
    assert 'data-status="done"' in body
    assert "hx-trigger" not in body and "hx-get" not in body  # the polling stops here
    assert "100% (11 / 11)" in body and "Moved to MQL: 4" in body  # as promised
    assert "<script" not in body


@pytest.mark.django_db
def test_sales_cannot_read_the_rescore_panel_nor_strangers_the_changes(client, studio):
    from tests.factories import UserFactory

    _published, draft, _leads = studio
    run = scoring_model_publish(model=draft)
    client.force_login(UserFactory(roles=["Sales rep"], is_staff=True))

    assert client.get(f"/admin/scoring/rescorerun/{run.pk}/progress/").status_code == 403
    client.logout()
    changes = client.get(f"/admin/scoring/scoringmodel/{draft.pk}/preview/changes/")
    assert (changes.status_code, changes["Location"].split("?")[0]) == (302, "/admin/login/")


def _publish_page(client, draft):
    page = client.get(f"/admin/scoring/scoringmodel/{draft.pk}/publish/")
    assert page.status_code == 200
    return page.content.decode()


@pytest.mark.django_db
def test_the_publish_page_states_the_count_of_the_stored_preview_job_and_publish_moves_it(
    client, marketer, studio
):
    """The confirmation reads the draft's preview job: a/b/c/cooled move; `cooling` (inside
    its cool-down) waits, `mql` and `sql` are already with sales. Publishing then moves
    exactly that many."""
    _published, draft, leads = studio
    with time_machine.travel(NOW, tick=False):
        client.force_login(marketer)
        run = preview_run_start(draft=draft, enqueue=False)
        preview_run_execute(run_id=run.pk)
        promise = selectors.publish_promise(draft=draft)
        html = _publish_page(client, draft)
        published = client.post(f"/admin/scoring/scoringmodel/{draft.pk}/publish/")
        rescore = RescoreRun.objects.get(model=draft)
        rescore_run_execute(run_id=rescore.pk)

    assert (promise.state, promise.run.pk) == (selectors.PROMISE_CURRENT, run.pk)
    assert (promise.preview.now_draft.moves, promise.preview.now_draft.cooling) == (4, 1)
    assert promise.preview.now_draft.with_sales == 2
    assert 'data-state="current"' in html
    assert "Publishing now moves 4 leads to MQL." in html
    assert "2 more that meet the policy are already MQL or beyond" in html
    assert "2 recycled ones wait." in html  # cooling (cool-down) and oldhand (old hand)
    assert published.status_code == 302
    rescore.refresh_from_db()
    moved = StageTransition.objects.filter(to_stage=Stage.MQL, actor_system="scoring")
    assert rescore.moved_to_mql == 4
    assert {t.lead.email for t in moved} == {
        "a@example.jp",
        "b@example.jp",
        "c@example.jp",
        "cooled@example.jp",
    }
    leads["cooling"].refresh_from_db()
    leads["mql"].refresh_from_db()
    assert (leads["cooling"].stage, leads["mql"].stage) == (Stage.RECYCLED, Stage.MQL)


@pytest.mark.django_db
def test_the_publish_page_without_a_current_job_says_why_and_offers_one(
    client, marketer, studio, django_capture_on_commit_callbacks
):
    _published, draft, _leads = studio
    with time_machine.travel(NOW, tick=False):
        client.force_login(marketer)
        never = _publish_page(client, draft)
        with django_capture_on_commit_callbacks():
            run = preview_run_start(draft=draft, enqueue=False)
        running = _publish_page(client, draft)
        preview_run_execute(run_id=run.pk)
        draft.engagement_threshold = 40  # the draft changes after its job
        draft.save()
        stale = _publish_page(client, draft)

    preview_url = f'action="/admin/scoring/scoringmodel/{draft.pk}/preview/"'
    assert 'data-state="none"' in never
    assert "The draft has not been previewed yet" in never
    assert preview_url in never and 'value="Compute the preview"' in never
    assert "Publishing now moves" not in never
    assert 'data-state="running"' in running
    assert "still being computed (0%)" in running
    assert f'href="/admin/scoring/scoringmodel/{draft.pk}/preview/">Follow its progress' in running
    assert "Publishing now moves" not in running
    assert 'data-state="stale"' in stale
    assert "The draft changed since its preview was computed" in stale
    assert preview_url in stale and 'value="Compute the preview again"' in stale
    assert "Publishing now moves" not in stale
    # Every state keeps the diff and the publish button.
    for html in (never, running, stale):
        assert 'id="scoring-diff"' in html and 'id="publish-form"' in html


@pytest.mark.django_db
def test_the_preview_and_the_publish_page_say_how_many_go_to_each_team(client, marketer, studio):
    """The four leads publishing moves (a, b, c, cooled) go to the one team, whose rep
    has room for one: one goes to the rep at once, three wait in the queue."""
    from handoff.models import RepProfile
    from tests.handoff.helpers import make_team

    _published, draft, _leads = studio
    _team, (rep,), _boss = make_team("Kanto", reps=1, default=True)
    RepProfile.objects.create(user=rep, max_open_handoffs=1)
    sentence = (
        "Would hand 4 leads to Kanto (free capacity 1): 1 to a rep at once, 3 wait in the queue."
    )

    with time_machine.travel(NOW, tick=False):
        client.force_login(marketer)
        preview = client.get(f"/admin/scoring/scoringmodel/{draft.pk}/preview/")
        confirmation = _publish_page(client, draft)

    assert sentence in preview.content.decode()
    assert sentence in confirmation
    run = selectors.preview_run_current(draft=draft)
    assert run.summary["wave"] == [
        {"team": "Kanto", "team_id": _team.pk, "leads": 4, "free": 1, "handed": 1, "waiting": 3}
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("raised_days_ago", "hand_raiser"),
    [(45, False), (35, True)],
    ids=["raised-before-its-recycle", "raised-after-it"],
)
def test_a_recycled_lead_is_a_hand_raiser_of_the_publish_only_if_it_raised_after_its_recycle(
    studio, raised_days_ago, hand_raiser, monkeypatch
):
    """`back` (recycled 40 days ago, past the cool-down) moves by its score. Its
    consultation makes it a hand-raiser, never held in the wave, only if it came after
    the recycle: the earlier one was answered by sales (policy.hand_raise_counts). With
    no rep free, a hand-raiser waits with its clock running; a wave MQL without one."""
    from handoff.models import Handoff
    from leadflow.models import Lead, MqlWave
    from scoring.tasks import rescore_run_task
    from sla.models import SlaTimer
    from tests.handoff.helpers import make_team

    monkeypatch.setattr(rescore_run_task, "apply_async", lambda *args, **kwargs: None)
    _published, draft, _leads = studio
    make_team("Kanto", reps=0, default=True)
    back = LeadFactory(email="back@example.jp", role="manager")
    events(back, "seminar_attendance", 2)
    StageTransition.objects.create(
        lead=back,
        from_stage=Stage.MQL,
        to_stage=Stage.RECYCLED,
        occurred_at=NOW - 40 * DAY,
        actor_system="test",
    )
    Lead.objects.filter(pk=back.pk).update(stage=Stage.RECYCLED)
    events(back, "consultation", 1, start=NOW - raised_days_ago * DAY)

    with time_machine.travel(NOW, tick=False):
        run = scoring_model_publish(model=draft)
        rescore_run_execute(run_id=run.pk)

    wave = MqlWave.objects.get(key=f"rescore:{run.pk}")
    handoff = Handoff.objects.get(lead=back)
    assert handoff.assigned_to_id is None
    if hand_raiser:
        assert handoff.wave_id is None
        assert SlaTimer.objects.filter(handoff=handoff).exists()
    else:
        assert handoff.wave_id == wave.pk
        assert not SlaTimer.objects.filter(handoff=handoff).exists()
