"""Set-based seeding for the benches, checked against the models so it cannot drift.

The benches seed hundreds of thousands of rows with `INSERT … SELECT … FROM
generate_series`, which skips `Model.save()`. When the identity work added matching
keys that save() computes, the seeds kept inserting without them and nothing noticed
until someone ran a bench. Three checks close that gap:

- `insert_select()` builds the column list from the model: a column the model requires
  (NOT NULL, no database default) that the seed does not set, or a column the model
  lacks, stops the seed with the table and column named, before any SQL runs;
- the columns the app derives in `save()` (the matching keys, the region) are never
  written by a seed: `insert_select()` computes them with the app's own functions
  (`leadflow.normalize`, `leadflow.japan`) over the distinct seeded values;
- `audit()` re-saves a sample of seeded rows through the model's own `save()` (rolled
  back), reads them back, and fails if save() or the database's triggers would store
  anything else, so a newly derived column or a changed normalisation breaks the seed
  loudly instead of skewing the figures.

Both seeds run in CI at smoke size (`.ci/bench_smoke.sh`), so a drift fails there.
"""

from __future__ import annotations

import datetime as dt
import importlib
import io
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django.db import connection, models, transaction

from leadflow.japan import region_for
from leadflow.models import Company, Lead
from leadflow.normalize import (
    company_key,
    company_search_key,
    lead_search_key,
    name_key,
    phone_key,
)


# What each model's save() derives, as (the app's function, the columns it reads).
# `audit()` is what proves this table matches save(): keep them together.
def _lead_search_key(
    last_name: str, first_name: str, last_kana: str, first_kana: str, email: str, phone: str
) -> str:
    return lead_search_key(
        last_name=last_name,
        first_name=first_name,
        last_name_kana=last_kana,
        first_name_kana=first_kana,
        email=email,
        phone=phone,
    )


DERIVED: dict[type[models.Model], dict[str, tuple[Callable[..., str], tuple[str, ...]]]] = {
    Company: {
        "region": (region_for, ("prefecture",)),
        "match_key": (company_key, ("name",)),
        "search_key": (company_search_key, ("name", "name_kana")),
    },
    Lead: {
        "name_key": (name_key, ("last_name", "first_name")),
        "phone_key": (phone_key, ("phone",)),
        "search_key": (
            _lead_search_key,
            ("last_name", "first_name", "last_name_kana", "first_name_kana", "email", "phone"),
        ),
    },
}


def handoff_search_key_sql(lead_id: str) -> str:
    """The SQL of a seeded handoff's search key, from its lead (`lead_id`, an SQL
    expression) and the lead's company: the very expression the database's triggers
    compute (handoff migration 0012), set in the seed's own INSERT so a hundred thousand
    handoffs are not keyed one trigger call at a time. `audit(Handoff)` proves it is
    what the database would store."""
    migration = importlib.import_module("handoff.migrations.0012_handoff_search_key")
    return migration.KEY.format(lead=lead_id)


# Seconds each table's seed took in this process (table → seconds), for the reports, and
# a line on stderr per table as it finishes: a seed of millions of rows runs for minutes,
# and a stalled one should say where it stalled.
SEED_SECONDS: dict[str, float] = {}


