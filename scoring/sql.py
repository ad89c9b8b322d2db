"""Set-based scoring: the SQL that computes fit, engagement and the running state for
many leads in one statement, on PostgreSQL and SQLite alike.

It implements exactly the definitions in `scoring.engine` (first matching rule per event,
caps in (occurred_at, id) order, per-rule decay, per-rule rounding half away from zero).
The rules of one model are few and known when the SQL is built, so they become CASE
expressions rather than a join: every event is read once, ranked once (only when some
rule has a cap) and aggregated twice (per lead and rule, then per lead).

Rule ids, points, caps and half-lives are integers checked by the model and are written
into the SQL; every string (event kinds, values, JSON keys, time zone) is a parameter.

Only three spots differ by database (see `Dialect`): epoch seconds, JSON access and
aggregation, and date truncation in the local time zone. Django registers POWER, FLOOR
and REGEXP on SQLite connections, so the arithmetic itself is shared.
"""

# The statements are built from integers the models validate (rule ids, points, caps,
# half-lives) and fixed identifiers; every string value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import connection

from scoring.engine import (
    MIN_EXPONENT,
    ROUND_SLACK,
    SQL_NUMBER_PATTERN,
    CompiledModel,
    Condition,
)
from scoring.models import COMPANY_FIELD_PATHS, Operator

NUMBER_FIELDS = {"company.employee_count"}


class Dialect:
    def __init__(self) -> None:
        self.pg = connection.vendor == "postgresql"
        if connection.vendor not in ("postgresql", "sqlite"):
            vendor = connection.vendor
            raise NotImplementedError(f"Scoring SQL needs PostgreSQL or SQLite, not {vendor}.")

    def epoch(self, col: str) -> str:
        if self.pg:
            # date_part() computes in double precision; EXTRACT gives numeric (since
            # PostgreSQL 14), whose division and cast cost more than the rest of an
            # event's decay. The same number: microseconds / 1e6, rounded once.
            return f"date_part('epoch', {col})"
        return f"((julianday({col}) - 2440587.5) * 86400.0)"

    def json_text(self, col: str, key: str) -> tuple[str, list]:
        if self.pg:
            return f"({col} ->> %s)", [key]
        path = '$."' + key + '"'
        # json_extract gives SQL 1/0 for JSON true/false; PostgreSQL's ->> gives 'true'.
        return (
            f"(CASE json_type({col}, %s) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' "
            f"ELSE CAST(json_extract({col}, %s) AS TEXT) END)",
            [path, path],
        )

    def lower(self, x: str) -> str:
        # ASCII-only on both: SQLite's lower() is; PostgreSQL's is locale-aware, except
        # under the "C" collation, where it changes A-Z alone. (translate() with the 26
        # letters did the same some 25 times slower: ~10 µs a value, once per fit field
        # per lead and per page-view event, the largest part of a rescore's time.)
        if self.pg:
            return f'lower(({x}) COLLATE "C")'
        return f"lower({x})"

    def trim(self, x: str) -> str:
        return f"btrim({x})" if self.pg else f"trim({x})"

    def regex(self, x: str) -> str:
        return f"{x} ~ %s" if self.pg else f"{x} REGEXP %s"

    @property
    def real(self) -> str:
        return "double precision" if self.pg else "REAL"

    def period(self, col: str, unit: str) -> tuple[str, list]:
        """A value that is equal for two times in the same local day/week/month."""
        if self.pg:
            return f"date_trunc('{unit}', {col} AT TIME ZONE %s)", [settings.TIME_ZONE]
        return (
            f"django_date_trunc('{unit}', {col}, %s, %s)",
            [settings.TIME_ZONE, connection.timezone_name],
        )

    def period_text(self, x: str) -> str:
        return f"to_char({x}, 'YYYY-MM-DD')" if self.pg else x

    def json_object_agg(self, key: str, value: str, where: str) -> str:
        if self.pg:
            # json (text) aggregates are cheaper than jsonb; the column cast happens once.
            return f"json_object_agg(CAST({key} AS text), {value}) FILTER (WHERE {where})"
        return f"json_group_object(CAST({key} AS TEXT), {value}) FILTER (WHERE {where})"

    def json_entries(self, col: str, alias: str) -> str:
        """A FROM item: a row per key of the JSON object `col` ({alias}.key, {alias}.value)."""
        return f"jsonb_each({col}) AS {alias}" if self.pg else f"json_each({col}) AS {alias}"

    def json_number_at(self, array: str, index: int) -> str:
        """Element `index` of the JSON array `array`, as a number."""
        if self.pg:
            return f"CAST({array} ->> {int(index)} AS double precision)"
        return f"json_extract({array}, '$[{int(index)}]')"

    def json_array(self, items: str) -> str:
        return f"json_build_array({items})" if self.pg else f"json_array({items})"

    def as_json(self, text: str) -> str:
        return f"CAST({text} AS jsonb)" if self.pg else text

    @property
    def empty_object(self) -> str:
        return "CAST('{}' AS json)" if self.pg else "'{}'"

    @property
    def materialized(self) -> str:
        # PostgreSQL inlines a CTE used once and then evaluates a column's expression at
        # every reference; the rule CASEs are referenced several times, so compute once.
        return "MATERIALIZED " if self.pg else ""

    @property
    def null_time(self) -> str:
        return "CAST(NULL AS timestamp with time zone)" if self.pg else "NULL"

    @property
    def null_period(self) -> str:
        return "CAST(NULL AS timestamp)" if self.pg else "NULL"

    @property
    def distinct(self) -> str:
        return "IS DISTINCT FROM" if self.pg else "IS NOT"


def escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def round_sql(x: str) -> str:
    return (
        f"(CASE WHEN {x} < 0 THEN -FLOOR(-({x}) + {0.5 + ROUND_SLACK!r}) "
        f"ELSE FLOOR({x} + {0.5 + ROUND_SLACK!r}) END)"
    )


def condition_sql(
    d: Dialect, x: str, x_params: list, is_number: bool, cond: Condition, lowered: str = ""
):
    """SQL (and params) for `cond` on the value expression `x`; NULL never matches.
    `lowered`, if given, is `x` already as lower-cased text (a column computed once)."""
    op = cond.operator
    if op in (Operator.IS_SET, Operator.IS_EMPTY):
        if is_number:
            sql = f"{x} IS NOT NULL" if op == Operator.IS_SET else f"{x} IS NULL"
            return f"({sql})", list(x_params)
        if op == Operator.IS_SET:
            return f"({x} IS NOT NULL AND {d.trim(x)} <> '')", x_params * 2
        return f"({x} IS NULL OR {d.trim(x)} = '')", x_params * 2
    if op == Operator.BETWEEN:
        if is_number:
            number, params = x, list(x_params)
        else:
            trimmed = d.trim(x)
            number = f"(CASE WHEN {d.regex(trimmed)} THEN CAST({trimmed} AS {d.real}) END)"
            params = [*x_params, SQL_NUMBER_PATTERN, *x_params]
        parts, bounds = [], []
        if cond.low is not None:
            parts.append(f"{number} >= %s")
            bounds.extend([*params, cond.low])
        if cond.high is not None:
            parts.append(f"{number} <= %s")
            bounds.extend([*params, cond.high])
        return "(" + " AND ".join(parts) + ")", bounds
    if lowered:
        text, x_params = lowered, []
    else:
        text = d.lower(f"CAST({x} AS TEXT)" if is_number else x)
    if op == Operator.CONTAINS:
        return f"({text} LIKE %s ESCAPE '\\')", [*x_params, "%" + escape_like(cond.values[0]) + "%"]
    marks = ", ".join(["%s"] * len(cond.values))
    return f"({text} IN ({marks}))", [*x_params, *cond.values]


def field_sql(d: Dialect, path: str) -> tuple[str, list, bool]:
    if path.startswith("attributes."):
        sql, params = d.json_text("l.attributes", path[len("attributes.") :])
        return sql, params, False
    if path in COMPANY_FIELD_PATHS:
        return f"c.{path[len('company.') :]}", [], path in NUMBER_FIELDS
    return f"l.{path}", [], False


@dataclass
class Sql:
    text: str = ""
    params: list = field(default_factory=list)

    def add(self, text: str, params: list | None = None) -> Sql:
        self.text += text
        self.params.extend(params or [])
        return self


