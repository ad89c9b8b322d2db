"""The diff of a draft against the published model: every kind of change, in words, in
English and Japanese, on the preview page and the draft's admin page."""

import pytest
from django.utils import translation

from scoring import selectors
from scoring.models import EngagementRule, FitCategory, FitRule
from scoring.selectors import scoring_model_diff
from scoring.services import scoring_model_clone
from tests.scoring.conftest import make_model, publish


@pytest.fixture
def pair(db):
    published = make_model(
        categories=[
            {"name": "企業規模", "min_points": 0, "max_points": 20},
            {"name": "地域", "min_points": 0, "max_points": 5},
        ],
        fit=[
            {"label": "従業員300名以上", "category": "企業規模", "field": "company.employee_count"}
            | {"operator": "between", "min_value": 300, "points": 20},
            {"label": "製造業", "field": "company.industry", "operator": "equals"}
            | {"value": "manufacturing", "points": 10},
            {"label": "部長", "field": "job_title", "operator": "contains", "value": "部長"}
            | {"points": 15},
            {"label": "関東", "category": "地域", "field": "company.region", "operator": "equals"}
            | {"value": "kanto", "points": 5},
        ],
        engagement=[
            {"label": "セミナー参加", "kind": "seminar_attendance", "points": 15},
            {"label": "ページ閲覧", "kind": "page_view", "points": 3, "cap_points": 30},
            {"label": "資料DL", "kind": "document_download", "points": 10, "half_life_days": 90},
            {"label": "メール開封", "kind": "email_open", "points": 1},
            {"label": "料金ページ", "kind": "pricing_page_view", "points": 5},
        ],
        fit_threshold=30,
        engagement_threshold=50,
        hand_raiser_kind="consultation",
        hand_raiser_min_fit=20,
        recycle_cooldown_days=30,
    )
    publish(published)
    return published, scoring_model_clone(source=published)


def edit_every_kind(draft):
    draft.fit_threshold, draft.engagement_threshold = 25, 45
    draft.hand_raiser_kind, draft.hand_raiser_min_fit = "", 15
    draft.recycle_cooldown_days = 14
    draft.save()
    size = FitCategory.objects.get(model=draft, name="企業規模")
    size.max_points = 25
    size.save()
    FitRule.objects.get(model=draft, label="関東").delete()
    FitCategory.objects.get(model=draft, name="地域").delete()
    industry = FitCategory.objects.create(model=draft, name="業種", min_points=0, max_points=15)
    rule = FitRule.objects.get(model=draft, label="従業員300名以上")
    rule.points = 25
    rule.save()
    rule = FitRule.objects.get(model=draft, label="製造業")
    rule.category = industry
    rule.save()
    rule = FitRule.objects.get(model=draft, label="部長")
    rule.label, rule.operator, rule.value = "部長職", "one_of", "部長\n本部長"
    rule.save()
    FitRule.objects.create(
        model=draft, label="上場企業", field="attributes.listed", value="yes", points=5, position=9
    )
    rules = {r.label: r for r in EngagementRule.objects.filter(model=draft)}
    rules["セミナー参加"].points = 30
    rules["ページ閲覧"].cap_points, rules["ページ閲覧"].cap_period = 50, "week"
    rules["資料DL"].half_life_days = None
    # 料金ページ moves to the top: for each event the first matching rule counts.
    for position, label in enumerate(["料金ページ", "セミナー参加", "ページ閲覧", "資料DL"]):
        rules[label].position = position
        rules[label].save()
    rules["メール開封"].delete()
    EngagementRule.objects.create(
        model=draft, label="配信停止", kind="unsubscribe", points=-20, position=9
    )


@pytest.mark.django_db
def test_a_fresh_clone_differs_in_nothing(pair):
    published, draft = pair

    assert scoring_model_diff(draft=draft) == []
    assert scoring_model_diff(draft=published, published=published) == []


@pytest.mark.django_db
def test_the_issue_example_reads_in_both_languages(pair):
    _published, draft = pair
    draft.engagement_threshold = 45
    draft.save()
    seminar = EngagementRule.objects.get(model=draft, label="セミナー参加")
    seminar.points = 30
    seminar.save()

    with translation.override("en"):
        english = [line.text for line in scoring_model_diff(draft=draft)]
    with translation.override("ja"):
        japanese = [line.text for line in scoring_model_diff(draft=draft)]

    assert english == ["MQL engagement threshold 50 → 45", "セミナー参加 15 → 30 points"]
    assert japanese == ["MQL行動スコア閾値 50→45", "セミナー参加 15→30点"]


