"""Seed the two-sided SLA with the article's numbers; all of it stays editable in the admin.

Sales (営業側のコミットメント): first contact within 24 h of the MQL notification (clock
time: the lead does not care about office hours), a verdict within 5 business days,
3 attempts before "not reachable". Marketing: completeness ≥ 95 % of the required fields.
"""

from django.db import migrations

POLICIES = [
    # kind, amount, unit, business time
    ("first_contact", 24, "hours", False),
    ("verdict", 5, "days", True),
]


def seed(apps, schema_editor):
    TimerPolicy = apps.get_model("sla", "TimerPolicy")
    for kind, amount, unit, business in POLICIES:
        TimerPolicy.objects.get_or_create(
            kind=kind,
            defaults={
                "amount": amount,
                "unit": unit,
                "counts_business_time": business,
                "remind_at_percent": 75,
                "notify_manager": True,
                "reassign_on_breach": False,
            },
        )
    SlaSettings = apps.get_model("sla", "SlaSettings")
    SlaSettings.objects.get_or_create(pk=1)


def unseed(apps, schema_editor):
    apps.get_model("sla", "TimerPolicy").objects.filter(
        kind__in=[kind for kind, *_rest in POLICIES], timers__isnull=True
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("sla", "0003_timers")]

    operations = [migrations.RunPython(seed, unseed)]
