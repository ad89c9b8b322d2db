"""Handoff.search_key: the searchable text of the handoff's lead and of its company (the
lead's search_key, a space, the company's; the KEY expression below), kept
by the database, filled for the existing rows, and indexed with trigrams on PostgreSQL.

Why on the handoff: the lists search handoffs. With the key on the lead and the company,
a common name (さとうたろう: a fifth of the leads) was a union of two subqueries over
other tables' trigram indexes whose ids were then hashed against every handoff; here it
is one trigram index over the handoff table alone, and the lists' other conditions
(status, team, rep) apply to the same rows.

Why triggers: a lead's or a company's key changes through save(), QuerySet.update(), a
merge moving handoffs, the bench's bulk seeds; the handoff must follow each of them, and
no path should have to remember it. So the database writes it:

- a handoff inserted without a key (every ORM insert) gets it from its lead and company;
  an insert that brings one (the bench's set-based seed, audited against this) keeps it;
- an update of a handoff's lead_id or search_key (a merge moving it; a save() of a copy
  loaded before a rename, writing the old key back) computes it again;
- a lead whose key or company changes, and a company whose key changes, rewrite the keys
  of their handoffs.

SQLite: adding this NOT NULL column rebuilds handoff_handoff, which drops the triggers
defined on it, has_handoff's among them (0008): they are created again here."""

import importlib

from django.db import migrations, models

# The key of the handoffs of lead {lead}: trim() drops the space when either side is
# empty, as " ".join() of the non-empty parts does.
KEY = (
    "coalesce((SELECT trim(l.search_key || ' ' || coalesce(c.search_key, ''))"
    " FROM leadflow_lead l LEFT JOIN leadflow_company c ON c.id = l.company_id"
    " WHERE l.id = {lead}), '')"
)
BACKFILL = f"UPDATE handoff_handoff SET search_key = {KEY.format(lead='handoff_handoff.lead_id')}"
OF_LEAD = "UPDATE handoff_handoff SET search_key = {key} WHERE lead_id = NEW.id"
OF_COMPANY = (
    "UPDATE handoff_handoff SET search_key = {key}"
    " WHERE lead_id IN (SELECT id FROM leadflow_lead WHERE company_id = NEW.id)"
)

PG_TRIGGERS = [
    f"""CREATE OR REPLACE FUNCTION handoff_search_key() RETURNS trigger AS $$
    BEGIN
        NEW.search_key := {KEY.format(lead="NEW.lead_id")};
        RETURN NEW;
    END
    $$ LANGUAGE plpgsql""",
    "DROP TRIGGER IF EXISTS handoff_search_key_insert ON handoff_handoff",
    "CREATE TRIGGER handoff_search_key_insert BEFORE INSERT ON handoff_handoff"
    " FOR EACH ROW WHEN (NEW.search_key = '') EXECUTE FUNCTION handoff_search_key()",
    "DROP TRIGGER IF EXISTS handoff_search_key_update ON handoff_handoff",
    "CREATE TRIGGER handoff_search_key_update BEFORE UPDATE OF lead_id, search_key"
    " ON handoff_handoff FOR EACH ROW EXECUTE FUNCTION handoff_search_key()",
    f"""CREATE OR REPLACE FUNCTION lead_search_key_to_handoffs() RETURNS trigger AS $$
    BEGIN
        {OF_LEAD.format(key=KEY.format(lead="NEW.id"))};
        RETURN NULL;
    END
    $$ LANGUAGE plpgsql""",
    "DROP TRIGGER IF EXISTS lead_search_key_to_handoffs ON leadflow_lead",
    "CREATE TRIGGER lead_search_key_to_handoffs AFTER UPDATE OF search_key, company_id"
    " ON leadflow_lead FOR EACH ROW WHEN (OLD.search_key IS DISTINCT FROM NEW.search_key"
    " OR OLD.company_id IS DISTINCT FROM NEW.company_id)"
    " EXECUTE FUNCTION lead_search_key_to_handoffs()",
    f"""CREATE OR REPLACE FUNCTION company_search_key_to_handoffs() RETURNS trigger AS $$
    BEGIN
        {OF_COMPANY.format(key=KEY.format(lead="handoff_handoff.lead_id"))};
        RETURN NULL;
    END
    $$ LANGUAGE plpgsql""",
    "DROP TRIGGER IF EXISTS company_search_key_to_handoffs ON leadflow_company",
    "CREATE TRIGGER company_search_key_to_handoffs AFTER UPDATE OF search_key"
    " ON leadflow_company FOR EACH ROW WHEN (OLD.search_key IS DISTINCT FROM NEW.search_key)"
    " EXECUTE FUNCTION company_search_key_to_handoffs()",
]
PG_DROP = [
    "DROP TRIGGER IF EXISTS handoff_search_key_insert ON handoff_handoff",
    "DROP TRIGGER IF EXISTS handoff_search_key_update ON handoff_handoff",
    "DROP TRIGGER IF EXISTS lead_search_key_to_handoffs ON leadflow_lead",
    "DROP TRIGGER IF EXISTS company_search_key_to_handoffs ON leadflow_company",
    "DROP FUNCTION IF EXISTS handoff_search_key()",
    "DROP FUNCTION IF EXISTS lead_search_key_to_handoffs()",
    "DROP FUNCTION IF EXISTS company_search_key_to_handoffs()",
]