@contextmanager
def _timed(table: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    seconds = time.perf_counter() - started
    SEED_SECONDS[table] = round(SEED_SECONDS.get(table, 0.0) + seconds, 1)
    print(f"seeded {table} in {seconds:.1f} s", file=sys.stderr, flush=True)


class SeedError(SystemExit):
    """The seed does not store what the app would: fix the seed (the message says where)."""


def required_columns(model: type[models.Model]) -> set[str]:
    """The columns an INSERT must set: NOT NULL, no database default, not generated."""
    return {
        field.column
        for field in model._meta.concrete_fields
        if not field.null
        and not isinstance(field, models.AutoField | models.BigAutoField | models.SmallAutoField)
        and field.db_default is models.NOT_PROVIDED
        and not getattr(field, "generated", False)
    }


def _copy_text(value: Any) -> str:
    if value is None:
        return r"\N"
    text = str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def insert_select(
    model: type[models.Model], values: dict[str, str], source: str, params: Sequence[Any] = ()
) -> None:
    """INSERT INTO <model's table> (<columns>) SELECT <values> FROM <source>, in the
    order the source gives the rows (ids follow it), with the derived columns computed
    by the app's functions. `values` maps column → SQL expression; `%` in it is a
    placeholder marker, so write the modulo operator as `%%`."""
    table = model._meta.db_table
    known = {field.column for field in model._meta.concrete_fields}
    derived = DERIVED.get(model, {})
    problems = []
    if unknown := sorted(values.keys() - known):
        problems.append(f"sets columns the model does not have: {unknown}")
    if computed := sorted(values.keys() & derived.keys()):
        problems.append(f"sets columns save() derives (they are computed here): {computed}")
    if missing := sorted(required_columns(model) - values.keys() - derived.keys()):
        problems.append(f"leaves out columns the model requires (NOT NULL): {missing}")
    for column, (_function, sources) in derived.items():
        if lacking := sorted(set(sources) - values.keys()):
            problems.append(f"{column} is derived from {lacking}, which the seed does not set")
    if problems:
        raise SeedError(f"Seed of {table} " + "; ".join(problems) + ": fix bench/ seeding.")
    with _timed(table):
        _insert_select(table, values, derived, source, params)
        # Statistics now, not at the end of the seed: the seed's next statements read this
        # table (an UPDATE of every handoff from its timers), and a table just filled in
        # bulk has none: the planner then guesses 0.5 % of the rows per key and, for the
        # handoffs' next deadline, scanned a whole timer index per handoff (minutes).
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {table}")


def _insert_select(
    table: str,
    values: dict[str, str],
    derived: dict[str, tuple[Callable[..., str], tuple[str, ...]]],
    source: str,
    params: Sequence[Any],
) -> None:
    if not derived:
        with transaction.atomic(), connection.cursor() as cursor, _indexes_after(cursor, table):
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(values)})"
                f" SELECT {', '.join(values.values())} FROM {source}",
                list(params),
            )
        return
    with transaction.atomic(), connection.cursor() as cursor, _indexes_after(cursor, table):
        selected = ", ".join(f"{expr} AS {column}" for column, expr in values.items())
        cursor.execute(
            f"CREATE TEMP TABLE _seed ON COMMIT DROP AS SELECT row_number() OVER () AS _row,"
            f" {selected} FROM {source}",
            list(params),
        )
        cursor.execute("ANALYZE _seed")
        joins = []
        for n, (column, (function, sources)) in enumerate(derived.items()):
            keys = f"_seed_key{n}"
            cursor.execute(
                f"CREATE TEMP TABLE {keys} ON COMMIT DROP AS"
                f" SELECT DISTINCT {', '.join(sources)}, ''::text AS key FROM _seed WITH NO DATA"
            )
            _fill_keys(cursor, keys, sources, function)
            # Temp tables have no statistics: without them the planner guesses a handful
            # of rows and joins a million seeded rows to a million keys by nested loop.
            cursor.execute(f"ANALYZE {keys}")
            on = " AND ".join(f"s.{name} = {keys}.{name}" for name in sources)
            joins.append((column, keys, on))
        columns = [*values, *(column for column, _keys, _on in joins)]
        picked = [*(f"s.{column}" for column in values), *(f"{k}.key" for _c, k, _o in joins)]
        join_sql = " ".join(f"JOIN {keys} ON {on}" for _column, keys, on in joins)
        # A join on several columns of distinct values (the six a lead's search key reads)
        # is estimated at a handful of rows whatever the statistics say, and the planner
        # then nests loops over a million keys per seeded row: hash joins only.
        cursor.execute("SET LOCAL enable_nestloop = off")
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(columns)})"
            f" SELECT {', '.join(picked)} FROM _seed s {join_sql} ORDER BY s._row"
        )
        cursor.execute("DROP TABLE _seed")
        for _column, keys, _on in joins:
            cursor.execute(f"DROP TABLE {keys}")


@contextmanager
def _indexes_after(cursor: Any, table: str) -> Iterator[None]:
    """Into an empty table (a fresh seed), insert first and build its secondary indexes
    after: one sort per index instead of a million single inserts into each (a trigram
    GIN index most of all). Indexes behind a constraint (the primary key, unique
    constraints) stay. Inside the seed's transaction: a failure restores them."""
    cursor.execute(f"SELECT NOT EXISTS (SELECT 1 FROM {table})")
    if not cursor.fetchone()[0]:
        yield
        return
    cursor.execute(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i"
        " JOIN pg_class c ON c.oid = i.indexrelid"
        " WHERE i.indrelid = %s::regclass AND NOT i.indisprimary"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)",
        [table],
    )
    indexes = cursor.fetchall()
    for name, _definition in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    yield
    # Django's foreign keys are checked at commit (deferred): check them now, as an index
    # cannot be built over rows with checks pending.
    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    for _name, definition in indexes:
        cursor.execute(definition)