@dataclass(frozen=True)
class LeadFilter:
    """Which leads to score: an id range, one lead, all, or those in a cutoff table."""

    sql: str  # uses {col} for the lead id column
    params: tuple = ()

    @classmethod
    def id_range(cls, after: int, upto: int) -> LeadFilter:
        return cls("{col} > %s AND {col} <= %s", (after, upto))

    @classmethod
    def one(cls, lead_id: int) -> LeadFilter:
        return cls("{col} = %s", (lead_id,))

    @classmethod
    def everyone(cls) -> LeadFilter:
        return cls("1 = 1")

    def on(self, col: str) -> tuple[str, list]:
        return self.sql.format(col=col), list(self.params)


def event_kinds(model: CompiledModel) -> list[str]:
    """The event kinds `model` reads: its rules' and its hand-raiser's."""
    return sorted({r.kind for r in model.engagement_rules} | ({model.hand_raiser_kind} - {""}))


def events_cte(
    models: list[CompiledModel], *, leads: LeadFilter, name: str, cutoff_cte: str | None = None
) -> Sql | None:
    """CTE `name` (without WITH): the events of `leads` that any of `models` reads
    (lead_id, id, occurred_at, kind, properties), read from the table once for
    `scores_cte(events_from=name)` of each model. With `cutoff_cte`, every event of its
    leads instead, of any kind and time (the caller also asks what they had before).
    None when no model reads any event.

    Why: a batch's events are spread over the whole events table (they arrive
    interleaved with everyone else's), so each read of them is a random read of most
    of its pages; the draft and the published model then share one."""
    d = Dialect()
    kinds = sorted({kind for model in models for kind in event_kinds(model)})
    if not kinds:
        return None
    where, where_params = leads.on("e.lead_id")
    sql = Sql(
        f"{name} AS {d.materialized}(SELECT e.lead_id, e.id, e.occurred_at, e.kind,"
        " e.properties FROM leadflow_engagementevent e"
    )
    if cutoff_cte:
        sql.add(
            f" WHERE e.lead_id IN (SELECT lead_id FROM {cutoff_cte}) AND {where})", where_params
        )
        return sql
    marks = ", ".join(["%s"] * len(kinds))
    return sql.add(f" WHERE {where} AND e.kind IN ({marks}))", [*where_params, *kinds])


