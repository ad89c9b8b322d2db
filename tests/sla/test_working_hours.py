"""Working hours per rep (#19): routing and the claim window skip reps who are off, night
arrivals go to whoever starts first or wait for the team's opening; national holidays and
company closures apply to every rep.

Default business calendar: 9:00–18:00 Asia/Tokyo, weekdays, national holidays. November
2026: Monday 2, Tuesday 3 is 文化の日, Saturday 7.
"""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from handoff import claims
from handoff.models import (
    AfterHours,
    AssignmentVia,
    Handoff,
    HandoffClaim,
    QueueNotice,
    RepProfile,
    TeamMembership,
)
from handoff.tasks import assign_from_queue_task
from sla.models import BusinessCalendar, CalendarClosure, RepWorkingHours
from tests.factories import CompanyFactory
from tests.handoff.helpers import make_mql, make_team

JST = dt.timezone(dt.timedelta(hours=9))


def at(day, hour, minute=0):
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=JST)


@pytest.fixture
def team(db):
    """Kanto with rep1 and rep2 (rep1 first in the round robin) and a manager."""
    kanto, reps, manager = make_team("Kanto", reps=2, default=True)
    TeamMembership.objects.filter(rep=reps[1]).update(last_assignment_seq=1)
    return kanto, reps, manager


def hours(rep, *, days=(), starts=None, ends=None):
    return RepWorkingHours.objects.create(
        user=rep, weekdays=list(days), starts_at=starts, ends_at=ends
    )


def mql_at(time_machine, when, **fields):
    time_machine.move_to(when, tick=False)
    return make_mql(**fields)


def test_a_rep_who_starts_later_is_skipped_until_they_start(team, time_machine):
    _kanto, (rep1, rep2), _ = team
    hours(rep1, starts=dt.time(13, 0))

    morning = mql_at(time_machine, at(2, 10))
    afternoon = mql_at(time_machine, at(2, 14))

    assert morning.assigned_to == rep2
    assert afternoon.assigned_to == rep1


def test_a_rep_who_works_saturdays_takes_saturdays_mqls(team, time_machine):
    _kanto, (_rep1, rep2), _ = team
    hours(rep2, days=(0, 1, 2, 3, 4, 5))

    handoff = mql_at(time_machine, at(7, 10))

    assert handoff.assigned_to == rep2


def test_a_national_holiday_is_off_for_everyone_so_the_first_to_start_after_it_gets_it(
    team, time_machine
):
    kanto, (rep1, rep2), _ = team
    kanto.claim_required = True
    kanto.save()
    hours(rep1, days=(1,), starts=dt.time(8, 0))  # works Tuesdays only, from 8:00
    hours(rep2, starts=dt.time(8, 30))

    handoff = mql_at(time_machine, at(3, 10))  # 文化の日

    # rep1's next Tuesday is the 10th; rep2 starts Wednesday 8:30.
    assert handoff.assigned_to == rep2
    assert HandoffClaim.objects.get(handoff=handoff).due_at == at(4, 8, 45)


def test_a_company_closure_is_off_for_everyone(team, time_machine):
    _kanto, (rep1, rep2), _ = team
    calendar = BusinessCalendar.objects.get(is_default=True)
    CalendarClosure.objects.create(
        calendar=calendar,
        name="創立記念日",
        start_date=dt.date(2026, 11, 5),
        end_date=dt.date(2026, 11, 5),
    )
    hours(rep1, starts=dt.time(10, 0))

    handoff = mql_at(time_machine, at(5, 11))

    # Closed Thursday: Friday rep2 starts at 9:00, rep1 at 10:00.
    assert handoff.assigned_to == rep2


def test_a_night_mql_goes_to_whoever_starts_first(team, time_machine):
    kanto, (rep1, rep2), _ = team
    kanto.claim_required = True
    kanto.save()
    hours(rep1, starts=dt.time(10, 0))
    hours(rep2, starts=dt.time(9, 30))

    handoff = mql_at(time_machine, at(4, 22))

    assert handoff.assigned_to == rep2
    assert handoff.assigned_at == at(4, 22)
    # The window counts rep2's working time: from Thursday 9:30.
    assert HandoffClaim.objects.get(handoff=handoff).due_at == at(5, 9, 45)
    assert QueueNotice.objects.count() == 0


def test_with_everyone_on_the_calendar_a_night_mql_follows_the_round_robin(team, time_machine):
    _kanto, (rep1, _rep2), _ = team

    assert mql_at(time_machine, at(4, 22)).assigned_to == rep1


