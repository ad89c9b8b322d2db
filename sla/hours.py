"""Each rep's working time: the default business calendar with the rep's own days and
hours (RepWorkingHours), so national holidays and company closures apply to everyone.

Named in leadflow.reactions.WORKING_HOURS for handoff.hours: routing asks who works now
and who starts first; the claim window counts the rep's working time. Read from a per-process
copy (leadflow.config) that reloads when a calendar, a closure or a rep's hours change.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Collection, Mapping

from handoff.plans import RepHours
from leadflow.config import config_cached
from sla.calendar import Calendar, add_business_time
from sla.models import RepWorkingHours
from sla.selectors import calendar_for

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Roster:
    base: Calendar
    reps: dict[int, Calendar]

    def calendar(self, rep_id: int) -> Calendar:
        return self.reps.get(rep_id, self.base)


def rep_calendar(base: Calendar, hours: RepWorkingHours) -> Calendar:
    """The base calendar with the rep's days and hours; the base's where they are empty,
    or where they cannot make a calendar (hours that end before the calendar's opening)."""
    try:
        return dataclasses.replace(
            base,
            weekdays=frozenset(hours.weekdays) if hours.weekdays else base.weekdays,
            opens_at=hours.starts_at or base.opens_at,
            closes_at=hours.ends_at or base.closes_at,
        )
    except (ValueError, TypeError):
        logger.warning("Working hours of rep %s make no calendar; the default applies", hours.pk)
        return base


def _load() -> Roster:
    base = calendar_for()
    return Roster(
        base=base,
        reps={row.user_id: rep_calendar(base, row) for row in RepWorkingHours.objects.all()},
    )


def roster() -> Roster:
    return config_cached("sla.hours.roster", _load)


class CalendarWorkingHours:
    """handoff.hours.WorkingHours on the business calendar: the live roster, or the one
    given (a routing plan's hours, replayed)."""

    def __init__(self, fixed: Roster | None = None) -> None:
        self.fixed = fixed

    def roster(self) -> Roster:
        return self.fixed if self.fixed is not None else roster()

    def starts(self, rep_ids: Collection[int], at: dt.datetime) -> dict[int, dt.datetime]:
        current = self.roster()
        # Adding no business time gives the next instant inside business hours: `at`
        # itself when the rep works now.
        return {
            rep_id: add_business_time(current.calendar(rep_id), at, dt.timedelta(0))
            for rep_id in rep_ids
        }

    def add_working_time(self, rep_id: int, start: dt.datetime, delta: dt.timedelta) -> dt.datetime:
        return add_business_time(self.roster().calendar(rep_id), start, delta)


def rep_working_hours_apply(*, hours: Mapping[int, RepHours]) -> None:
    """Set these reps' working hours (a published routing plan's): a row per rep with
    own days or hours, none for a rep who works the calendar's."""
    own = {rep_id: h for rep_id, h in hours.items() if h.weekdays or h.starts_at or h.ends_at}
    RepWorkingHours.objects.filter(user_id__in=set(hours) - set(own)).delete()
    for rep_id, h in sorted(own.items()):
        RepWorkingHours.objects.update_or_create(
            user_id=rep_id,
            defaults={
                "weekdays": sorted(h.weekdays),
                "starts_at": h.starts_at,
                "ends_at": h.ends_at,
            },
        )
