from __future__ import annotations

import datetime as dt

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from leadflow.config import config_cached
from sla.calendar import Calendar, Closure
from sla.models import WEEKDAY_FIELDS, BusinessCalendar, SlaSettings, SlaTimer, TimerPolicy


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


def sla_settings_get() -> SlaSettings:
    """The agreed settings; the defaults until someone saves them in the admin."""
    return SlaSettings.objects.filter(pk=1).first() or SlaSettings(pk=1)


def timer_policies_active() -> list[TimerPolicy]:
    return list(TimerPolicy.objects.filter(is_active=True).select_related("calendar"))


def _timer_setup() -> list[tuple[TimerPolicy, Calendar]]:
    calendars: dict[int | None, Calendar] = {}
    setup = []
    for policy in timer_policies_active():
        if policy.calendar_id not in calendars:
            calendars[policy.calendar_id] = calendar_for(policy.calendar)
        setup.append((policy, calendars[policy.calendar_id]))
    return setup


def timer_policies_with_calendars() -> list[tuple[TimerPolicy, Calendar]]:
    """The active policies, each with the calendar it counts in, for starting timers: from
    the per-process copy (leadflow.config), reloaded when a policy or calendar changes.
    Shared by every caller: read-only."""
    return config_cached("sla.timer_setup", _timer_setup)


def timer_policy_for(kind: str) -> TimerPolicy | None:
    return TimerPolicy.objects.filter(kind=kind).first()


def handoff_sla_state_condition(state: str, now: dt.datetime) -> Q | None:
    """The SLA states of the handoff lists, a partition of the handoffs that have timers
    (None: no such state):

    - overdue: a timer not met is past its due time;
    - due_today: not overdue, and a timer not met is due before midnight (TIME_ZONE);
    - on_time: timers still running, none due today;
    - met: every timer met (on time or late), none running.

    The first three read the stored next deadline (Handoff.next_due_at, the earliest
    unmet due time, kept by sla.services): a range on handoff_urgency_idx, not a
    subquery per row.
    """
    tomorrow = dt.datetime.combine(
        timezone.localdate(now) + dt.timedelta(days=1),
        dt.time(0),
        tzinfo=timezone.get_default_timezone(),
    )
    return {
        "overdue": Q(next_due_at__lte=now),
        "due_today": Q(next_due_at__gt=now, next_due_at__lt=tomorrow),
        "on_time": Q(next_due_at__gte=tomorrow),
        "met": Q(next_due_at__isnull=True)
        & Q(Exists(SlaTimer.objects.filter(handoff_id=OuterRef("pk")))),
    }.get(state)
