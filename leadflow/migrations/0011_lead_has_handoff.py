"""Lead.has_handoff, and the indexes the handoff lists search and filter by source: over
the leads that have a handoff only (partial indexes), so a common name is a few thousand
matches to check instead of a fifth of a million leads. The flag is filled and kept by handoff's
migration 0008 (it needs the handoff table); this one only adds the column and index."""

from django.db import migrations, models

INDEX = "lead_handoff_search_trgm_idx"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return  # SQLite scans (0010_search_keys says why that is fine)
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON leadflow_lead"
        " USING gin (search_key gin_trgm_ops) WHERE has_handoff"
    )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [
        ("leadflow", "0010_search_keys"),
    ]

    operations = [
        migrations.AddField(
            model_name="lead",
            name="has_handoff",
            field=models.BooleanField(db_default=False, default=False, editable=False),
        ),
        migrations.AddIndex(
            model_name="lead",
            index=models.Index(
                condition=models.Q(("has_handoff", True)),
                fields=["source", "id"],
                name="lead_handoff_source_idx",
            ),
        ),
        migrations.RunPython(create_index, drop_index),
    ]