def scores_cte(
    model: CompiledModel,
    *,
    prefix: str,
    leads: LeadFilter,
    as_of: datetime | None = None,
    cutoff_cte: str | None = None,
    fit_from: str | None = None,
    events_from: str | None = None,
) -> Sql:
    """CTEs (without the leading WITH) ending in `{prefix}scores`:
    (lead_id, fit, fit_rules, engagement, state, last_event_at, hand_raised_at).

    Scores are as of `as_of`, or, with `cutoff_cte` (a CTE name with columns lead_id,
    as_of), as of each lead's own time using only the events up to then (backtests).

    `fit_from` replaces the FROM of the fit: a clause naming `l` (with `id`, the lead
    fields and `attributes`) and `c` (the company fields) as the leads and companies do;
    the backtest passes the fields each lead had at its handoff (scoring.snapshots).

    `events_from` names a CTE of `events_cte` to read the events from instead of the
    table (it holds at least `leads`' events of this model's kinds)."""
    d = Dialect()
    p = prefix
    out = Sql()

    # --- fit: each field read (and lower-cased) once, one 0/1 column per rule, then
    # category clamps. Materialised so each expression is computed once per lead.
    fields = list(dict.fromkeys(rule.field for rule in model.fit_rules))
    out.add(f"{p}fitv AS {d.materialized}(SELECT l.id AS lead_id")
    for i, path in enumerate(fields):
        x, x_params, is_number = field_sql(d, path)
        text = f"CAST({x} AS TEXT)" if is_number else x
        out.add(f", {x} AS f{i}, {d.lower(text)} AS g{i}", [*x_params, *x_params])
    where, where_params = leads.on("l.id")
    source = fit_from or "leadflow_lead l LEFT JOIN leadflow_company c ON c.id = l.company_id"
    out.add(f" FROM {source} WHERE {where}", where_params)
    if cutoff_cte:
        out.add(f" AND l.id IN (SELECT lead_id FROM {cutoff_cte})")
    out.add(f"), {p}fitm AS {d.materialized}(SELECT lead_id")
    for rule in model.fit_rules:
        i = fields.index(rule.field)
        is_number = rule.field in NUMBER_FIELDS
        cond, cond_params = condition_sql(d, f"f{i}", [], is_number, rule.condition, f"g{i}")
        out.add(f", CASE WHEN {cond} THEN 1 ELSE 0 END AS m{rule.id}", cond_params)
    out.add(f" FROM {p}fitv)")

    terms = [f"m{r.id} * {r.points}" for r in model.fit_rules if r.category_id is None]
    for category in model.categories:
        members = [f"m{r.id} * {r.points}" for r in model.fit_rules if r.category_id == category.id]
        if not members:
            continue
        total = "(" + " + ".join(members) + ")"
        clamp = "CASE"
        if category.max_points is not None:
            clamp += f" WHEN {total} > {category.max_points} THEN {category.max_points}"
        if category.min_points is not None:
            clamp += f" WHEN {total} < {category.min_points} THEN {category.min_points}"
        terms.append(f"({clamp} ELSE {total} END)")
    fit_expr = " + ".join(terms) if terms else "0"
    if model.fit_rules:
        listing = " || ".join(
            f"CASE WHEN m{r.id} = 1 THEN '{r.id},' ELSE '' END" for r in model.fit_rules
        )
        rules_expr = f"'[' || rtrim({listing}, ',') || ']'"
    else:
        rules_expr = "'[]'"
    out.add(
        f", {p}fit AS (SELECT lead_id, {fit_expr} AS fit, {rules_expr} AS fit_rules FROM {p}fitm)"
    )

    # --- engagement ---------------------------------------------------------------------
    rules = model.engagement_rules
    kinds = event_kinds(model)
    if not kinds:
        out.add(
            f", {p}scores AS (SELECT lead_id, fit, fit_rules, 0 AS engagement,"
            f" {d.empty_object} AS state, {d.null_time} AS last_event_at,"
            f" {d.null_time} AS hand_raised_at"
            f" FROM {p}fit)"
        )
        return out

    # 1. Each event gets its first matching rule (CASE picks the first true WHEN).
    rule_case, rule_params = "CASE", []
    for erule in rules:
        if erule.condition is None:
            rule_case += f" WHEN e.kind = %s THEN {erule.id}"
            rule_params.append(erule.kind)
        else:
            x, x_params = d.json_text("e.properties", erule.property_key)
            cond, cond_params = condition_sql(d, x, x_params, False, erule.condition)
            rule_case += f" WHEN e.kind = %s AND {cond} THEN {erule.id}"
            rule_params.extend([erule.kind, *cond_params])
    rule_case += " END" if rules else " WHEN 1 = 0 THEN 0 END"
    if cutoff_cte:
        as_of_sql, as_of_params = d.epoch("co.as_of"), []
    else:
        assert as_of is not None
        as_of_sql, as_of_params = f"CAST(%s AS {d.real})", [as_of.timestamp()]
    hr_sql, hr_params = d.null_time, []
    if model.hand_raiser_kind:
        hr_sql, hr_params = "CASE WHEN e.kind = %s THEN e.occurred_at END", [model.hand_raiser_kind]
    out.add(
        f", {p}ev AS {d.materialized}(SELECT e.lead_id, e.id, e.occurred_at,"
        f" {rule_case} AS rule_id, {as_of_sql} AS as_of, {hr_sql} AS hr_at"
        f" FROM {events_from or 'leadflow_engagementevent'} e",
        [*rule_params, *as_of_params, *hr_params],
    )
    if cutoff_cte:
        out.add(f" JOIN {cutoff_cte} co ON co.lead_id = e.lead_id AND e.occurred_at <= co.as_of")
    where, where_params = leads.on("e.lead_id")
    marks = ", ".join(["%s"] * len(kinds))
    out.add(f" WHERE {where} AND e.kind IN ({marks}))", [*where_params, *kinds])

    # 2. Cap periods and the rank of each event within its period (only if some rule caps).
    capped = [r for r in rules if r.cap is not None]
    if capped:
        period_case, period_params = "CASE", []
        for unit in ("day", "week", "month"):
            ids = [r.id for r in capped if r.cap_period == unit]
            if ids:
                trunc, trunc_params = d.period("occurred_at", unit)
                period_case += f" WHEN rule_id IN ({', '.join(map(str, ids))}) THEN {trunc}"
                period_params.extend(trunc_params)
        period_case += " END"
        out.add(
            f", {p}evp AS (SELECT lead_id, id, occurred_at, rule_id, as_of, hr_at,"
            f" {period_case} AS period FROM {p}ev)",
            period_params,
        )
        out.add(
            f", {p}ranked AS (SELECT lead_id, occurred_at, rule_id, as_of, hr_at, period,"
            " ROW_NUMBER() OVER (PARTITION BY lead_id, rule_id, period"
            " ORDER BY occurred_at, id) AS rn,"
            " MAX(period) OVER (PARTITION BY lead_id, rule_id) AS last_period"
            f" FROM {p}evp)"
        )
    else:
        out.add(
            f", {p}ranked AS (SELECT lead_id, occurred_at, rule_id, as_of, hr_at,"
            f" {d.null_period} AS period, 1 AS rn, {d.null_period} AS last_period FROM {p}ev)"
        )

    # 3. Points awarded (after caps) and the decay weight of each event.
    award = "CASE rule_id"
    for erule in rules:
        if erule.cap is None:
            award += f" WHEN {erule.id} THEN {erule.points}"
        else:
            size, left = abs(erule.points), f"({erule.cap} - (rn - 1) * {abs(erule.points)})"
            sign = "" if erule.points >= 0 else "-"
            award += (
                f" WHEN {erule.id} THEN CASE WHEN {left} >= {size} THEN {erule.points}"
                f" WHEN {left} > 0 THEN {sign}{left} ELSE 0 END"
            )
    award += " ELSE 0 END"
    one = f"CAST(1 AS {d.real})"
    weight = ""
    for half_life in sorted({r.half_life_seconds for r in rules if r.half_life_seconds}):
        same = ", ".join(str(r.id) for r in rules if r.half_life_seconds == half_life)
        exponent = f"(({d.epoch('occurred_at')} - as_of) / {float(half_life)!r})"
        weight += (
            f" WHEN rule_id IN ({same}) THEN POWER(CAST(2 AS {d.real}),"
            f" CASE WHEN {exponent} < {MIN_EXPONENT!r} THEN {MIN_EXPONENT!r} ELSE {exponent} END)"
        )
    weight = f"CASE{weight} ELSE {one} END" if weight else one
    out.add(
        f", {p}scored AS (SELECT lead_id, occurred_at, rule_id, hr_at, period, last_period,"
        f" {award} AS aw, {weight} AS w FROM {p}ranked)"
    )

    # 4. Per lead and rule: the running state the incremental path continues from.
    out.add(
        f", {p}per_rule AS (SELECT lead_id, rule_id, COUNT(*) AS n, SUM(aw) AS aw,"
        " SUM(aw * w) AS v, MAX(period) AS pk,"
        " COALESCE(SUM(CASE WHEN period = last_period THEN aw END), 0) AS pa,"
        " MAX(occurred_at) AS last_at, MAX(hr_at) AS hr_at"
        f" FROM {p}scored GROUP BY lead_id, rule_id)"
    )
    # 5. Per lead: rounded per-rule values summed (so the explanation adds up) + state.
    entry = d.json_array(f"n, aw, v, {d.period_text('pk')}, pa")
    out.add(
        f", {p}per_lead AS (SELECT lead_id,"
        f" CAST(SUM(CASE WHEN rule_id IS NOT NULL THEN {round_sql('v')} ELSE 0 END) AS INTEGER)"
        " AS engagement,"
        f" {d.json_object_agg('rule_id', entry, 'rule_id IS NOT NULL')} AS state,"
        " MAX(CASE WHEN rule_id IS NOT NULL THEN last_at END) AS last_event_at,"
        " MAX(hr_at) AS hand_raised_at"
        f" FROM {p}per_rule GROUP BY lead_id)"
    )
    out.add(
        f", {p}scores AS (SELECT f.lead_id, f.fit, f.fit_rules,"
        " COALESCE(g.engagement, 0) AS engagement,"
        f" COALESCE(g.state, {d.empty_object}) AS state,"
        " g.last_event_at, g.hand_raised_at"
        f" FROM {p}fit f LEFT JOIN {p}per_lead g ON g.lead_id = f.lead_id)"
    )
    return out