def _fill_keys(cursor: Any, keys: str, sources: tuple[str, ...], function: Callable) -> None:
    """The app's function over each distinct source tuple, streamed back with COPY (a
    million distinct names would not fit comfortably in one Python list)."""
    reader = connection.connection.cursor(name=f"{keys}_reader")
    reader.itersize = 20_000
    reader.execute(f"SELECT DISTINCT {', '.join(sources)} FROM _seed")
    while rows := reader.fetchmany(20_000):
        buffer = io.StringIO()
        for row in rows:
            buffer.write("\t".join(_copy_text(v) for v in (*row, function(*row))) + "\n")
        buffer.seek(0)
        cursor.copy_expert(f"COPY {keys} FROM STDIN", buffer)
    reader.close()


def audit(model: type[models.Model], sample: int = 20) -> int:
    """Re-save `sample` seeded rows (spread over the table) through the model's save()
    in a rolled-back transaction and read them back; fail if the stored values change.
    Read back, so what the database derives on save (the triggers' columns: a handoff's
    search key) is checked as well as what save() computes. Returns the number of rows
    checked."""
    total = model._default_manager.count()
    if not total:
        raise SeedError(f"Seed of {model._meta.db_table} inserted no rows.")
    fields = [f for f in model._meta.concrete_fields if not getattr(f, "auto_now", False)]
    offsets = sorted({n * total // sample for n in range(sample)})
    rows = [model._default_manager.order_by("pk")[offset] for offset in offsets]
    for row in rows:
        seeded = {f.column: getattr(row, f.attname) for f in fields}
        with transaction.atomic():
            row.save()
            row.refresh_from_db(fields=[f.attname for f in fields])
            transaction.set_rollback(True)
        saved = {f.column: getattr(row, f.attname) for f in fields}
        if changed := {c: (seeded[c], saved[c]) for c in seeded if seeded[c] != saved[c]}:
            detail = ", ".join(
                f"{c}: seeded {a!r}, save() stores {b!r}" for c, (a, b) in changed.items()
            )
            raise SeedError(
                f"Seed of {model._meta.db_table} (row {row.pk}) differs from the app: {detail}."
                " Compute it as the app does (bench/seeding.py DERIVED)."
            )
    return len(rows)


@contextmanager
def indexes_deferred(*seeded: type[models.Model]) -> Iterator[list[str]]:
    """Drop the plain (non-unique) indexes of the seeded models' tables for a bulk seed and
    build them again afterwards, also when the seed fails. PostgreSQL only.

    Building an index is one sort of the finished table; keeping it while a million rows
    go in is a million inserts into each, and a trigram GIN index (the lead's search key)
    is the slowest of all to fill row by row. Unique indexes stay: they are rules the
    seed must keep, not only speed. Yields the names of the indexes it rebuilds."""
    tables = [model._meta.db_table for model in seeded]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT ci.relname, pg_get_indexdef(ci.oid) FROM pg_index x"
            " JOIN pg_class ci ON ci.oid = x.indexrelid"
            " JOIN pg_class ct ON ct.oid = x.indrelid"
            " WHERE ct.relname = ANY(%s) AND NOT x.indisunique AND NOT x.indisprimary"
            " ORDER BY ci.relname",
            [tables],
        )
        definitions = cursor.fetchall()
        for name, _definition in definitions:
            cursor.execute(f'DROP INDEX "{name}"')
    try:
        yield [name for name, _definition in definitions]
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET maintenance_work_mem = '256MB'")
            for _name, definition in definitions:
                cursor.execute(definition)
            cursor.execute("RESET maintenance_work_mem")


def remember_seeded_size(marker: str, size: dict[str, Any]) -> None:
    """Record in the database (table `marker`) the size of the rows just seeded, for a
    later run's `--reuse`."""
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {marker} (size jsonb, at timestamptz)")
        cursor.execute(f"DELETE FROM {marker}")
        cursor.execute(f"INSERT INTO {marker} VALUES (%s, now())", [json.dumps(size)])


def seeded_size_at(marker: str, size: dict[str, Any]) -> dt.datetime | None:
    """When rows of this size were last seeded (`remember_seeded_size`), else None."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [marker])
        if cursor.fetchone()[0] is None:
            return None
        # As text: Django's PostgreSQL backend hands jsonb back undecoded (a str), which
        # never equalled the size, so --reuse seeded afresh every time.
        cursor.execute(f"SELECT size::text, at FROM {marker}")
        row = cursor.fetchone()
    if row is None or json.loads(row[0]) != size:
        return None
    return row[1]
