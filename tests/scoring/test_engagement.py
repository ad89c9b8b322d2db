"""Engagement rules: caps per period, negative points, decay (pinned clock), rule order,
and the incremental path agreeing with the set-based one."""

import datetime as dt

import pytest
import time_machine

from leadflow.models import EngagementEvent
from scoring.models import LeadScore
from scoring.selectors import lead_score_explain
from scoring.services import lead_score_event
from tests.factories import EngagementEventFactory, LeadFactory
from tests.scoring.conftest import T0, TOKYO, make_model, publish, sql_score

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)


def record(lead, kind, at, **properties) -> EngagementEvent:
    """Record an event and score it incrementally with the clock at the event time."""
    event = EngagementEventFactory(lead=lead, kind=kind, occurred_at=at, properties=properties)
    with time_machine.travel(at, tick=False):
        lead_score_event(event=event)
    return event


def points_by_rule(score: LeadScore, at=None) -> dict[str, int]:
    return {
        line.label: line.points for line in lead_score_explain(score=score, at=at).engagement_lines
    }


@pytest.mark.django_db
def test_a_daily_cap_stops_points_within_a_tokyo_day_and_resets_the_next():
    model = make_model(
        engagement=[
            {
                "label": "views",
                "kind": "page_view",
                "points": 3,
                "cap_points": 10,
                "cap_period": "day",
            }
        ]
    )
    publish(model)
    lead = LeadFactory()
    day_one = dt.datetime(2026, 11, 2, 8, 0, tzinfo=TOKYO)
    for minute in range(5):
        record(lead, "page_view", day_one + dt.timedelta(minutes=minute))
    # 23:30 and 00:30 Tokyo time are the same UTC day but two Tokyo days.
    record(lead, "page_view", dt.datetime(2026, 11, 2, 23, 30, tzinfo=TOKYO))
    record(lead, "page_view", dt.datetime(2026, 11, 3, 0, 30, tzinfo=TOKYO))
    record(lead, "page_view", dt.datetime(2026, 11, 3, 0, 40, tzinfo=TOKYO))

    score = LeadScore.objects.get(lead=lead)
    # day 1: 3 + 3 + 3 + 1 (cap 10) + 0 + 0; day 2: 3 + 3
    assert score.engagement == 16
    assert score.engagement_state[str(model.engagement_rules.get().pk)] == [
        8,
        16,
        16.0,
        "2026-11-03",
        6,
    ]
    line = lead_score_explain(score=score).engagement_lines[0]
    assert (line.count, line.raw, line.capped, line.decayed, line.points) == (8, 24, -8, 0, 16)

    with time_machine.travel(dt.datetime(2026, 11, 3, 1, 0, tzinfo=TOKYO), tick=False):
        bulk = sql_score(model, lead, dt.datetime(2026, 11, 3, 1, 0, tzinfo=TOKYO))
    assert bulk.engagement == 16
    assert bulk.engagement_state == score.engagement_state


@pytest.mark.django_db
def test_weekly_and_monthly_caps_use_monday_weeks_and_calendar_months():
    model = make_model(
        engagement=[
            {
                "label": "seminar",
                "kind": "seminar_attendance",
                "points": 20,
                "cap_points": 30,
                "cap_period": "week",
            },
            {
                "label": "download",
                "kind": "document_download",
                "points": 10,
                "cap_points": 15,
                "cap_period": "month",
            },
        ]
    )
    publish(model)
    lead = LeadFactory()
    sunday = dt.datetime(2026, 11, 8, 10, 0, tzinfo=TOKYO)
    record(lead, "seminar_attendance", sunday - 3 * DAY)  # Thursday
    record(lead, "seminar_attendance", sunday)  # same week: 10 left of the cap
    record(lead, "seminar_attendance", sunday + DAY)  # Monday: a new week
    record(lead, "document_download", dt.datetime(2026, 11, 29, 10, 0, tzinfo=TOKYO))
    record(lead, "document_download", dt.datetime(2026, 11, 30, 10, 0, tzinfo=TOKYO))
    record(lead, "document_download", dt.datetime(2026, 12, 1, 10, 0, tzinfo=TOKYO))

    score = LeadScore.objects.get(lead=lead)
    assert points_by_rule(score) == {"seminar": 50, "download": 25}
    assert score.engagement == 75
    now = dt.datetime(2026, 12, 1, 10, 0, tzinfo=TOKYO)
    assert sql_score(model, lead, now).engagement == 75


