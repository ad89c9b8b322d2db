from django.db import migrations
from django.utils import timezone


def create_default_model(apps, schema_editor):
    from scoring import defaults

    ScoringModel = apps.get_model("scoring", "ScoringModel")
    FitCategory = apps.get_model("scoring", "FitCategory")
    FitRule = apps.get_model("scoring", "FitRule")
    EngagementRule = apps.get_model("scoring", "EngagementRule")
    if ScoringModel.objects.exists():
        return
    now = timezone.now()
    model = ScoringModel.objects.create(
        version=1, status="published", published_at=now, **defaults.MODEL
    )
    categories = {}
    for position, (key, name, low, high) in enumerate(defaults.CATEGORIES):
        categories[key] = FitCategory.objects.create(
            model=model, name=name, min_points=low, max_points=high, position=position
        )
    for position, (cat, label, field, op, value, low, high, points) in enumerate(
        defaults.FIT_RULES
    ):
        FitRule.objects.create(
            model=model,
            category=categories[cat] if cat else None,
            label=label,
            field=field,
            operator=op,
            value=value,
            min_value=low,
            max_value=high,
            points=points,
            position=position,
        )
    for position, (label, kind, key, op, value, points, cap, period, half_life) in enumerate(
        defaults.ENGAGEMENT_RULES
    ):
        EngagementRule.objects.create(
            model=model,
            label=label,
            kind=kind,
            property_key=key,
            operator=op,
            value=value,
            points=points,
            cap_points=cap,
            cap_period=period,
            half_life_days=half_life,
            position=position,
        )


def remove_default_model(apps, schema_editor):
    ScoringModel = apps.get_model("scoring", "ScoringModel")
    ScoringModel.objects.filter(version=1, runs__isnull=True, scores__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("scoring", "0001_initial")]

    operations = [migrations.RunPython(create_default_model, remove_default_model)]
