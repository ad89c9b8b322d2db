"""handoff.plans.PlanTiming on the business calendar: what a routing plan's replay needs
to know of time (named in leadflow.reactions.PLAN_TIMING; handoff must not import sla).

- the reps' live working hours, copied into a new draft plan;
- a plan's hours as working hours (the default calendar with the plan's days and hours
  per rep: national holidays and closures apply to everyone, as live);
- a rep's working time between two instants on their live hours (the recorded response
  times are measured so);
- the first-contact SLA's due time for an MQL (the active policy now, counted as it
  counts), and the recorded first-contact timers of past handoffs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping

from handoff.hours import WorkingHours
from handoff.plans import RepHours
from sla.calendar import business_time_between
from sla.hours import CalendarWorkingHours, Roster, rep_calendar, roster
from sla.models import RepWorkingHours, SlaTimer, TimerKind
from sla.selectors import timer_policies_with_calendars
from sla.services import timer_deadline


class CalendarPlanTiming:
    def rep_hours(self, rep_ids: Collection[int]) -> dict[int, RepHours]:
        return {
            row.user_id: RepHours(tuple(row.weekdays or ()), row.starts_at, row.ends_at)
            for row in RepWorkingHours.objects.filter(user_id__in=list(rep_ids))
        }

    def plan_hours(self, reps: Mapping[int, RepHours]) -> WorkingHours:
        base = roster().base
        calendars = {
            rep_id: rep_calendar(
                base,
                RepWorkingHours(
                    user_id=rep_id,
                    weekdays=list(h.weekdays),
                    starts_at=h.starts_at,
                    ends_at=h.ends_at,
                ),
            )
            for rep_id, h in reps.items()
        }
        return CalendarWorkingHours(Roster(base=base, reps=calendars))

    def working_time_between(
        self, rep_id: int, start: dt.datetime, end: dt.datetime
    ) -> dt.timedelta:
        if end <= start:
            return dt.timedelta(0)
        return business_time_between(roster().calendar(rep_id), start, end)

    def first_contact_due(self, start: dt.datetime) -> dt.datetime | None:
        for policy, calendar in timer_policies_with_calendars():
            if policy.kind == TimerKind.FIRST_CONTACT:
                return timer_deadline(policy=policy, start=start, calendar=calendar)[0]
        return None

    def first_contact_timers(
        self, handoff_ids: Collection[int]
    ) -> dict[int, tuple[int | None, dt.datetime]]:
        rows = SlaTimer.objects.filter(
            handoff_id__in=list(handoff_ids), kind=TimerKind.FIRST_CONTACT
        ).values_list("handoff_id", "rep_id", "due_at")
        return {handoff_id: (rep_id, due) for handoff_id, rep_id, due in rows}
