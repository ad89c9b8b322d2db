"""Who is working now: routing and the claim window skip reps who are off.

handoff does not time anything and must not import sla; the app that knows the business
calendar answers, named in `leadflow.reactions.WORKING_HOURS` (sla.hours reads each rep's
hours on the business calendar), made once per process on first use.

Two questions are asked of the registered hours:

- `starts(rep_ids, at)`: for each rep, the first instant at or after `at` when they work
  (`at` itself when they work now);
- `add_working_time(rep_id, start, delta)`: the instant `delta` of the rep's working time
  after `start` (the claim window's due time).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from functools import cache
from typing import Protocol

from handoff.models import AfterHours, Team, TeamMembership
from leadflow import reactions


class WorkingHours(Protocol):
    def starts(self, rep_ids: Collection[int], at: datetime) -> dict[int, datetime]: ...

    def add_working_time(self, rep_id: int, start: datetime, delta: timedelta) -> datetime: ...


@cache
def working_hours() -> WorkingHours:
    return reactions.resolve(reactions.WORKING_HOURS)()


def working_or_first(
    *,
    team: Team,
    members: list[TeamMembership],
    at: datetime,
    hours: WorkingHours | None = None,
) -> list[TeamMembership]:
    """Of `members` (already here and with room), those who may take an MQL at `at`: the
    ones working now; when none is, the ones who start first, unless the team keeps
    after-hours MQLs in its queue until someone starts. `hours`: other working hours
    than the registered ones (a routing plan's replay)."""
    if not members:
        return []
    starts = (hours or working_hours()).starts([m.rep_id for m in members], at)
    working = [m for m in members if starts[m.rep_id] <= at]
    if working or team.after_hours == AfterHours.WAIT_FOR_OPENING:
        return working
    first = min(starts.values())
    return [m for m in members if starts[m.rep_id] == first]


def owner_may_take(
    *,
    membership: TeamMembership,
    at: datetime,
    hours: WorkingHours | None = None,
    team_rep_ids: Collection[int] | None = None,
) -> bool:
    """The account owner takes the MQL first when they work now, or when nobody of their
    team does and they start no later than anyone (an owner off today but back tomorrow
    while colleagues work now gives way to the round robin). `hours` and `team_rep_ids`
    (the team's active reps): a routing plan's replay, instead of the live ones."""
    hours = hours or working_hours()
    own = hours.starts([membership.rep_id], at)[membership.rep_id]
    if own <= at:
        return True
    if membership.team.after_hours == AfterHours.WAIT_FOR_OPENING:
        return False
    # Off now: only at night (nobody of the team working) and among the first to start.
    rep_ids = (
        team_rep_ids
        if team_rep_ids is not None
        else TeamMembership.objects.filter(
            team_id=membership.team_id, is_active=True, rep__is_active=True
        ).values_list("rep_id", flat=True)
    )
    return own <= min(hours.starts(list(rep_ids), at).values(), default=own)
