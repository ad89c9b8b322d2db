"""Calibration, precision/recall, the threshold explorer and the suggestions, on a
hand-built history. Every expected figure is worked out by hand in the comments.

The published model: executives get 40 fit points (everyone else 0); a page view 10
engagement points, a seminar 30. MQL when fit ≥ 30 and engagement ≥ 50. Every lead moves
to MQL on day 5 (its handoff); its verdict comes on day 6.

    group  leads  fit  events before handoff      eng  verdicts
    G1      30    40   6 page views                60  6 SQL; 24 rejected: 18 no_budget, 6 timing
    G2      30    40   2 seminars                  60  24 SQL (12 won, 2 lost); 6 rejected: timing
    G3      20     0   none                         0  2 SQL; 18 rejected: 2 no_budget, 16 timing
    G5       4    40   none (3 page views after)    0  4 rejected: no_budget
    G4       5    40   6 page views                60  none yet: still MQL

Decided: 30 + 30 + 20 + 4 = 84; became SQL 6 + 24 + 2 = 32; won 12; rejected
24 + 6 + 18 + 4 = 52 (no_budget 18 + 2 + 4 = 24, timing 6 + 6 + 16 = 28).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from leadflow.lifecycle import lead_transition
from leadflow.models import Stage
from leadflow.roles import sync_roles
from scoring import calibration as cal_module
from scoring.calibration import calibration_for
from scoring.models import EngagementRule, ModelStatus, ScoringModel
from scoring.services import scoring_model_accept_suggestion, scoring_model_clone
from scoring.suggestions import LOWER, RAISE, feedback_for
from tests.factories import EngagementEventFactory, LeadFactory
from tests.scoring.conftest import T0, make_model, publish
from tests.shared_rows import building, kept_for_many_tests

DAY = dt.timedelta(days=1)


def _lead(group: str, i: int, *, executive: bool):
    return LeadFactory(email=f"{group}-{i}@example.jp", role="executive" if executive else "staff")


def _events(lead, kind: str, n: int, start: dt.datetime) -> None:
    for k in range(n):
        EngagementEventFactory(lead=lead, kind=kind, occurred_at=start + k * dt.timedelta(hours=1))


def _move(lead, stage: str, day: int, **context) -> None:
    lead_transition(lead=lead, to_stage=stage, actor="test", at=T0 + day * DAY, context=context)


def _reject(lead, code: str) -> None:
    _move(lead, Stage.RECYCLED, 6, rejection_reason=code)


def _build_history() -> ScoringModel:
    published = make_model(
        fit=[
            {
                "label": "経営層",
                "field": "role",
                "operator": "equals",
                "value": "executive",
                "points": 40,
            }
        ],
        engagement=[
            {"label": "Webページ閲覧", "kind": "page_view", "points": 10},
            {"label": "セミナー参加", "kind": "seminar_attendance", "points": 30},
        ],
        fit_threshold=30,
        engagement_threshold=50,
    )
    publish(published)
    for i in range(30):  # G1
        lead = _lead("g1", i, executive=True)
        _events(lead, "page_view", 6, T0)
        _move(lead, Stage.MQL, 5)
        if i < 6:
            _move(lead, Stage.SQL, 6)
        else:
            _reject(lead, "no_budget" if i < 24 else "timing")
    for i in range(30):  # G2
        lead = _lead("g2", i, executive=True)
        _events(lead, "seminar_attendance", 2, T0)
        _move(lead, Stage.MQL, 5)
        if i < 24:
            _move(lead, Stage.SQL, 6)
            if i < 12:
                _move(lead, Stage.CUSTOMER, 20)
            elif i < 14:
                _move(lead, Stage.RECYCLED, 20, lost_reason="価格")
        else:
            _reject(lead, "timing")
    for i in range(20):  # G3
        lead = _lead("g3", i, executive=False)
        _move(lead, Stage.MQL, 5)
        if i < 2:
            _move(lead, Stage.SQL, 6)
        else:
            _reject(lead, "no_budget" if i < 4 else "timing")
    for i in range(4):  # G5: its events are dated after the handoff
        lead = _lead("g5", i, executive=True)
        _events(lead, "page_view", 3, T0 + 10 * DAY)
        _move(lead, Stage.MQL, 5)
        _reject(lead, "no_budget")
    for i in range(5):  # G4: waiting for sales
        lead = _lead("g4", i, executive=True)
        _events(lead, "page_view", 6, T0)
        _move(lead, Stage.MQL, 5)
    for i in range(3):  # never handed over: no outcome, in no figure
        _events(_lead("none", i, executive=True), "page_view", 9, T0)
    return published


@pytest.fixture(scope="module")
def history_built(django_db_setup, django_db_blocker):
    # Built once for the module (a second or so each time; tests/shared_rows.py). Every
    # database test of this module sees it: tests on leads of their own live in
    # test_calibration_edges.py.
    with kept_for_many_tests(django_db_blocker):
        with building(django_db_blocker):
            sync_roles()
            pk = _build_history().pk
        yield pk


@pytest.fixture
def history(db, history_built):
    # The published model of the history, fetched again for each test.
    return ScoringModel.objects.get(pk=history_built)


@pytest.mark.django_db
def test_the_figures_rest_on_the_decided_leads(history):
    c = calibration_for(history)

    assert (c.total.leads, c.total.sql, c.total.won, c.total.rejected) == (84, 32, 12, 52)
    assert (c.handed_over, c.waiting) == (89, 5)  # G4 waits
    assert c.missing_history == 4  # G5: events only after the handoff


@pytest.mark.django_db
def test_precision_and_recall_of_the_published_threshold(history):
    p = calibration_for(history).current

    # fit ≥ 30 and engagement ≥ 50 at handoff: G1 and G2 (fit 40, engagement 60) = 60
    # leads, of which 6 + 24 = 30 became SQL. Precision 30/60; recall 30/32.
    assert (p.mqls, p.true_mqls, p.sql_total) == (60, 30, 32)
    assert p.precision == 50.0
    assert p.recall == pytest.approx(93.75)
    assert p.precision_enough and p.recall_enough


@pytest.mark.django_db
def test_the_draft_is_judged_on_the_same_leads(history):
    draft = scoring_model_clone(source=history)
    EngagementRule.objects.filter(model=draft, kind="page_view").update(points=5)

    p = calibration_for(draft).current

    # G1 now has 6 × 5 = 30 engagement: below 50. Only G2: 30 MQLs, 24 of them SQL.
    assert (p.mqls, p.true_mqls) == (30, 24)
    assert p.precision == 80.0
    assert p.recall == 75.0  # 24 of 32


@pytest.mark.django_db
def test_the_threshold_explorer_moves_volume_precision_and_recall(history):
    c = calibration_for(history)

    everyone = c.point(0, 0)  # all 84 decided leads; 32 became SQL
    assert (everyone.mqls, everyone.true_mqls) == (84, 32)
    assert everyone.precision == pytest.approx(100 * 32 / 84)
    assert everyone.recall == 100.0
    fit_only = c.point(30, 0)  # G1, G2, G5 = 64 leads; 30 SQL
    assert (fit_only.mqls, fit_only.true_mqls) == (64, 30)
    assert fit_only.precision == pytest.approx(100 * 30 / 64)
    nobody = c.point(30, 70)  # no lead has more than 60 engagement
    assert (nobody.mqls, nobody.precision, nobody.recall) == (0, None, 0.0)
    assert not nobody.precision_enough

    # The curve over engagement at fit ≥ 30: round steps of 5 from 0 to 65 (the highest
    # engagement is 60; 60 / 12 steps → 5), the chosen 50 among them.
    curve = c.curve_over_engagement(30, 50)
    assert [p.engagement for p in curve] == list(range(0, 70, 5))
    assert [p.mqls for p in curve] == [64] + [60] * 12 + [0]


@pytest.mark.django_db
def test_the_grid_groups_leads_by_score_and_marks_thin_groups(history):
    c = calibration_for(history)
    grid = c.grid_view

    assert [b.label for b in grid["columns"]] == ["< 25", "25–49", "50–74", "75–99", "≥ 100"]
    rows = {band.label: cells for band, cells in grid["rows"]}
    assert list(rows) == ["≥ 50", "40–49", "30–39", "20–29", "10–19", "< 10"]
    g1_g2, in_mql_corner = rows["40–49"][2]
    assert in_mql_corner
    # G1 + G2: 60 leads, 30 SQL (50 %), 12 won (20 %), 6 + 24 = 30 rejected (50 %).
    assert (g1_g2.leads, g1_g2.sql_rate, g1_g2.won_rate, g1_g2.rejected_rate) == (
        60,
        50.0,
        20.0,
        50.0,
    )
    g5, _corner = rows["40–49"][0]
    assert (g5.leads, g5.enough) == (4, False)  # not enough data
    g3, corner = rows["< 10"][0]
    assert not corner
    assert (g3.leads, g3.sql_rate, g3.won_rate, g3.rejected_rate, g3.enough) == (
        20,
        10.0,
        0.0,
        90.0,
        True,
    )


@pytest.mark.django_db
def test_deciles_split_the_decided_leads_by_fit_plus_engagement(history):
    deciles = calibration_for(history).deciles()

    # 84 leads in 10 groups: the 4 lowest hold 9 leads, the other 6 hold 8. In score order
    # (ties by lead id): 20 × 0 (G3), 4 × 40 (G5), 60 × 100 (G1, G2).
    assert [d.number for d in deciles] == [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]
    assert [d.counts.leads for d in deciles] == [8, 8, 8, 8, 8, 8, 9, 9, 9, 9]
    assert [(d.low, d.high) for d in deciles] == [(100, 100)] * 7 + [(0, 100), (0, 0), (0, 0)]
    # Deciles 1 and 2 are 18 of G3's leads: created 3rd..20th of G3 are all rejected, the
    # first two became SQL; ties go by lead id, so they sit in decile 1.
    assert (deciles[-1].counts.sql, deciles[-1].counts.rejected) == (2, 7)
    assert not any(d.counts.enough for d in deciles)  # all under 20 leads


@pytest.mark.django_db
def test_verdicts_by_rule_and_the_suggestions(history):
    f = feedback_for(history)

    assert (f.all.leads, f.all.rejected, f.all.won) == (84, 52, 12)
    assert f.all.reasons == {"no_budget": 24, "timing": 28}
    views, seminars = f.rules
    # Page views scored G1 only (G5's came after its handoff).
    assert (views.scored.leads, views.scored.sql, views.scored.rejected) == (30, 6, 24)
    assert views.scored.reasons == {"no_budget": 18, "timing": 6}
    assert (seminars.scored.leads, seminars.scored.sql, seminars.scored.won) == (30, 24, 12)
    assert (seminars.scored.lost, seminars.scored.rejected) == (2, 6)
    assert views.carried.leads == 30  # all of G1's engagement is page views

    lower, raise_ = f.suggestions
    # G1 was rejected as "no budget" 18/30 = 60 % against 24/84 for all: 2.1×.
    # 10 points / 2.1 = 4.76 → 5.
    assert (lower.kind, lower.rule_label, lower.before, lower.after) == (
        LOWER,
        "Webページ閲覧",
        10,
        5,
    )
    assert lower.ratio == pytest.approx(2.1)
    assert (lower.group_hits, lower.group_leads, lower.all_hits, lower.all_leads) == (
        18,
        30,
        24,
        84,
    )
    assert lower.reason == "No budget"
    assert lower.text == (
        "Leads whose engagement at handoff was ≥ 70 % Webページ閲覧 were rejected as "
        "“No budget” 2.1× as often as all decided leads (18 of 30 against 24 of 84): lower "
        "Webページ閲覧 from 10 to 5 points?"
    )
    # G2 was won 12/30 = 40 % against 12/84: 2.8×. 30 × 2.8 = 84.
    assert (raise_.kind, raise_.before, raise_.after, raise_.group_hits) == (RAISE, 30, 84, 12)
    assert raise_.ratio == pytest.approx(2.8)


@pytest.mark.django_db
def test_a_group_under_twenty_leads_makes_no_suggestion(history, monkeypatch):
    # With a 31-lead minimum neither G1 nor G2 (30 each) is enough.
    monkeypatch.setattr("scoring.calibration.MIN_GROUP", 31)
    assert feedback_for(history).suggestions == []


@pytest.mark.django_db
def test_accepting_on_the_published_model_creates_a_draft(history, marketer):
    suggestion = feedback_for(history).suggestions[0]

    draft = scoring_model_accept_suggestion(
        model=history, rule_key=suggestion.rule_key, points=suggestion.after, actor=marketer
    )
    rule = draft.engagement_rules.get(key=suggestion.rule_key)

    assert draft.status == ModelStatus.DRAFT and draft.based_on_id == history.pk
    assert (rule.model_id, rule.points) == (draft.pk, 5)
    history.refresh_from_db()
    assert history.status == ModelStatus.PUBLISHED
    assert history.engagement_rules.get(kind="page_view").points == 10  # untouched
    assert "Webページ閲覧 10 → 5 points" in draft.notes
    # A second acceptance on the draft edits that draft, no new one.
    again = scoring_model_accept_suggestion(
        model=draft, rule_key=suggestion.rule_key, points=4, actor=marketer
    )
    assert again.pk == draft.pk
    assert ScoringModel.objects.filter(status=ModelStatus.DRAFT).count() == 1


@pytest.mark.django_db
def test_accepting_an_unknown_rule_or_wild_points_is_refused(history):
    from leadflow.errors import DomainError

    draft = scoring_model_clone(source=history)
    with pytest.raises(DomainError) as error:
        scoring_model_accept_suggestion(
            model=draft, rule_key="00000000-0000-0000-0000-000000000000", points=1
        )
    assert error.value.code == "rule_not_found"
    key = str(draft.engagement_rules.first().key)
    with pytest.raises(DomainError) as error:
        scoring_model_accept_suggestion(model=draft, rule_key=key, points=5000)
    assert error.value.code == "invalid_points"


@pytest.mark.django_db
def test_the_calibration_page_and_the_explorer(client, history, marketer):
    client.force_login(marketer)
    draft = scoring_model_clone(source=history)

    page = client.get(reverse("admin:scoring_scoringmodel_calibration", args=[draft.pk]))

    assert page.status_code == 200
    body = page.content.decode()
    assert "The figures rest on 84 leads sales has decided on" in body
    assert "5 leads handed over are still waiting" in body
    assert 'id="missing-history"' in body
    assert "not enough data" in body
    assert 'id="explorer-data"' in body
    explorer = client.get(
        reverse("admin:scoring_scoringmodel_explorer", args=[draft.pk]),
        {"model": history.pk, "fit": "30", "engagement": "0"},
    )
    assert explorer.status_code == 200
    assert "64 of 84 decided leads would have been MQL" in explorer.content.decode()
    bad = client.get(
        reverse("admin:scoring_scoringmodel_explorer", args=[draft.pk]), {"fit": "lots"}
    )
    assert bad.status_code == 400
    assert bad.content.decode().startswith("invalid_threshold:")
    other = client.get(
        reverse("admin:scoring_scoringmodel_explorer", args=[draft.pk]), {"model": "999999"}
    )
    assert other.status_code == 400


@pytest.mark.django_db
def test_accepting_from_the_page_edits_the_draft_only(client, history, marketer):
    client.force_login(marketer)
    draft = scoring_model_clone(source=history)
    key = str(draft.engagement_rules.get(kind="page_view").key)
    url = reverse("admin:scoring_scoringmodel_accept_suggestion", args=[draft.pk])

    response = client.post(url, {"rule": key, "points": "5"})

    assert response.status_code == 302
    assert draft.engagement_rules.get(kind="page_view").points == 5
    assert client.post(url, {"rule": "nope", "points": "5"}).status_code == 400
    assert client.post(url, {"rule": key, "points": "five"}).status_code == 400
    assert client.get(url).status_code == 405
    assert history.engagement_rules.get(kind="page_view").points == 10


def test_bands_cut_at_the_threshold():
    assert [b.label for b in cal_module.bands((10, 20), 15)] == ["< 10", "10–14", "15–19", "≥ 20"]
