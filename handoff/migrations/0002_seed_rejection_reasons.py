"""Seed the rejection reasons (the article's 非SQL理由, 選択式) and the handoff policy.

Both stay editable in the admin; codes are stable because reports group by them.
"""

from django.db import migrations

REASONS = [
    ("not_reachable", "連絡がつかない", "Not reachable"),
    ("no_budget", "予算がない", "No budget"),
    ("no_authority", "決裁権がない", "No authority"),
    ("timing", "時期が合わない", "Timing"),
    ("competitor", "競合を採用済み・検討中", "Competitor"),
    ("not_target", "ターゲット外", "Not a target"),
    ("duplicate", "重複", "Duplicate"),
    ("bad_data", "データ不備", "Bad data"),
    ("other", "その他", "Other"),
]


def seed(apps, schema_editor):
    RejectionReason = apps.get_model("handoff", "RejectionReason")
    for position, (code, label_ja, label_en) in enumerate(REASONS, start=1):
        RejectionReason.objects.update_or_create(
            code=code,
            defaults={"label_ja": label_ja, "label_en": label_en, "order": position * 10},
        )
    HandoffPolicy = apps.get_model("handoff", "HandoffPolicy")
    HandoffPolicy.objects.get_or_create(pk=1, defaults={"bant_min_yes": 2})


def unseed(apps, schema_editor):
    RejectionReason = apps.get_model("handoff", "RejectionReason")
    RejectionReason.objects.filter(
        code__in=[code for code, _ja, _en in REASONS], handoffs__isnull=True
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("handoff", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
