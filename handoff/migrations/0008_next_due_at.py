"""The stored urgency of a handoff (next_due_at / next_due_kind: the next SLA deadline
not yet met, written by sla.services) and its index, filled from the timers; and the
database's upkeep of Lead.has_handoff (leadflow 0011), filled from the handoffs.

Why triggers for has_handoff: every path that makes a lead "have a handoff" (creation,
a merge moving handoffs with one UPDATE, the bench's bulk seeds, the tests' factories)
goes through the handoff table, and a lead loaded before its handoff existed and saved
afterwards (the lifecycle hands its receivers a locked copy, not the caller's) would
write the flag back to false. The triggers set it on any handoff row pointing at the
lead and refuse to clear it, on both databases."""

from django.db import migrations, models

NEXT_DUE = """
UPDATE handoff_handoff SET
    next_due_at = (SELECT t.due_at FROM sla_slatimer t
                   WHERE t.handoff_id = handoff_handoff.id AND t.met_at IS NULL
                   ORDER BY t.due_at, t.id LIMIT 1),
    next_due_kind = COALESCE((SELECT t.kind FROM sla_slatimer t
                              WHERE t.handoff_id = handoff_handoff.id AND t.met_at IS NULL
                              ORDER BY t.due_at, t.id LIMIT 1), '')
WHERE EXISTS (SELECT 1 FROM sla_slatimer t
              WHERE t.handoff_id = handoff_handoff.id AND t.met_at IS NULL)
"""
HAS_HANDOFF = (
    "UPDATE leadflow_lead SET has_handoff = true"
    " WHERE id IN (SELECT lead_id FROM handoff_handoff)"
)

PG_TRIGGERS = [
    """CREATE OR REPLACE FUNCTION handoff_marks_lead() RETURNS trigger AS $$
    BEGIN
        UPDATE leadflow_lead SET has_handoff = true WHERE id = NEW.lead_id AND NOT has_handoff;
        RETURN NULL;
    END
    $$ LANGUAGE plpgsql""",
    "DROP TRIGGER IF EXISTS handoff_marks_lead ON handoff_handoff",
    "CREATE TRIGGER handoff_marks_lead AFTER INSERT OR UPDATE OF lead_id ON handoff_handoff"
    " FOR EACH ROW EXECUTE FUNCTION handoff_marks_lead()",
    """CREATE OR REPLACE FUNCTION lead_keeps_has_handoff() RETURNS trigger AS $$
    BEGIN
        NEW.has_handoff := true;
        RETURN NEW;
    END
    $$ LANGUAGE plpgsql""",
    "DROP TRIGGER IF EXISTS lead_keeps_has_handoff ON leadflow_lead",
    "CREATE TRIGGER lead_keeps_has_handoff BEFORE UPDATE OF has_handoff ON leadflow_lead"
    " FOR EACH ROW WHEN (OLD.has_handoff AND NOT NEW.has_handoff)"
    " EXECUTE FUNCTION lead_keeps_has_handoff()",
]
SQLITE_MARK = "UPDATE leadflow_lead SET has_handoff = 1 WHERE id = NEW.lead_id AND NOT has_handoff"
SQLITE_TRIGGERS = [
    "DROP TRIGGER IF EXISTS handoff_marks_lead_insert",
    f"CREATE TRIGGER handoff_marks_lead_insert AFTER INSERT ON handoff_handoff"
    f" BEGIN {SQLITE_MARK}; END",
    "DROP TRIGGER IF EXISTS handoff_marks_lead_update",
    f"CREATE TRIGGER handoff_marks_lead_update AFTER UPDATE OF lead_id ON handoff_handoff"
    f" BEGIN {SQLITE_MARK}; END",
    "DROP TRIGGER IF EXISTS lead_keeps_has_handoff",
    "CREATE TRIGGER lead_keeps_has_handoff AFTER UPDATE OF has_handoff ON leadflow_lead"
    " WHEN OLD.has_handoff AND NOT NEW.has_handoff"
    " BEGIN UPDATE leadflow_lead SET has_handoff = 1 WHERE id = NEW.id; END",
]


def fill(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor not in ("postgresql", "sqlite"):
        raise NotImplementedError(f"No has_handoff triggers for {vendor}.")
    for statement in PG_TRIGGERS if vendor == "postgresql" else SQLITE_TRIGGERS:
        schema_editor.execute(statement)
    schema_editor.execute(NEXT_DUE)
    schema_editor.execute(HAS_HANDOFF)


def unfill(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP TRIGGER IF EXISTS handoff_marks_lead ON handoff_handoff")
        schema_editor.execute("DROP TRIGGER IF EXISTS lead_keeps_has_handoff ON leadflow_lead")
        schema_editor.execute("DROP FUNCTION IF EXISTS handoff_marks_lead()")
        schema_editor.execute("DROP FUNCTION IF EXISTS lead_keeps_has_handoff()")
    else:
        for name in ("handoff_marks_lead_insert", "handoff_marks_lead_update"):
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}")
        schema_editor.execute("DROP TRIGGER IF EXISTS lead_keeps_has_handoff")


class Migration(migrations.Migration):
    dependencies = [
        ("handoff", "0007_account_owner"),
        ("leadflow", "0011_lead_has_handoff"),
        # The backfill reads the timers.
        ("sla", "0008_timer_breached_idx"),
    ]

    operations = [
        migrations.AddField(
            model_name="handoff",
            name="next_due_at",
            field=models.DateTimeField(
                blank=True, editable=False, null=True, verbose_name="next deadline"
            ),
        ),
        migrations.AddField(
            model_name="handoff",
            name="next_due_kind",
            field=models.CharField(
                blank=True, db_default="", default="", editable=False, max_length=20
            ),
        ),
        migrations.AddIndex(
            model_name="handoff",
            index=models.Index(
                fields=["next_due_at", "assigned_at", "created_at", "id"],
                name="handoff_urgency_idx",
            ),
        ),
        migrations.RunPython(fill, unfill),
    ]