def test_a_team_that_waits_keeps_night_mqls_queued_until_someone_starts(team, time_machine):
    kanto, (_rep1, rep2), _ = team
    kanto.after_hours = AfterHours.WAIT_FOR_OPENING
    kanto.save()
    hours(rep2, starts=dt.time(8, 0))

    handoff = mql_at(time_machine, at(4, 22))
    assert handoff.is_queued
    assert QueueNotice.objects.count() == 0  # it waits by the team's choice: nobody is told
    time_machine.move_to(at(5, 7, 59), tick=False)
    assert assign_from_queue_task(kanto.pk) == 0
    time_machine.move_to(at(5, 8, 0), tick=False)

    assert assign_from_queue_task(kanto.pk) == 1
    handoff.refresh_from_db()
    assert handoff.assigned_to == rep2
    assert handoff.assignments.get().via == AssignmentVia.QUEUE


def test_a_waiting_team_whose_reps_are_all_away_still_tells_the_managers(team, time_machine):
    kanto, reps, _ = team
    kanto.after_hours = AfterHours.WAIT_FOR_OPENING
    kanto.save()
    for rep in reps:
        RepProfile.objects.create(user=rep, away=True)

    handoff = mql_at(time_machine, at(4, 22))

    assert handoff.is_queued
    assert QueueNotice.objects.filter(handoff=handoff).count() == 1


def test_a_pass_skips_reps_who_are_off_now(time_machine, db):
    kanto, (rep1, rep2, rep3), _ = make_team("Kanto", reps=3, default=True)
    kanto.claim_required = True
    kanto.save()
    TeamMembership.objects.filter(rep=rep3).update(last_assignment_seq=1)
    hours(rep2, starts=dt.time(11, 0))  # next in the round robin, but not yet working
    handoff = mql_at(time_machine, at(2, 9, 30))
    assert handoff.assigned_to == rep1
    time_machine.move_to(at(2, 9, 45), tick=False)

    assert claims.claims_sweep().passed == [handoff.pk]

    assert Handoff.objects.get(pk=handoff.pk).assigned_to == rep3


def test_the_account_owner_who_is_off_gives_way_while_colleagues_work(team, time_machine):
    _kanto, (rep1, rep2), _ = team
    hours(rep2, starts=dt.time(13, 0))
    company = CompanyFactory(owner=rep2)

    morning = mql_at(time_machine, at(2, 10), company=company)
    afternoon = mql_at(time_machine, at(2, 14), company=company)
    night = mql_at(time_machine, at(2, 22), company=CompanyFactory(owner=rep1))

    assert (morning.assigned_to, morning.assignments.get().via) == (rep1, AssignmentVia.ROUTING)
    assert (afternoon.assigned_to, afternoon.assignments.get().via) == (
        rep2,
        AssignmentVia.ACCOUNT_OWNER,
    )
    # At night nobody works: the owner starts no later than anyone, so they get it.
    assert (night.assigned_to, night.assignments.get().via) == (
        rep1,
        AssignmentVia.ACCOUNT_OWNER,
    )


def test_changed_hours_apply_to_the_next_mql_at_once(team, time_machine):
    _kanto, (rep1, rep2), _ = team
    assert mql_at(time_machine, at(2, 10)).assigned_to == rep1
    row = hours(rep2, starts=dt.time(11, 0))
    assert mql_at(time_machine, at(2, 10, 5)).assigned_to == rep1  # rep2 starts at 11:00
    row.starts_at = None
    row.save()

    assert mql_at(time_machine, at(2, 10, 10)).assigned_to == rep2


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"weekdays": [7]}, "Use weekday numbers from 0 (Monday) to 6."),
        ({"weekdays": ["mon"]}, "Use weekday numbers from 0 (Monday) to 6."),
        ({"weekdays": [True]}, "Use weekday numbers from 0 (Monday) to 6."),
        ({"weekdays": [1, 1]}, "A weekday is listed twice."),
        (
            {"starts_at": dt.time(18), "ends_at": dt.time(9)},
            "Working hours must end after they start.",
        ),
    ],
)
def test_working_hours_are_checked(team, fields, message):
    row = RepWorkingHours(user=team[1][0], **fields)

    with pytest.raises(ValidationError) as refused:
        row.full_clean()

    assert message in str(refused.value)


def test_hours_that_make_no_calendar_fall_back_to_the_calendar(team, time_machine):
    _kanto, (rep1, _rep2), _ = team
    hours(rep1, starts=dt.time(19, 0))  # after the calendar's 18:00 closing, no end given

    assert mql_at(time_machine, at(2, 10)).assigned_to == rep1