_UPSERT = (
    " INSERT INTO scoring_leadscore (lead_id, model_id, fit, fit_rules, engagement,"
    " engagement_state, last_event_at, hand_raised_at, computed_at)"
    " SELECT lead_id, %s, fit, {fit_rules}, engagement, {state},"
    " last_event_at, hand_raised_at, %s FROM {source} WHERE {where}"
    " ON CONFLICT (lead_id) DO UPDATE SET model_id = excluded.model_id,"
    " fit = excluded.fit, fit_rules = excluded.fit_rules,"
    " engagement = excluded.engagement, engagement_state = excluded.engagement_state,"
    " last_event_at = excluded.last_event_at, hand_raised_at = excluded.hand_raised_at,"
    " computed_at = excluded.computed_at"
)


def _upsert(
    sql: Sql,
    *,
    source: str,
    where: str,
    where_params: list,
    model_id: int,
    computed_at: datetime,
    skip_fresh_since: datetime | None,
) -> int:
    d = Dialect()
    stamp = connection.ops.adapt_datetimefield_value(computed_at)
    text = _UPSERT.format(
        fit_rules=d.as_json("fit_rules"), state=d.as_json("state"), source=source, where=where
    )
    sql.add(text, [model_id, stamp, *where_params])
    if skip_fresh_since is not None:
        sql.add(
            f" WHERE scoring_leadscore.model_id {d.distinct} excluded.model_id"
            " OR scoring_leadscore.computed_at <= %s",
            [connection.ops.adapt_datetimefield_value(skip_fresh_since)],
        )
    with connection.cursor() as cursor:
        cursor.execute(sql.text, sql.params)
        return cursor.rowcount