EVERY_KIND = [
    (selectors.DIFF_FIT_THRESHOLD, "MQL fit threshold 30 → 25", "MQL属性スコア閾値 30→25"),
    (
        selectors.DIFF_ENGAGEMENT_THRESHOLD,
        "MQL engagement threshold 50 → 45",
        "MQL行動スコア閾値 50→45",
    ),
    (
        selectors.DIFF_HAND_RAISER,
        "Hand-raiser event Individual consultation → off",
        "ハンドレイザーのイベント 個別相談会→なし",
    ),
    (
        selectors.DIFF_HAND_RAISER_FIT,
        "Hand-raiser minimum fit 20 → 15",
        "ハンドレイザーの属性スコア下限 20→15点",
    ),
    (
        selectors.DIFF_COOLDOWN,
        "Cool-down after recycling 30 → 14 days",
        "リサイクル後の待機期間 30→14日",
    ),
    (
        selectors.DIFF_CATEGORY_LIMITS,
        "Fit category 企業規模: limits 0–20 → 0–25",
        "属性カテゴリ「企業規模」の範囲 0–20→0–25",
    ),
    (
        selectors.DIFF_CATEGORY_ADDED,
        "Fit category added: 業種 (0–15)",
        "属性カテゴリを追加: 業種(0–15)",
    ),
    (
        selectors.DIFF_CATEGORY_REMOVED,
        "Fit category removed: 地域 (0–5)",
        "属性カテゴリを削除: 地域(0–5)",
    ),
    (selectors.DIFF_RULE_POINTS, "従業員300名以上 20 → 25 points", "従業員300名以上 20→25点"),
    (
        selectors.DIFF_RULE_CATEGORY,
        "製造業: category none → 業種",
        "製造業: カテゴリ なし→業種",
    ),
    (selectors.DIFF_RULE_RENAMED, "Rule renamed: 部長 → 部長職", "ルール名の変更: 部長→部長職"),
    (
        selectors.DIFF_RULE_CONDITION,
        "部長職: condition job_title contains 部長 → job_title is one of 部長, 本部長",
        "部長職: 条件 job_title 含む 部長→job_title いずれかに等しい 部長、本部長",
    ),
    (
        selectors.DIFF_RULE_ADDED,
        "Fit rule added: 上場企業 (5 points)",
        "属性ルールを追加: 上場企業(5点)",
    ),
    (
        selectors.DIFF_RULE_REMOVED,
        "Fit rule removed: 関東 (5 points)",
        "属性ルールを削除: 関東(5点)",
    ),
    (selectors.DIFF_RULE_POINTS, "セミナー参加 15 → 30 points", "セミナー参加 15→30点"),
    (
        selectors.DIFF_RULE_CAP,
        "ページ閲覧: cap 30 points per day → 50 points per week (Monday to Sunday)",
        "ページ閲覧: 上限 1日あたり30点→1週間あたり(月曜〜日曜)50点",
    ),
    (
        selectors.DIFF_RULE_DECAY,
        "資料DL: half-life 90 days → no decay",
        "資料DL: 半減期 90日→減衰なし",
    ),
    (
        selectors.DIFF_RULE_ADDED,
        "Engagement rule added: 配信停止 (-20 points per event)",
        "行動ルールを追加: 配信停止(1回あたり-20点)",
    ),
    (
        selectors.DIFF_RULE_REMOVED,
        "Engagement rule removed: メール開封 (1 points per event)",
        "行動ルールを削除: メール開封(1回あたり1点)",
    ),
    (
        selectors.DIFF_RULE_ORDER,
        "The order of the engagement rules changed (each event counts for the first rule"
        " that matches it).",
        "行動ルールの順序が変わりました(各イベントは最初に一致したルールで数えます)。",
    ),
]


@pytest.mark.django_db
def test_the_diff_lists_every_kind_of_change_in_english_and_japanese(pair):
    _published, draft = pair
    edit_every_kind(draft)

    with translation.override("en"):
        english = [(line.kind, line.text) for line in scoring_model_diff(draft=draft)]
    with translation.override("ja"):
        japanese = [(line.kind, line.text) for line in scoring_model_diff(draft=draft)]

    assert english == [(kind, en) for kind, en, _ja in EVERY_KIND]
    assert japanese == [(kind, ja) for kind, _en, ja in EVERY_KIND]


@pytest.mark.django_db
def test_the_diff_is_on_the_preview_and_on_the_drafts_admin_page(client, marketer, pair):
    _published, draft = pair
    draft.engagement_threshold = 45
    draft.save()
    client.force_login(marketer)

    preview = client.get(f"/admin/scoring/scoringmodel/{draft.pk}/preview/")
    change = client.get(f"/admin/scoring/scoringmodel/{draft.pk}/change/")
    publish_page = client.get(f"/admin/scoring/scoringmodel/{draft.pk}/publish/")

    for page in (preview, change, publish_page):
        assert page.status_code == 200
        assert b'<li data-kind="engagement_threshold">MQL engagement threshold 50' in page.content
