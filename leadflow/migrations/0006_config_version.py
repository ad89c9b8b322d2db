"""The configuration version that per-process copies of configuration are tagged with
(leadflow.config); its one row starts at a random number."""

import random

from django.db import migrations, models


def first_version(apps, schema_editor):
    ConfigVersion = apps.get_model("leadflow", "ConfigVersion")
    ConfigVersion.objects.update_or_create(pk=1, defaults={"version": random.randrange(2**53)})


class Migration(migrations.Migration):
    dependencies = [
        ("leadflow", "0005_lead_merge"),
    ]

    operations = [
        migrations.CreateModel(
            name="ConfigVersion",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("version", models.BigIntegerField()),
            ],
        ),
        migrations.RunPython(first_version, migrations.RunPython.noop),
    ]
