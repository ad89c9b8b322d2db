"""The MQL policy in SQL (bulk rescore, draft preview) says what the Python one says
(incremental path), case by case, boundaries included."""

import datetime as dt

import pytest
from django.db import connection

from scoring import engine, policy
from scoring.sql import Dialect
from tests.scoring.conftest import T0, make_model

DAY = dt.timedelta(days=1)
NOW = T0 + 100 * DAY
T, H = policy.THRESHOLDS, policy.HAND_RAISER

CASES = [
    # stage, fit, engagement, hand raised (days ago), recycled (days ago), expected
    ("known", 30, 50, None, None, T),
    ("known", 29, 50, None, None, None),
    ("known", 30, 49, None, None, None),
    ("known", 20, 0, 1, None, H),
    ("known", 19, 0, 1, None, None),
    ("known", 35, 60, 1, None, T),  # both: the thresholds are named
    ("mql", 40, 60, 1, None, None),
    ("sql", 40, 60, None, None, None),
    ("customer", 40, 60, None, None, None),
    ("anonymous", 40, 60, None, None, None),
    ("disqualified", 40, 60, None, None, None),
    ("recycled", 30, 50, None, 29, None),  # inside the 30-day cool-down
    ("recycled", 30, 50, None, 30, T),  # the cool-down ends exactly now
    ("recycled", 30, 50, None, None, T),  # recycled without a recorded move
    ("recycled", 20, 0, 40, 35, None),  # the hand was raised before the recycle
    ("recycled", 20, 0, 31, 35, H),  # ...and after it, once the cool-down is over
    ("recycled", 20, 0, 1, 10, None),  # a new hand-raise does not cut the cool-down
    ("recycled", 35, 60, 40, 35, T),  # old hand, but the thresholds alone suffice
]


def sql_reason(model, stage, fit, engagement, hand_raised_at, recycled_at):
    reason, params = policy.mql_reason_sql(
        model,
        stage="t.stage",
        fit="t.fit",
        engagement="t.engagement",
        hand_raised_at="t.hr",
        recycled_at="t.rec",
        now=NOW,
    )
    adapt = connection.ops.adapt_datetimefield_value
    null = Dialect().null_time  # a typed NULL: PostgreSQL compares it with timestamps
    row = (
        "SELECT %s AS stage, %s AS fit, %s AS engagement, "
        + (null if hand_raised_at is None else "%s")
        + " AS hr, "
        + (null if recycled_at is None else "%s")
        + " AS rec"
    )
    values = [stage, fit, engagement] + [adapt(v) for v in (hand_raised_at, recycled_at) if v]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {reason} FROM ({row}) t", [*params, *values])
        return cursor.fetchone()[0]


@pytest.mark.django_db
@pytest.mark.parametrize(("stage", "fit", "engagement", "hand", "recycled", "expected"), CASES)
def test_sql_and_python_policy_agree(stage, fit, engagement, hand, recycled, expected):
    model = engine.compiled(
        make_model(
            fit_threshold=30,
            engagement_threshold=50,
            hand_raiser_kind="consultation",
            hand_raiser_min_fit=20,
            recycle_cooldown_days=30,
        )
    )
    hand_raised_at = None if hand is None else NOW - hand * DAY
    recycled_at = None if recycled is None else NOW - recycled * DAY

    in_python = policy.mql_reason(
        model,
        stage=stage,
        fit=fit,
        engagement=engagement,
        hand_raised_at=hand_raised_at,
        recycled_at=lambda: recycled_at,
        now=NOW,
    )
    in_sql = sql_reason(model, stage, fit, engagement, hand_raised_at, recycled_at)

    assert (in_python, in_sql) == (expected, expected)


@pytest.mark.django_db
def test_without_a_hand_raiser_event_only_the_thresholds_count_in_sql():
    model = engine.compiled(make_model(fit_threshold=30, engagement_threshold=50))

    assert sql_reason(model, "known", 40, 0, NOW - DAY, None) is None
    assert sql_reason(model, "known", 40, 50, NOW - DAY, None) == T
