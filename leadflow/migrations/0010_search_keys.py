from django.db import migrations, models

from leadflow.normalize import company_search_key, lead_search_key

LEAD_FIELDS = ("last_name", "first_name", "last_name_kana", "first_name_kana", "email", "phone")


def fill_keys(apps, schema_editor):
    Company = apps.get_model("leadflow", "Company")
    Lead = apps.get_model("leadflow", "Lead")
    for company in Company.objects.only("pk", "name", "name_kana").iterator():
        Company.objects.filter(pk=company.pk).update(
            search_key=company_search_key(company.name, company.name_kana)
        )
    for lead in Lead.objects.only("pk", *LEAD_FIELDS).iterator():
        Lead.objects.filter(pk=lead.pk).update(
            search_key=lead_search_key(**{name: getattr(lead, name) for name in LEAD_FIELDS})
        )


# Search is a substring match (LIKE '%term%'): only a trigram index serves it, and only
# PostgreSQL has one. SQLite (the local run) scans, which is fine at its sizes.
TRIGRAM_INDEXES = (
    ("leadflow_lead", "lead_search_trgm_idx"),
    ("leadflow_company", "company_search_trgm_idx"),
)


def create_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for table, name in TRIGRAM_INDEXES:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin (search_key gin_trgm_ops)"
        )


def drop_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for _table, name in TRIGRAM_INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("leadflow", "0009_heartbeat"),
    ]

    operations = [
        migrations.AddField(
            model_name="company",
            name="search_key",
            field=models.CharField(blank=True, editable=False, max_length=410),
        ),
        migrations.AddField(
            model_name="lead",
            name="search_key",
            field=models.CharField(blank=True, editable=False, max_length=800),
        ),
        migrations.RunPython(fill_keys, migrations.RunPython.noop, elidable=True),
        migrations.RunPython(create_trigram_indexes, drop_trigram_indexes),
    ]
