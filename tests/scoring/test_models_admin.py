"""Versioned models: one published at a time, read-only once published, and the admin
flow clone → edit → preview → publish."""

import pytest
from django.db import IntegrityError, transaction

from leadflow.errors import DomainError
from scoring.models import (
    EngagementRule,
    FitCategory,
    FitRule,
    LeadScore,
    ModelStatus,
    RescoreRun,
    ScoringModel,
)
from scoring.services import scoring_model_clone, scoring_model_publish
from tests.factories import EngagementEventFactory, LeadFactory, UserFactory
from tests.scoring.conftest import T0, make_model, sql_score


@pytest.fixture
def default_model(db):
    return ScoringModel.objects.get(status=ModelStatus.PUBLISHED)


@pytest.mark.django_db
def test_the_default_model_comes_from_the_article(default_model):
    assert default_model.version == 1
    assert (default_model.fit_threshold, default_model.engagement_threshold) == (30, 50)
    assert (default_model.hand_raiser_kind, default_model.hand_raiser_min_fit) == (
        "consultation",
        20,
    )
    assert [(c.min_points, c.max_points) for c in default_model.categories.all()] == [
        (0, 20),
        (0, 15),
        (0, 20),
        (0, 5),
    ]
    points = dict(default_model.engagement_rules.values_list("label", "points"))
    assert points["料金ページ閲覧"] == 15
    assert points["導入事例ダウンロード"] > points["資料ダウンロード"]
    assert points["個別相談会"] > points["セミナー参加"]
    assert points["メールクリック"] > points["メール開封"]


@pytest.mark.django_db
def test_the_default_model_scores_a_typical_target_lead(default_model):
    # 250 staff (10) + manufacturing (15) + executive (20) + Tokyo (5) = 50.
    lead = LeadFactory(role="executive", job_title="代表取締役")
    EngagementEventFactory(lead=lead, kind="consultation", occurred_at=T0)

    score = sql_score(default_model, lead, T0)

    assert score.fit == 50  # role 20 + title 20 are held to the role maximum of 20
    assert score.engagement == 25


@pytest.mark.django_db
def test_only_one_model_can_be_published(default_model):
    draft = make_model()

    with pytest.raises(IntegrityError), transaction.atomic():
        ScoringModel.objects.filter(pk=draft.pk).update(status=ModelStatus.PUBLISHED)


@pytest.mark.django_db
def test_published_models_and_their_rules_refuse_edits(default_model):
    default_model.fit_threshold = 10
    with pytest.raises(DomainError) as caught:
        default_model.save()
    assert caught.value.code == "model_read_only"

    rule = default_model.fit_rules.first()
    rule.points = 99
    with pytest.raises(DomainError):
        rule.save()
    with pytest.raises(DomainError):
        FitCategory.objects.create(model=default_model, name="new")
    with pytest.raises(DomainError):
        default_model.engagement_rules.first().delete()
    with pytest.raises(DomainError):
        default_model.delete()
    default_model.refresh_from_db()
    assert default_model.fit_threshold == 30
    assert default_model.fit_rules.filter(points=99).count() == 0


@pytest.mark.django_db
def test_publishing_refuses_a_non_draft_and_an_invalid_draft(default_model):
    with pytest.raises(DomainError) as not_draft:
        scoring_model_publish(model=default_model)
    assert not_draft.value.code == "not_a_draft"

    broken = make_model(
        fit=[{"field": "nonsense", "operator": "equals", "value": "x", "points": 1}]
    )
    with pytest.raises(DomainError) as invalid:
        scoring_model_publish(model=broken)
    assert invalid.value.code == "invalid_model"
    assert "“nonsense” is not a field a rule can test" in invalid.value.message
    broken.refresh_from_db()
    assert broken.status == ModelStatus.DRAFT


@pytest.mark.django_db
def test_cloning_copies_every_rule_into_a_draft_with_its_own_categories(default_model):
    draft = scoring_model_clone(source=default_model)

    assert (draft.status, draft.version, draft.based_on) == (ModelStatus.DRAFT, 2, default_model)
    assert draft.fit_rules.count() == default_model.fit_rules.count() == 19
    assert draft.engagement_rules.count() == default_model.engagement_rules.count() == 13
    assert set(
        draft.fit_rules.exclude(category=None).values_list("category__model", flat=True)
    ) == {draft.pk}


# --- admin ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_admin_shows_a_published_model_read_only(client, marketer, default_model):
    client.force_login(marketer)
    url = f"/admin/scoring/scoringmodel/{default_model.pk}/change/"

    page = client.get(url)
    post = client.post(url, {"name": "changed"})

    assert page.status_code == 200
    assert b"read-only" in page.content
    assert b'name="fit_rules-0-points"' not in page.content
    assert post.status_code == 403
    default_model.refresh_from_db()
    assert default_model.name != "changed"


