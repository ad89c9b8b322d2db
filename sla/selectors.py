from __future__ import annotations

from sla.calendar import Calendar, Closure
from sla.models import WEEKDAY_FIELDS, BusinessCalendar


def calendar_for(business_calendar: BusinessCalendar | None = None) -> Calendar:
    """The arithmetic calendar for a stored one (the default when none is given).

    With no calendar stored at all, the built-in 9:00–18:00 Asia/Tokyo weekday calendar
    with national holidays applies, so business time is never undefined.
    """
    stored = business_calendar
    if stored is None:
        stored = BusinessCalendar.objects.filter(is_default=True).first()
    if stored is None:
        return Calendar()
    return Calendar(
        timezone=stored.timezone,
        opens_at=stored.opens_at,
        closes_at=stored.closes_at,
        weekdays=frozenset(i for i, name in enumerate(WEEKDAY_FIELDS) if getattr(stored, name)),
        national_holidays=stored.national_holidays,
        closures=tuple(
            Closure(start=c.start_date, end=c.end_date, every_year=c.every_year)
            for c in stored.closures.all()
        ),
    )