def upsert_scores(
    model: CompiledModel,
    *,
    leads: LeadFilter,
    now: datetime,
    skip_fresh_since: datetime | None = None,
) -> int:
    """Write LeadScore rows for `leads` under `model`, as of `now`, in one statement.

    With `skip_fresh_since` (a bulk run's start), rows already scored by this model after
    that moment are left alone: they were written by the incremental path, under the
    row lock, from data at least as new as this statement's snapshot."""
    ctes = scores_cte(model, prefix="s_", leads=leads, as_of=now)
    return _upsert(
        Sql("WITH ").add(ctes.text, ctes.params),
        source="s_scores",
        where="true",
        where_params=[],
        model_id=model.id,
        computed_at=now,
        skip_fresh_since=skip_fresh_since,
    )


def stage_scores(model: CompiledModel, *, table: str, leads: LeadFilter, now: datetime) -> int:
    """Compute the scores of `leads` under `model` as of `now` into a temporary table
    `table` of this connection (made here; it outlives the transaction, not the
    connection), indexed by lead id, for `upsert_staged` to write in batches. Returns
    the number of leads staged.

    Why stage: a lead's events are spread over the whole events table (they arrive
    interleaved with everyone else's), so scoring 20,000 leads reads nearly every page
    of it; staging a few hundred thousand leads in one statement reads it once for all
    of them, while the writes (and their row locks) stay in small batches."""
    ctes = scores_cte(model, prefix="s_", leads=leads, as_of=now)
    sql = Sql(f"CREATE TEMPORARY TABLE {table} AS WITH ").add(ctes.text, ctes.params)
    sql.add(
        " SELECT lead_id, fit, fit_rules, engagement, state, last_event_at, hand_raised_at"
        " FROM s_scores"
    )
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {table}")
        cursor.execute(sql.text, sql.params)
        cursor.execute(f"CREATE INDEX {table}_lead ON {table} (lead_id)")
        if Dialect().pg:
            # A temporary table has no statistics until analysed: without them a batch's
            # range read of it is planned blind.
            cursor.execute(f"ANALYZE {table}")
        cursor.execute(f"SELECT COUNT(*) FROM {table}")
        return cursor.fetchone()[0]


def upsert_staged(
    model: CompiledModel,
    *,
    table: str,
    leads: LeadFilter,
    computed_at: datetime,
    skip_fresh_since: datetime | None = None,
) -> int:
    """Write the rows of `leads` staged in `table` (`stage_scores`, as of `computed_at`)
    to LeadScore, with `upsert_scores`' statement and its `skip_fresh_since`. A lead
    deleted since it was staged is left out."""
    where, where_params = leads.on("lead_id")
    return _upsert(
        Sql(),
        source=table,
        where=f"{where} AND EXISTS (SELECT 1 FROM leadflow_lead l WHERE l.id = {table}.lead_id)",
        where_params=where_params,
        model_id=model.id,
        computed_at=computed_at,
        skip_fresh_since=skip_fresh_since,
    )


def drop_staged(table: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {table}")
