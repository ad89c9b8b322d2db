"""Business time on a Japanese calendar: business hours, weekends, national holidays
(from the maintained `holidays` package) and company closures such as 年末年始.

Two operations, used by every SLA timer that counts business time:

- `add_business_time(calendar, start, delta)`: the instant `delta` of business time after
  `start` (a start outside business hours starts counting at the next opening);
- `business_time_between(calendar, start, end)`: how much business time lies between.

`add_business_days(calendar, start, days)` gives the end of the N-th business day after
the day of `start` — how "a verdict within 5 business days" (5営業日以内) is read: the day
the MQL arrives does not count, and the deadline is closing time of the fifth business
day after it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cached_property
from zoneinfo import ZoneInfo

import holidays


@dataclass(frozen=True)
class Closure:
    """Days the company is closed. With `every_year`, only month and day are compared,
    and a range may wrap the new year (12/29 – 1/3)."""

    start: dt.date
    end: dt.date
    every_year: bool = False

    def covers(self, day: dt.date) -> bool:
        if not self.every_year:
            return self.start <= day <= self.end
        key, first, last = (
            (day.month, day.day),
            (self.start.month, self.start.day),
            (self.end.month, self.end.day),
        )
        if first <= last:
            return first <= key <= last
        return key >= first or key <= last


@dataclass(frozen=True)
class Calendar:
    timezone: str = "Asia/Tokyo"
    opens_at: dt.time = dt.time(9, 0)
    closes_at: dt.time = dt.time(18, 0)
    weekdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})  # Monday = 0
    national_holidays: bool = True
    closures: tuple[Closure, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.closes_at <= self.opens_at:
            raise ValueError("Business hours must close after they open.")
        if not self.weekdays:
            raise ValueError("A calendar needs at least one working weekday.")

    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def _holidays(self) -> holidays.HolidayBase:
        return holidays.Japan()  # fills years lazily as dates are asked for

    def is_business_day(self, day: dt.date) -> bool:
        if day.weekday() not in self.weekdays:
            return False
        if self.national_holidays and day in self._holidays:
            return False
        return not any(closure.covers(day) for closure in self.closures)

    def day_window(self, day: dt.date) -> tuple[dt.datetime, dt.datetime] | None:
        """Opening and closing instants of `day`, or None on a day off."""
        if not self.is_business_day(day):
            return None
        return (
            dt.datetime.combine(day, self.opens_at, tzinfo=self.tz),
            dt.datetime.combine(day, self.closes_at, tzinfo=self.tz),
        )

    def _local(self, instant: dt.datetime) -> dt.datetime:
        if instant.tzinfo is None:
            raise ValueError("Business time needs timezone-aware datetimes.")
        return instant.astimezone(self.tz)


# A year without a business day would loop forever; no real calendar gets near this.
_MAX_DAYS = 3660


def add_business_time(calendar: Calendar, start: dt.datetime, delta: dt.timedelta) -> dt.datetime:
    if delta < dt.timedelta(0):
        raise ValueError("Only forward business time can be added.")
    current = calendar._local(start)
    remaining = delta
    day = current.date()
    for _ in range(_MAX_DAYS):
        window = calendar.day_window(day)
        if window is not None:
            opens, closes = window
            begin = max(current, opens)
            if begin < closes:
                available = closes - begin
                if remaining <= available:
                    return begin + remaining
                remaining -= available
        day += dt.timedelta(days=1)
        current = dt.datetime.combine(day, dt.time(0), tzinfo=calendar.tz)
    raise ValueError("No business time found within ten years; check the calendar.")


def business_time_between(calendar: Calendar, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
    """Business time in [start, end); negative when end is before start."""
    if end < start:
        return -business_time_between(calendar, end, start)
    first, last = calendar._local(start), calendar._local(end)
    total = dt.timedelta(0)
    day = first.date()
    while day <= last.date():
        window = calendar.day_window(day)
        if window is not None:
            begin, finish = max(first, window[0]), min(last, window[1])
            if finish > begin:
                total += finish - begin
        day += dt.timedelta(days=1)
    return total


def add_business_days(calendar: Calendar, start: dt.datetime, days: int) -> dt.datetime:
    """Closing time of the `days`-th business day after the day of `start`."""
    if days < 1:
        raise ValueError("Count at least one business day.")
    day = calendar._local(start).date()
    counted = 0
    for _ in range(_MAX_DAYS):
        day += dt.timedelta(days=1)
        if calendar.is_business_day(day):
            counted += 1
            if counted == days:
                return dt.datetime.combine(day, calendar.closes_at, tzinfo=calendar.tz)
    raise ValueError("No business day found within ten years; check the calendar.")
