"""Builders for scoring tests: small hand-made models, published through the service."""

from __future__ import annotations

import datetime as dt

import pytest

from scoring import engine
from scoring.models import EngagementRule, FitCategory, FitRule, LeadScore, ScoringModel
from scoring.services import scoring_model_publish
from scoring.sql import LeadFilter, upsert_scores

TOKYO = dt.timezone(dt.timedelta(hours=9))
T0 = dt.datetime(2026, 11, 2, 10, 0, tzinfo=TOKYO)  # a Monday


def make_model(
    *,
    categories: list[dict] | None = None,
    fit: list[dict] | None = None,
    engagement: list[dict] | None = None,
    **policy,
) -> ScoringModel:
    """A draft model. Fit rules name their category by name: {"category": "size", ...}."""
    settings = {"fit_threshold": 30, "engagement_threshold": 50, "hand_raiser_kind": ""}
    settings.update(policy)
    model = ScoringModel.objects.create(name="test", **settings)
    cats = {}
    for position, spec in enumerate(categories or []):
        cats[spec["name"]] = FitCategory.objects.create(model=model, position=position, **spec)
    for position, spec in enumerate(fit or []):
        spec = dict(spec)
        category = cats[spec.pop("category")] if spec.get("category") else None
        spec.pop("category", None)
        FitRule.objects.create(model=model, category=category, position=position, **spec)
    for position, spec in enumerate(engagement or []):
        EngagementRule.objects.create(model=model, position=position, **spec)
    return model


def page_views(lead, n: int, start: dt.datetime = T0) -> None:
    """`n` page views of `lead`, an hour apart from `start`."""
    from tests.factories import EngagementEventFactory

    for i in range(n):
        at = start + i * dt.timedelta(hours=1)
        EngagementEventFactory(lead=lead, kind="page_view", occurred_at=at)


def publish(model: ScoringModel):
    run = scoring_model_publish(model=model)
    model.refresh_from_db()
    return run


def sql_score(model: ScoringModel, lead, now: dt.datetime) -> LeadScore:
    """Score one lead with the set-based SQL (the bulk path) and return the row."""
    upsert_scores(engine.compiled(model), leads=LeadFilter.one(lead.pk), now=now)
    return LeadScore.objects.get(lead=lead)


@pytest.fixture(autouse=True)
def _roles(request):
    # Roles are synced after `migrate` once the last app with models has migrated; on a
    # branch where that app has no models yet the groups would be missing. Idempotent.
    if "db" in request.fixturenames or request.node.get_closest_marker("django_db"):
        from leadflow.roles import sync_roles

        request.getfixturevalue("db")
        sync_roles()


@pytest.fixture
def marketer(db):
    from tests.factories import UserFactory

    return UserFactory(roles=["Marketing"], is_staff=True)
