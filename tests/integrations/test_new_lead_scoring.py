"""A lead created by intake is scored from its events in Python, in the processing
transaction, without the one-lead SQL recompute: the stored row must be what that
recompute writes (the engagement state's decayed sums to float precision, as for every
incrementally scored event)."""

from __future__ import annotations

import pytest

from leadflow.models import Lead
from scoring.models import LeadScore
from scoring.services import lead_score_recompute
from tests.integrations.conftest import deliver, make_source

pytestmark = pytest.mark.django_db

COLUMNS = ("model_id", "fit", "fit_rules", "engagement", "last_event_at", "hand_raised_at")


def same(a, b) -> bool:
    """Equal, floats to 1e-9 relative (a decayed sum, computed in another order)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, int | float) and isinstance(b, int | float) and a == pytest.approx(b)
    return a == b


def stored(email: str) -> tuple[tuple, dict]:
    score = LeadScore.objects.get(lead__email=email)
    return tuple(getattr(score, column) for column in COLUMNS), score.engagement_state


@pytest.mark.parametrize(
    "events",
    [
        # One hand-raiser: an MQL at once.
        [("consultation", "2026-11-02T10:00:00+09:00")],
        # Several events of a new lead in one body: the first creates it, the rest are
        # added to its fresh row (a capped rule among them).
        [
            ("email_open", "2026-10-01T09:00:00+09:00"),
            ("email_open", "2026-10-02T09:00:00+09:00"),
            ("pricing_page_view", "2026-10-20T12:00:00+09:00"),
            ("email_open", "2026-10-03T09:00:00+09:00"),
        ],
        # No scored activity: fit only.
        [],
    ],
)
def test_a_new_lead_s_score_is_what_the_sql_recompute_gives(client, clock, events):
    person = {
        "email": "yamada@example.co.jp",
        "last_name": "山田",
        "job_title": "部長",
        "company": "株式会社サンプル",
        "employee_count": 1200,
        "industry": "製造業",
        "address": "東京都千代田区丸の内1-1-1",
    }
    body = (
        {"events": [{"type": kind, "occurred_at": at, "lead": person} for kind, at in events]}
        if events
        else {"lead": person}
    )

    deliver(client, make_source("generic"), body)
    incremental, incremental_state = stored("yamada@example.co.jp")
    lead_score_recompute(lead=Lead.objects.get(email="yamada@example.co.jp"))
    recomputed, recomputed_state = stored("yamada@example.co.jp")

    assert incremental[1] > 0  # the company matched fit rules
    assert incremental == recomputed
    assert same(incremental_state, recomputed_state), (incremental_state, recomputed_state)