@pytest.mark.django_db
def test_a_marketer_clones_previews_and_publishes_in_the_admin(
    client, marketer, default_model, django_capture_on_commit_callbacks
):
    client.force_login(marketer)
    LeadFactory(role="executive")

    cloned = client.post(f"/admin/scoring/scoringmodel/{default_model.pk}/clone/")
    draft = ScoringModel.objects.get(status=ModelStatus.DRAFT)
    assert cloned.status_code == 302
    assert cloned["Location"] == f"/admin/scoring/scoringmodel/{draft.pk}/change/"

    edit_page = client.get(cloned["Location"])
    assert b'name="fit_rules-0-points"' in edit_page.content
    assert b"Preview and backtest" in edit_page.content

    preview = client.get(f"/admin/scoring/scoringmodel/{draft.pk}/preview/")
    assert preview.status_code == 200
    assert b"Leads meeting the MQL policy" in preview.content
    assert b"Backtest against what sales decided" in preview.content

    with django_capture_on_commit_callbacks() as callbacks:
        published = client.post(f"/admin/scoring/scoringmodel/{draft.pk}/publish/")
    run = RescoreRun.objects.get()
    assert published["Location"] == f"/admin/scoring/rescorerun/{run.pk}/change/"
    assert len(callbacks) == 2  # one task per slice (SCORING_RESCORE_WORKERS)
    assert run.slices.count() == 2
    draft.refresh_from_db()
    assert draft.status == ModelStatus.PUBLISHED
    assert client.get(published["Location"]).status_code == 200


@pytest.mark.django_db
def test_sales_cannot_publish(client, default_model):
    rep = UserFactory(roles=["Sales rep"], is_staff=True)
    draft = scoring_model_clone(source=default_model)
    client.force_login(rep)

    response = client.post(f"/admin/scoring/scoringmodel/{draft.pk}/publish/")

    assert response.status_code == 403
    draft.refresh_from_db()
    assert draft.status == ModelStatus.DRAFT


@pytest.mark.django_db
def test_the_lead_score_admin_shows_the_explanation(client, marketer, default_model):
    lead = LeadFactory(role="executive")
    EngagementEventFactory(lead=lead, kind="document_download", occurred_at=T0)
    sql_score(default_model, lead, T0)
    client.force_login(marketer)

    listing = client.get("/admin/scoring/leadscore/")
    detail = client.get(f"/admin/scoring/leadscore/{lead.pk}/change/")

    assert listing.status_code == 200
    assert detail.status_code == 200
    assert "資料ダウンロード".encode() in detail.content
    assert LeadScore.objects.count() == 1


@pytest.mark.django_db
def test_draft_rules_are_edited_inline(client, marketer, default_model):
    draft = make_model(engagement=[{"kind": "email_click", "points": 3}])
    rule = EngagementRule.objects.get(model=draft)
    client.force_login(marketer)
    data = {
        "name": "edited",
        "notes": "",
        "fit_threshold": 25,
        "engagement_threshold": 40,
        "hand_raiser_kind": "",
        "hand_raiser_min_fit": 20,
        "recycle_cooldown_days": 14,
        "categories-TOTAL_FORMS": 0,
        "categories-INITIAL_FORMS": 0,
        "fit_rules-TOTAL_FORMS": 1,
        "fit_rules-INITIAL_FORMS": 0,
        "fit_rules-0-position": 0,
        "fit_rules-0-label": "big",
        "fit_rules-0-field": "company.employee_count",
        "fit_rules-0-operator": "between",
        "fit_rules-0-min_value": "100",
        "fit_rules-0-points": 15,
        "engagement_rules-TOTAL_FORMS": 1,
        "engagement_rules-INITIAL_FORMS": 1,
        "engagement_rules-0-id": rule.pk,
        "engagement_rules-0-model": draft.pk,
        "engagement_rules-0-position": 0,
        "engagement_rules-0-kind": "email_click",
        "engagement_rules-0-operator": "equals",
        "engagement_rules-0-points": 5,
        "engagement_rules-0-cap_period": "day",
    }

    response = client.post(f"/admin/scoring/scoringmodel/{draft.pk}/change/", data)

    assert response.status_code == 302, response.context["errors"] if response.context else ""
    draft.refresh_from_db()
    assert (draft.name, draft.fit_threshold, draft.recycle_cooldown_days) == ("edited", 25, 14)
    assert FitRule.objects.get(model=draft).points == 15
    rule.refresh_from_db()
    assert rule.points == 5


@pytest.mark.django_db
def test_the_preview_page_speaks_japanese(client, marketer, default_model, settings):
    settings.LANGUAGE_CODE = "ja"
    draft = scoring_model_clone(source=default_model)
    client.force_login(marketer)

    page = client.get(f"/admin/scoring/scoringmodel/{draft.pk}/preview/", HTTP_ACCEPT_LANGUAGE="ja")

    assert "営業の判断に対するバックテスト".encode() in page.content
    assert "MQL条件を満たすリード".encode() in page.content


@pytest.mark.django_db
def test_a_draft_can_be_deleted_with_its_categories_and_rules(default_model):
    draft = scoring_model_clone(source=default_model)

    draft.delete()

    assert not ScoringModel.objects.filter(pk=draft.pk).exists()
    assert FitCategory.objects.filter(model=default_model).count() == 4
    assert FitRule.objects.filter(model_id=draft.pk).count() == 0
