import datetime as dt

import pytest

from sla.calendar import (
    Calendar,
    Closure,
    add_business_days,
    add_business_time,
    business_time_between,
)
from sla.models import BusinessCalendar
from sla.selectors import calendar_for

JST = dt.timezone(dt.timedelta(hours=9))
CAL = Calendar()
H = dt.timedelta(hours=1)


def at(y, m, d, hh=0, mm=0):
    return dt.datetime(y, m, d, hh, mm, tzinfo=JST)


# 2026-11-20 is a Friday; 11-23 (Mon) is 勤労感謝の日.
@pytest.mark.parametrize(
    ("start", "delta", "expected"),
    [
        (at(2026, 11, 18, 10), 2 * H, at(2026, 11, 18, 12)),  # inside one day
        (at(2026, 11, 18, 17), 2 * H, at(2026, 11, 19, 10)),  # over the evening
        (at(2026, 11, 18, 7), 1 * H, at(2026, 11, 18, 10)),  # before opening
        (at(2026, 11, 18, 20), 1 * H, at(2026, 11, 19, 10)),  # after closing
        (at(2026, 11, 18, 18), dt.timedelta(0), at(2026, 11, 19, 9)),  # closing edge
        (at(2026, 11, 18, 9), 9 * H, at(2026, 11, 18, 18)),  # exactly one day
        (at(2026, 11, 20, 17), 2 * H, at(2026, 11, 24, 10)),  # weekend + 勤労感謝の日
        (at(2026, 11, 21, 12), 1 * H, at(2026, 11, 24, 10)),  # starts on Saturday
    ],
)
def test_add_business_time(start, delta, expected):
    assert add_business_time(CAL, start, delta) == expected


def test_golden_week_2026_is_skipped():
    # 4/29 (Wed) 昭和の日; 5/4 みどりの日, 5/5 こどもの日, 5/6 振替休日 (5/3 was a Sunday).
    assert add_business_time(CAL, at(2026, 4, 28, 17), 2 * H) == at(2026, 4, 30, 10)
    assert add_business_time(CAL, at(2026, 5, 1, 17, 30), 1 * H) == at(2026, 5, 7, 9, 30)
    assert business_time_between(CAL, at(2026, 5, 1, 9), at(2026, 5, 8, 9)) == 18 * H


def test_year_end_closure_from_the_default_calendar_wraps_the_new_year():
    calendar = Calendar(closures=(Closure(dt.date(2000, 12, 29), dt.date(2001, 1, 3), True),))
    # 12/28 (Mon) 17:00 + 2h → 1/4 (Mon) 10:00: 12/29–1/3 closed, 1/1 also a holiday.
    assert add_business_time(calendar, at(2026, 12, 28, 17), 2 * H) == at(2027, 1, 4, 10)
    assert not calendar.is_business_day(dt.date(2026, 12, 30))
    assert calendar.is_business_day(dt.date(2026, 12, 28))


def test_one_off_closure():
    calendar = Calendar(closures=(Closure(dt.date(2026, 11, 18), dt.date(2026, 11, 19)),))
    assert add_business_time(calendar, at(2026, 11, 17, 17), 2 * H) == at(2026, 11, 20, 10)


def test_business_time_between_edges():
    assert business_time_between(CAL, at(2026, 11, 18, 10), at(2026, 11, 18, 11)) == H
    assert business_time_between(CAL, at(2026, 11, 18, 17), at(2026, 11, 19, 10)) == 2 * H
    assert business_time_between(CAL, at(2026, 11, 21, 0), at(2026, 11, 23, 23)) == 0 * H
    assert business_time_between(CAL, at(2026, 11, 20, 17), at(2026, 11, 24, 10)) == 2 * H
    assert business_time_between(CAL, at(2026, 11, 19, 10), at(2026, 11, 18, 10)) == -9 * H


def test_between_and_add_agree():
    start = at(2026, 11, 18, 15, 20)
    for minutes in (0, 1, 59, 540, 541, 2000, 10000):
        delta = dt.timedelta(minutes=minutes)
        end = add_business_time(CAL, start, delta)
        assert business_time_between(CAL, start, end) == delta


def test_utc_input_is_read_in_tokyo_time():
    utc_start = dt.datetime(2026, 11, 18, 0, 30, tzinfo=dt.UTC)  # 09:30 JST
    assert add_business_time(CAL, utc_start, H) == at(2026, 11, 18, 10, 30)


def test_five_business_days_is_closing_time_of_the_fifth_day_after():
    # MQL on Tue 11/17: Wed 18, Thu 19, Fri 20, (Mon 23 holiday), Tue 24, Wed 25.
    assert add_business_days(CAL, at(2026, 11, 17, 10), 5) == at(2026, 11, 25, 18)
    # Arriving on a Saturday counts from Monday.
    assert add_business_days(CAL, at(2026, 11, 14, 10), 1) == at(2026, 11, 16, 18)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        add_business_time(CAL, dt.datetime(2026, 11, 18, 10), H)
    with pytest.raises(ValueError, match="forward"):
        add_business_time(CAL, at(2026, 11, 18, 10), -H)
    with pytest.raises(ValueError, match="close after"):
        Calendar(opens_at=dt.time(18), closes_at=dt.time(9))
    with pytest.raises(ValueError, match="at least one"):
        Calendar(weekdays=frozenset())


@pytest.mark.django_db
def test_default_calendar_is_created_by_migration_and_read_by_the_selector():
    stored = BusinessCalendar.objects.get(is_default=True)
    assert stored.closures.get().name == "年末年始"
    calendar = calendar_for()
    assert calendar.opens_at == dt.time(9) and calendar.closes_at == dt.time(18)
    assert calendar.weekdays == frozenset({0, 1, 2, 3, 4})
    assert not calendar.is_business_day(dt.date(2026, 12, 31))


@pytest.mark.django_db
def test_admin_edits_reach_the_arithmetic():
    stored = BusinessCalendar.objects.get(is_default=True)
    stored.saturday = True
    stored.opens_at = dt.time(10)
    stored.save()
    calendar = calendar_for()
    assert calendar.is_business_day(dt.date(2026, 11, 21))
    assert add_business_time(calendar, at(2026, 11, 21, 8), H) == at(2026, 11, 21, 11)


@pytest.mark.django_db
def test_admin_refuses_hours_that_close_before_they_open(admin_client):
    stored = BusinessCalendar.objects.get(is_default=True)
    url = f"/admin/sla/businesscalendar/{stored.pk}/change/"
    assert admin_client.get(url).status_code == 200
    response = admin_client.post(
        url,
        {
            "name": stored.name,
            "is_default": "on",
            "timezone": "Asia/Tokyo",
            "opens_at": "18:00",
            "closes_at": "09:00",
            "monday": "on",
            "national_holidays": "on",
            "closures-TOTAL_FORMS": "0",
            "closures-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["closes_at"] == [
        "Business hours must close after they open."
    ]