@pytest.mark.django_db
def test_negative_points_lower_engagement_and_their_cap_limits_the_loss():
    model = make_model(
        engagement=[
            {"label": "click", "kind": "email_click", "points": 15},
            {"label": "unsub", "kind": "unsubscribe", "points": -20},
            {"label": "bounce", "kind": "other", "points": -5, "cap_points": 8},
        ]
    )
    publish(model)
    lead = LeadFactory()
    record(lead, "email_click", T0)
    record(lead, "unsubscribe", T0 + HOUR)
    for i in range(3):
        record(lead, "other", T0 + 2 * HOUR + i * HOUR)

    score = LeadScore.objects.get(lead=lead)
    assert points_by_rule(score) == {"click": 15, "unsub": -20, "bounce": -8}
    assert score.engagement == -13
    assert sql_score(model, lead, T0 + 5 * HOUR).engagement == -13


@pytest.mark.django_db
def test_decay_halves_points_every_half_life_and_the_explanation_shows_it():
    model = make_model(
        engagement=[
            {"label": "download", "kind": "document_download", "points": 20, "half_life_days": 10},
            {"label": "seminar", "kind": "seminar_attendance", "points": 20},
        ]
    )
    publish(model)
    lead = LeadFactory()
    record(lead, "document_download", T0)
    record(lead, "seminar_attendance", T0)
    score = LeadScore.objects.get(lead=lead)
    assert score.engagement == 40

    assert points_by_rule(score, at=T0 + 10 * DAY) == {"download": 10, "seminar": 20}
    assert points_by_rule(score, at=T0 + 20 * DAY) == {"download": 5, "seminar": 20}
    line = lead_score_explain(score=score, at=T0 + 20 * DAY).engagement_lines[0]
    assert (line.raw, line.capped, line.decayed, line.points) == (20, 0, -15, 5)

    # A new event ten days later adds to the decayed value, incrementally and in bulk.
    record(lead, "document_download", T0 + 10 * DAY)
    score.refresh_from_db()
    assert score.engagement == 10 + 20 + 20
    assert sql_score(model, lead, T0 + 10 * DAY).engagement == 50
    # Rounding is per rule, half away from zero: 20·2^-3.5 = 1.77 → 2 and 20·2^-2.5 = 3.54 → 4.
    assert points_by_rule(score, at=T0 + 35 * DAY)["download"] == round(20 * 2**-3.5 + 20 * 2**-2.5)


@pytest.mark.django_db
def test_the_first_matching_rule_counts_and_conditions_ignore_letter_case():
    model = make_model(
        engagement=[
            {
                "label": "pricing",
                "kind": "page_view",
                "property_key": "url",
                "operator": "contains",
                "value": "/pricing",
                "points": 15,
            },
            {
                "label": "product",
                "kind": "page_view",
                "property_key": "url",
                "operator": "contains",
                "value": "/product",
                "points": 5,
            },
            {"label": "any page", "kind": "page_view", "points": 1},
        ]
    )
    publish(model)
    lead = LeadFactory()
    record(lead, "page_view", T0, url="https://x.jp/Pricing/plans")
    record(lead, "page_view", T0 + HOUR, url="https://x.jp/product/a")
    record(lead, "page_view", T0 + 2 * HOUR, url="https://x.jp/blog")
    record(lead, "page_view", T0 + 3 * HOUR)  # no url at all

    score = LeadScore.objects.get(lead=lead)
    assert points_by_rule(score) == {"pricing": 15, "product": 5, "any page": 2}
    assert sql_score(model, lead, T0 + 3 * HOUR).engagement == 22


