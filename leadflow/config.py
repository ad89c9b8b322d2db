"""Per-process copies of small configuration tables that every event reads.

Routing an MQL and starting its SLA timers read the routing rules, the default team, the
timer policies and the business calendar: five queries per lead that nearly never
change. Each process keeps the loaded form tagged with `ConfigVersion.version`, which
triggers on those tables change with every INSERT, UPDATE, DELETE (and TRUNCATE on
PostgreSQL) in the writing transaction itself. So a change is seen by every process as
soon as it commits, bulk `.update()` and raw SQL included, and a rolled-back one never
counts; reading the version is one small query instead of the tables' queries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from django.db import connection

T = TypeVar("T")

_copies: dict[str, tuple[int, Any]] = {}


def config_version() -> int | None:
    """The current version, or None when the row is missing (e.g. right after a flush)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT version FROM leadflow_configversion WHERE id = 1")
        row = cursor.fetchone()
    return None if row is None else int(row[0])


def config_cached(name: str, load: Callable[[], T]) -> T:
    """`load()`'s result, loaded again only when the configuration version has changed.

    The result is shared by every caller in the process: treat it as read-only."""
    version = config_version()
    hit = _copies.get(name)
    if version is not None and hit is not None and hit[0] == version:
        return hit[1]
    value = load()
    if version is not None:
        _copies[name] = (version, value)
    return value


# --- triggers (used by the migrations of the apps that own the tables) -------------------

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION leadflow_config_changed() RETURNS trigger AS $$
BEGIN
    INSERT INTO leadflow_configversion (id, version)
    VALUES (1, floor(random() * 9e15)::bigint)
    ON CONFLICT (id) DO UPDATE SET version = excluded.version;
    RETURN NULL;
END
$$ LANGUAGE plpgsql
"""
# random() & (2^53 - 1): non-negative (abs() of the smallest int64 would overflow).
_SQLITE_BUMP = (
    "INSERT INTO leadflow_configversion (id, version) VALUES (1, random() & 9007199254740991)"
    " ON CONFLICT (id) DO UPDATE SET version = excluded.version"
)


def _trigger_sql(vendor: str, table: str, update_of: Iterable[str] | None) -> list[str]:
    name = f"{table}_config_changed"
    columns = ", ".join(update_of) if update_of else ""
    update = f"UPDATE OF {columns}" if columns else "UPDATE"
    if vendor == "postgresql":
        return [
            _PG_FUNCTION,
            f"DROP TRIGGER IF EXISTS {name} ON {table}",
            f"CREATE TRIGGER {name} AFTER INSERT OR {update} OR DELETE ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION leadflow_config_changed()",
            f"DROP TRIGGER IF EXISTS {name}_truncate ON {table}",
            f"CREATE TRIGGER {name}_truncate AFTER TRUNCATE ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION leadflow_config_changed()",
        ]
    if vendor == "sqlite":
        statements = []
        for event in ("INSERT", update, "DELETE"):
            suffix = event.split()[0].lower()
            statements += [
                f"DROP TRIGGER IF EXISTS {name}_{suffix}",
                f"CREATE TRIGGER {name}_{suffix} AFTER {event} ON {table}"
                f" BEGIN {_SQLITE_BUMP}; END",
            ]
        return statements
    raise NotImplementedError(f"No configuration triggers for {vendor}.")


def config_triggers(table: str, *, update_of: Iterable[str] | None = None) -> Any:
    """A migration operation that makes writes to `table` change the configuration
    version (only UPDATEs of `update_of` columns, when given: e.g. not a counter)."""
    from django.db import migrations

    columns = tuple(update_of) if update_of else None

    def create(apps: Any, schema_editor: Any) -> None:
        for statement in _trigger_sql(schema_editor.connection.vendor, table, columns):
            schema_editor.execute(statement)

    def drop(apps: Any, schema_editor: Any) -> None:
        vendor = schema_editor.connection.vendor
        name = f"{table}_config_changed"
        if vendor == "postgresql":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}_truncate ON {table}")
        else:
            for suffix in ("insert", "update", "delete"):
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}_{suffix}")

    return migrations.RunPython(create, drop, elidable=False)