# SQLite has no BEFORE trigger that may change NEW: AFTER triggers update the row. Its
# recursive triggers are off (a trigger does not fire itself), and the guard on the
# update trigger stops it anyway once the key is right.
OWN_KEY = KEY.format(lead="NEW.lead_id")
SQLITE_TRIGGERS = [
    "DROP TRIGGER IF EXISTS handoff_search_key_insert",
    "CREATE TRIGGER handoff_search_key_insert AFTER INSERT ON handoff_handoff"
    f" WHEN NEW.search_key = '' BEGIN"
    f" UPDATE handoff_handoff SET search_key = {OWN_KEY} WHERE id = NEW.id; END",
    "DROP TRIGGER IF EXISTS handoff_search_key_update",
    "CREATE TRIGGER handoff_search_key_update AFTER UPDATE OF lead_id, search_key"
    f" ON handoff_handoff WHEN NEW.search_key IS NOT {OWN_KEY} BEGIN"
    f" UPDATE handoff_handoff SET search_key = {OWN_KEY} WHERE id = NEW.id; END",
    "DROP TRIGGER IF EXISTS lead_search_key_to_handoffs",
    "CREATE TRIGGER lead_search_key_to_handoffs AFTER UPDATE OF search_key, company_id"
    " ON leadflow_lead WHEN OLD.search_key IS NOT NEW.search_key"
    " OR OLD.company_id IS NOT NEW.company_id BEGIN"
    f" {OF_LEAD.format(key=KEY.format(lead='handoff_handoff.lead_id'))}; END",
    "DROP TRIGGER IF EXISTS company_search_key_to_handoffs",
    "CREATE TRIGGER company_search_key_to_handoffs AFTER UPDATE OF search_key"
    " ON leadflow_company WHEN OLD.search_key IS NOT NEW.search_key BEGIN"
    f" {OF_COMPANY.format(key=KEY.format(lead='handoff_handoff.lead_id'))}; END",
]
SQLITE_DROP = [
    f"DROP TRIGGER IF EXISTS {name}"
    for name in (
        "handoff_search_key_insert",
        "handoff_search_key_update",
        "lead_search_key_to_handoffs",
        "company_search_key_to_handoffs",
    )
]

INDEX = (
    "CREATE INDEX IF NOT EXISTS handoff_search_trgm_idx ON handoff_handoff"
    " USING gin (search_key gin_trgm_ops)"
)
# The trigram indexes the lists' search used on the other tables (leadflow 0010, 0011):
# nothing else searches those keys, and each costs every lead insert and rename.
OLD_INDEXES = {
    "lead_search_trgm_idx": "ON leadflow_lead USING gin (search_key gin_trgm_ops)",
    "company_search_trgm_idx": "ON leadflow_company USING gin (search_key gin_trgm_ops)",
    "lead_handoff_search_trgm_idx": (
        "ON leadflow_lead USING gin (search_key gin_trgm_ops) WHERE has_handoff"
    ),
}


def _vendor(schema_editor) -> str:
    vendor = schema_editor.connection.vendor
    if vendor not in ("postgresql", "sqlite"):
        raise NotImplementedError(f"No search key triggers for {vendor}.")
    return vendor


def create(apps, schema_editor):
    vendor = _vendor(schema_editor)
    # Before the triggers: the backfill would otherwise compute every key twice.
    schema_editor.execute(BACKFILL)
    if vendor == "postgresql":
        for statement in PG_TRIGGERS:
            schema_editor.execute(statement)
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        schema_editor.execute(INDEX)
        for name in OLD_INDEXES:
            schema_editor.execute(f"DROP INDEX IF EXISTS {name}")
        return
    for statement in SQLITE_TRIGGERS:
        schema_editor.execute(statement)
    # The rebuilt table lost has_handoff's triggers: the same statements as 0008.
    has_handoff = importlib.import_module("handoff.migrations.0008_next_due_at")
    for statement in has_handoff.SQLITE_TRIGGERS:
        schema_editor.execute(statement)


def drop(apps, schema_editor):
    if _vendor(schema_editor) == "postgresql":
        for statement in PG_DROP:
            schema_editor.execute(statement)
        schema_editor.execute("DROP INDEX IF EXISTS handoff_search_trgm_idx")
        for name, definition in OLD_INDEXES.items():
            schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} {definition}")
        return
    for statement in SQLITE_DROP:
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("handoff", "0011_routing_plans"),
        ("leadflow", "0011_lead_has_handoff"),
    ]

    operations = [
        migrations.AddField(
            model_name="handoff",
            name="search_key",
            field=models.TextField(blank=True, db_default="", default="", editable=False),
        ),
        migrations.RunPython(create, drop),
    ]