@pytest.mark.django_db
def test_a_late_event_for_a_capped_rule_is_recomputed_in_time_order():
    model = make_model(
        engagement=[
            {
                "label": "views",
                "kind": "page_view",
                "points": 4,
                "cap_points": 10,
                "half_life_days": 1,
            }
        ]
    )
    publish(model)
    lead = LeadFactory()
    for hour in (10, 11, 12):
        record(lead, "page_view", T0.replace(hour=hour))
    late = EngagementEventFactory(lead=lead, kind="page_view", occurred_at=T0.replace(hour=6))
    now = T0.replace(hour=13)
    with time_machine.travel(now, tick=False):
        lead_score_event(event=late)

    score = LeadScore.objects.get(lead=lead)
    # In time order the 06:00 event gets 4, 10:00 gets 4, 11:00 gets 2, 12:00 gets 0.
    expected = 4 * 2 ** (-7 / 24) + 4 * 2 ** (-3 / 24) + 2 * 2 ** (-2 / 24)
    assert score.engagement == round(expected)
    assert score.engagement_state[str(model.engagement_rules.get().pk)][2] == pytest.approx(
        expected
    )
    assert score.last_event_at == T0.replace(hour=12)


@pytest.mark.django_db
def test_events_no_rule_counts_change_nothing_but_the_hand_raiser_time():
    model = make_model(
        engagement=[{"label": "click", "kind": "email_click", "points": 3}],
        hand_raiser_kind="consultation",
    )
    publish(model)
    lead = LeadFactory()
    record(lead, "email_click", T0)
    record(lead, "consultation", T0 + HOUR)
    record(lead, "email_open", T0 + 2 * HOUR)

    score = LeadScore.objects.get(lead=lead)
    assert score.engagement == 3
    assert score.hand_raised_at == T0 + HOUR
    assert score.last_event_at == T0
    assert sql_score(model, lead, T0 + 2 * HOUR).hand_raised_at == T0 + HOUR


@pytest.mark.django_db
def test_several_new_events_of_one_lead_are_counted_once_even_after_a_recompute():
    from scoring.services import lead_score_changes

    model = make_model(
        engagement=[
            {"label": "views", "kind": "page_view", "points": 4, "cap_points": 10},
            {"label": "click", "kind": "email_click", "points": 3},
        ]
    )
    publish(model)
    lead = LeadFactory()
    record(lead, "page_view", T0.replace(hour=12))
    # One intake transaction records a late page view (forces a recompute) and a click.
    late = EngagementEventFactory(lead=lead, kind="page_view", occurred_at=T0.replace(hour=9))
    click = EngagementEventFactory(lead=lead, kind="email_click", occurred_at=T0.replace(hour=13))
    with time_machine.travel(T0.replace(hour=14), tick=False):
        lead_score_changes(lead=lead, events=[click, late])

    score = LeadScore.objects.get(lead=lead)
    assert points_by_rule(score) == {"views": 8, "click": 3}
    assert score.engagement == 11
    assert sql_score(model, lead, T0.replace(hour=14)).engagement == 11


@pytest.mark.django_db
def test_a_new_lead_from_intake_is_scored_from_everything_it_brought():
    from scoring.services import lead_score_changes

    model = make_model(
        fit=[{"field": "role", "operator": "equals", "value": "manager", "points": 10}],
        engagement=[{"label": "click", "kind": "email_click", "points": 3}],
    )
    publish(model)
    lead = LeadFactory(role="manager")
    events = EngagementEventFactory.create_batch(3, lead=lead, kind="email_click", occurred_at=T0)
    with time_machine.travel(T0, tick=False):
        lead_score_changes(lead=lead, events=events, attributes_changed=True)

    score = LeadScore.objects.get(lead=lead)
    assert (score.fit, score.engagement) == (10, 9)
