"""Replay a draft routing plan over the MQLs of the last N weeks (a Celery job).

Nothing live is read for the decisions and nothing is written but the run's own row: the
replay runs the same routing decision code as live routing (`handoff.routing`: the rules'
team, the account owner, the round robin with room and working hours, the after-hours
choice, and the claim pass's pick of the next rep) against a simulated state
(`ReplayState`) built from the plan.

The simulation model
--------------------

- **Arrivals.** Every handoff created in [since, until) is an MQL arriving at its real
  `created_at`, in that order (id breaks ties). Its lead and company are read as they are
  today (the rules' prefecture, industry, size; the owner set on the company).
- **Start.** Every rep's open load is empty at `since` and the round robin starts
  afresh (nobody assigned yet); nobody is away (away periods are not recorded).
- **Each rep's recorded behaviour**, from the same weeks' real handoffs:
  *response* — the median working time (the rep's live hours) from the assignment that
  the rep held at first contact to the first contact; *holding* — the median clock time
  from that first contact (or the assignment, without one) to the verdict, over the
  handoffs the rep held at the verdict. A rep without a record
  takes the median of all reps; with no record at all, response is zero (contact at
  assignment, and the page says so) and holding is unknown (no simulated handoff leaves
  a load before the end).
- **An assignment to a rep** adds one to their open load. Their first contact comes after
  their response time of *the plan's* working hours (`add_working_time`); the handoff
  leaves their open load their holding time after that (the verdict), and the team's
  queue is then handed out, oldest first (as the queue drain after a verdict does: it
  hands out the nearest deadline first, which is the oldest here, every simulated clock
  running from its arrival).
- **Claim windows.** In a team of the plan that requires claims, the rep claims at their
  first contact. If that comes after the window (the team's minutes of the plan's working
  hours), the handoff passes at the window's end to the next rep the claim pass would
  pick (never one who let it pass), after the team's number of passes to the team queue,
  held for a manager (never handed out in the replay). A pass takes it off the rep's load.
- **The queue.** An MQL nobody can take waits in its team's queue; it is handed out when
  a rep of the team frees up (a verdict) or starts work (the earliest start among the
  team's reps with room). Its *queue wait* is the time from arrival to its first
  assignment; an MQL that no rule and no default team routes waits for ever.
- **Breaches.** A first-contact breach is predicted when the simulated first contact
  comes after the first-contact SLA's due time for the MQL's arrival (the SLA policy
  as it is now, counted as it counts: business or clock time). An MQL still unassigned at
  the end is a breach when its due time is before `until`. The breach counts for the rep
  who holds the handoff at first contact.

Actual figures, side by side, for the same MQLs: the assignments each rep received, the
peak of their open handoffs among these MQLs (an assignment is open until the next
assignment of its handoff, its pass to the queue, or its verdict), the queue waits (first
assignment − MQL), and the breaches of the recorded first-contact timers (met late, or
unmet and due before `until`), counted for the rep the timer counts for.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from handoff import routing
from handoff.hours import WorkingHours
from handoff.models import (
    Assignment,
    ClaimStatus,
    Handoff,
    HandoffClaim,
    PlanMember,
    PlanRep,
    PlanRule,
    PlanStatus,
    PlanTeam,
    ReplayRun,
    ReplayStatus,
    RepProfile,
    RoutingPlan,
    Team,
    TeamMembership,
)
from handoff.plans import DEFAULT_CAPACITY, TEAM_FIELDS, plan_rep_hours, plan_timing
from handoff.plans import routing_plan_fingerprint as _fingerprint
from leadflow.errors import DomainError
from leadflow.models import Lead, User
from leadflow.transactions import enqueue_on_commit

logger = logging.getLogger(__name__)

# MQLs replayed between two progress updates of the run row.
PROGRESS_EVERY = 500

# Event kinds, in the order they are handled at the same instant: a verdict frees a
# rep before a window ends, a window ends before the queue is handed out, and all of
# them before an MQL that arrives at that very instant.
_RELEASE, _CLAIM_DUE, _DRAIN, _ARRIVAL = range(4)


# --- starting and finding runs -------------------------------------------------------------


def replay_run_start(
    *, plan: RoutingPlan, weeks: int = 4, actor: User | None = None, fresh: bool = False
) -> ReplayRun:
    """The draft's replay for what the draft is now: the run going or finished for this
    content and these weeks, else a new one, queued after commit. `fresh`: a new one even
    if one finished (the weeks have moved on). Returns at once."""
    if not 1 <= weeks <= 26:
        message = _("Replay between 1 and 26 weeks.")
        raise DomainError(message, code="invalid_weeks", fields={"weeks": [message]})
    with transaction.atomic():
        # One start at a time per plan: two tabs share one job.
        locked = RoutingPlan.objects.select_for_update().filter(pk=plan.pk).first()
        if locked is None or locked.status != PlanStatus.DRAFT:
            raise DomainError(_("Only a draft plan can be replayed."), code="not_a_draft")
        fingerprint = _fingerprint(plan=locked)
        current = (
            ReplayRun.objects.filter(plan=locked, fingerprint=fingerprint, weeks=weeks)
            .order_by("-id")
            .first()
        )
        if current is not None and not current.is_stuck and (current.is_active or not fresh):
            return current
        until = timezone.now()
        run = ReplayRun.objects.create(
            plan=locked,
            fingerprint=fingerprint,
            weeks=weeks,
            since=until - timedelta(weeks=weeks),
            until=until,
            created_by=actor,
        )
        from handoff.tasks import replay_run_task

        enqueue_on_commit(replay_run_task, run.pk)
    return run


def replay_run_current(*, plan: RoutingPlan) -> ReplayRun | None:
    """The plan's latest replay for its current content (finished or going), or None:
    never replayed, or edited since."""
    return (
        ReplayRun.objects.filter(plan=plan, fingerprint=_fingerprint(plan=plan))
        .order_by("-id")
        .first()
    )


def replay_run_execute(*, run_id: int) -> bool:
    """Run the replay job (the task; tests and benches call it directly). True when it
    stored a result. One run must fit in the task time limit (the bench's MQLs/s says how
    many weeks that is). Safe to deliver twice: the run is claimed by a conditional UPDATE
    (queued → running), and one that a dead worker left running is taken over once the
    task time limit has passed. A run whose draft changed meanwhile is deleted: its
    figures would describe a plan that no longer exists (the page starts another)."""
    now = timezone.now()
    claimed = ReplayRun.objects.filter(pk=run_id, status=ReplayStatus.QUEUED).update(
        status=ReplayStatus.RUNNING, started_at=now
    )
    if not claimed:
        stale = now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
        claimed = ReplayRun.objects.filter(
            pk=run_id, status=ReplayStatus.RUNNING, started_at__lt=stale
        ).update(started_at=now)
    if not claimed:
        return False
    run = ReplayRun.objects.select_related("plan").get(pk=run_id)
    if run.plan.status != PlanStatus.DRAFT or _fingerprint(plan=run.plan) != run.fingerprint:
        run.delete()
        return False

    total = Handoff.objects.filter(created_at__gte=run.since, created_at__lt=run.until).count()
    ReplayRun.objects.filter(pk=run_id).update(total=total, done=0)

    def progress(done: int) -> None:
        ReplayRun.objects.filter(pk=run_id).update(done=done)

    result = replay(plan=run.plan, since=run.since, until=run.until, progress=progress)
    with transaction.atomic():
        plan = RoutingPlan.objects.select_for_update().get(pk=run.plan_id)
        if plan.status != PlanStatus.DRAFT or _fingerprint(plan=plan) != run.fingerprint:
            ReplayRun.objects.filter(pk=run_id).delete()
            return False
        ReplayRun.objects.filter(pk=run_id).update(
            status=ReplayStatus.DONE,
            result=result,
            total=result["mqls"],
            done=result["mqls"],
            finished_at=timezone.now(),
        )
        # Older replays of the draft describe earlier content.
        ReplayRun.objects.filter(plan_id=run.plan_id, pk__lt=run_id).delete()
    return True


# --- recorded behaviour ----------------------------------------------------------------------


@dataclass
class _Record:
    handoff: Handoff
    assignments: list[tuple[datetime, int, int]]  # (assigned_at, rep_id, assignment id)


def _holder_at(record: _Record, at: datetime) -> tuple[datetime, int] | None:
    """The assignment the handoff was under at `at` (its time and rep)."""
    held = None
    for assigned_at, rep_id, _pk in record.assignments:
        if assigned_at > at:
            break
        held = (assigned_at, rep_id)
    return held


def _median(values: list[timedelta]) -> timedelta | None:
    if not values:
        return None
    ordered, middle = sorted(values), len(values) // 2
    return ordered[middle] if len(values) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


@dataclass(frozen=True)
class Behaviour:
    response: timedelta  # working time from assignment to first contact
    holding: timedelta | None  # clock time from assignment to verdict (None: unknown)
    own: bool  # from the rep's own record (else all reps')


def recorded_behaviour(records: Iterable[_Record]) -> tuple[dict[int, Behaviour], Behaviour]:
    """Each rep's median response and holding times over `records`, and the fallback for
    reps without a record (the medians of everyone's)."""
    timing = plan_timing()
    responses: dict[int, list[timedelta]] = defaultdict(list)
    holdings: dict[int, list[timedelta]] = defaultdict(list)
    for record in records:
        handoff = record.handoff
        if handoff.first_contact_at is not None:
            held = _holder_at(record, handoff.first_contact_at)
            if held is not None:
                responses[held[1]].append(
                    timing.working_time_between(held[1], held[0], handoff.first_contact_at)
                )
        if handoff.decided_at is not None:
            held = _holder_at(record, handoff.decided_at)
            if held is not None:
                # From the first contact (a verdict comes after it), else the assignment.
                begins = max(held[0], handoff.first_contact_at or held[0])
                holdings[held[1]].append(max(handoff.decided_at - begins, timedelta(0)))
    everyone = Behaviour(
        response=_median([v for values in responses.values() for v in values]) or timedelta(0),
        holding=_median([v for values in holdings.values() for v in values]),
        own=False,
    )
    reps = {}
    for rep_id in set(responses) | set(holdings):
        reps[rep_id] = Behaviour(
            response=_median(responses[rep_id]) or everyone.response,
            holding=_median(holdings[rep_id]) or everyone.holding,
            own=True,
        )
    return reps, everyone


def _records(since: datetime, until: datetime) -> list[_Record]:
    handoffs = list(
        Handoff.objects.filter(created_at__gte=since, created_at__lt=until)
        .select_related("lead__company")
        .order_by("created_at", "id")
    )
    by_id = {h.pk: _Record(handoff=h, assignments=[]) for h in handoffs}
    rows = (
        Assignment.objects.filter(handoff__created_at__gte=since, handoff__created_at__lt=until)
        .order_by("assigned_at", "id")
        .values_list("handoff_id", "assigned_at", "rep_id", "id")
    )
    for handoff_id, assigned_at, rep_id, pk in rows:
        by_id[handoff_id].assignments.append((assigned_at, rep_id, pk))
    return list(by_id.values())


# --- the simulated state ---------------------------------------------------------------------


@dataclass
class _Sim:
    """One MQL in the replay."""

    index: int
    lead: Lead
    arrived: datetime
    team_id: int | None = None
    rep_id: int | None = None
    token: int = 0  # the assignment's number: events of an earlier one are void
    first_assigned_at: datetime | None = None
    contact_at: datetime | None = None
    let_pass: set[int] = field(default_factory=set)
    passes: int = 0
    held: bool = False  # out of passes: waits for a manager
    released: bool = False


class ReplayState(routing.MembersInMemory):
    """routing.RoutingState on a plan: its teams, rules, members, capacities and hours,
    and the open loads of the replay so far."""

    def __init__(self, plan: RoutingPlan, hours: WorkingHours) -> None:
        self.hours = hours
        self.teams: dict[int, Team] = {}
        for plan_team in PlanTeam.objects.filter(plan=plan).select_related("team"):
            team = Team(pk=plan_team.team_id, name=plan_team.team.name)
            for name in TEAM_FIELDS:
                setattr(team, name, getattr(plan_team, name))
            self.teams[team.pk] = team
        self.rules = [
            rule.as_rule()
            for rule in PlanRule.objects.filter(plan=plan, is_active=True).order_by("order", "pk")
        ]
        self.rules = [rule for rule in self.rules if rule.team_id in self.teams]
        for rule in self.rules:
            rule.team = self.teams[rule.team_id]
        self.default_team = next((t for t in self.teams.values() if t.is_default), None)
        capacities = dict(
            PlanRep.objects.filter(plan=plan).values_list("rep_id", "max_open_handoffs")
        )
        self.users: dict[int, User] = {}
        self.by_team: dict[int, list[TeamMembership]] = defaultdict(list)
        self.by_rep: dict[int, list[TeamMembership]] = defaultdict(list)
        rows = PlanMember.objects.filter(
            plan=plan, is_active=True, rep__is_active=True, team_id__in=list(self.teams)
        ).select_related("rep")
        for number, member in enumerate(rows.order_by("team_id", "rep_id"), start=1):
            user = self.users.get(member.rep_id)
            if user is None:
                user = self.users[member.rep_id] = member.rep
                # Nobody is away in the replay; the capacity is the plan's.
                user.rep_profile = RepProfile(
                    user=user, max_open_handoffs=capacities.get(member.rep_id, DEFAULT_CAPACITY)
                )
            membership = TeamMembership(
                pk=number, team=self.teams[member.team_id], rep=user, last_assignment_seq=0
            )
            self.by_team[member.team_id].append(membership)
            self.by_rep[member.rep_id].append(membership)
        self.counters: dict[int, int] = defaultdict(int)
        self.open: dict[int, int] = defaultdict(int)
        # Per company, the open simulated handoffs' reps, latest assignment last.
        self.open_at_company: dict[int, list[tuple[int, int]]] = defaultdict(list)

    # routing.RoutingState (beside MembersInMemory's)
    def routing_team_for(self, lead: Lead) -> Team | None:
        for rule in self.rules:
            if rule.matches(lead):
                return rule.team
        return self.default_team

    def account_owner_for(self, lead: Lead) -> tuple[int, str] | None:
        company = lead.company
        if company is None:
            return None
        if company.owner_id is not None:
            return company.owner_id, "company"
        holders = self.open_at_company.get(company.pk)
        if holders:
            return holders[-1][1], "open"
        return None

    # the replay's own bookkeeping
    def assign(self, sim: _Sim, membership: TeamMembership, at: datetime) -> None:
        self.counters[membership.team_id] += 1
        membership.last_assignment_seq = self.counters[membership.team_id]
        sim.team_id, sim.rep_id = membership.team_id, membership.rep_id
        sim.token += 1
        self.open[membership.rep_id] += 1
        if sim.lead.company_id is not None:
            self.open_at_company[sim.lead.company_id].append((sim.index, membership.rep_id))

    def unload(self, sim: _Sim) -> None:
        assert sim.rep_id is not None
        self.open[sim.rep_id] -= 1
        if sim.lead.company_id is not None:
            holders = self.open_at_company[sim.lead.company_id]
            holders.remove((sim.index, sim.rep_id))


# --- the replay ---------------------------------------------------------------------------------


@dataclass
class _RepFigures:
    received: int = 0
    passed_on: int = 0
    peak_open: int = 0
    waits: list[float] = field(default_factory=list)  # minutes, of the MQLs first given to them
    breaches: int = 0

    def as_dict(self) -> dict:
        return {
            "received": self.received,
            "passed_on": self.passed_on,
            "peak_open": self.peak_open,
            "wait_mean_min": round(statistics.fmean(self.waits), 1) if self.waits else 0.0,
            "wait_max_min": round(max(self.waits), 1) if self.waits else 0.0,
            "breaches": self.breaches,
        }


def _minutes(delta: timedelta) -> float:
    return delta.total_seconds() / 60


class _Replay:
    def __init__(self, plan: RoutingPlan, records: list[_Record], until: datetime) -> None:
        timing = plan_timing()
        self.timing = timing
        self.until = until
        self.state = ReplayState(plan, timing.plan_hours(plan_rep_hours(plan=plan)))
        self.behaviour, self.everyone = recorded_behaviour(records)
        self.sims = [
            _Sim(index=i, lead=r.handoff.lead, arrived=r.handoff.created_at)
            for i, r in enumerate(records)
        ]
        self.events: list[tuple[datetime, int, int, int, int]] = []
        self.order = itertools.count()
        self.queues: dict[int | None, list[_Sim]] = defaultdict(list)
        self.drains: set[tuple[int, datetime]] = set()
        self.figures: dict[int, _RepFigures] = defaultdict(_RepFigures)
        for sim in self.sims:
            self._push(sim.arrived, _ARRIVAL, sim.index, 0)

    def _push(self, at: datetime, kind: int, index: int, token: int) -> None:
        heapq.heappush(self.events, (at, kind, next(self.order), index, token))

    def _of(self, rep_id: int) -> Behaviour:
        return self.behaviour.get(rep_id, self.everyone)

    def run(self, progress) -> None:
        arrived = 0
        while self.events:
            at, kind, _order, index, token = heapq.heappop(self.events)
            if kind == _ARRIVAL:
                self._arrive(self.sims[index], at)
                arrived += 1
                if arrived % PROGRESS_EVERY == 0:
                    progress(arrived)
            elif kind == _DRAIN:
                self.drains.discard((index, at))
                self._drain(self.state.teams[index], at)
            else:
                sim = self.sims[index]
                if sim.token != token or sim.released:
                    continue  # an earlier assignment's event
                if kind == _RELEASE:
                    self._release(sim, at)
                else:
                    self._claim_due(sim, at)

    def _arrive(self, sim: _Sim, at: datetime) -> None:
        state = self.state
        routed = state.routing_team_for(sim.lead)
        owner = routing._account_owner_membership(lead=sim.lead, routed=routed, at=at, state=state)
        team = state.teams[owner[0].team_id] if owner else routed
        sim.team_id = team.pk if team else None
        choice = routing.choose_for_new_mql(team=team, owner=owner, at=at, state=state)
        if team is not None and choice.membership is not None:
            self._assign(sim, team, choice.membership, at)
        else:
            self._queue(sim, team, at)

    def _assign(self, sim: _Sim, team: Team, membership: TeamMembership, at: datetime) -> None:
        state = self.state
        state.assign(sim, membership, at)
        rep_id = membership.rep_id
        figures = self.figures[rep_id]
        figures.received += 1
        figures.peak_open = max(figures.peak_open, state.open[rep_id])
        if sim.first_assigned_at is None:
            sim.first_assigned_at = at
            figures.waits.append(_minutes(at - sim.arrived))
        behaviour = self._of(rep_id)
        sim.contact_at = state.hours.add_working_time(rep_id, at, behaviour.response)
        if team.claim_required:
            due = state.hours.add_working_time(
                rep_id, at, timedelta(minutes=team.claim_window_minutes)
            )
            if sim.contact_at > due:
                self._push(due, _CLAIM_DUE, sim.index, sim.token)
                return
        if behaviour.holding is not None:
            self._push(sim.contact_at + behaviour.holding, _RELEASE, sim.index, sim.token)

    def _release(self, sim: _Sim, at: datetime) -> None:
        self.state.unload(sim)
        sim.released = True
        assert sim.team_id is not None
        self._drain(self.state.teams[sim.team_id], at)

    def _claim_due(self, sim: _Sim, at: datetime) -> None:
        """The window ended unclaimed: handoff.claims.claim_pass's decision."""
        state = self.state
        assert sim.rep_id is not None and sim.team_id is not None
        team = state.teams[sim.team_id]
        state.unload(sim)
        self.figures[sim.rep_id].passed_on += 1
        sim.let_pass.add(sim.rep_id)
        membership = None
        if sim.passes < team.claim_max_passes:
            membership = routing._pick_rep(
                team=team, at=at, exclude_rep_ids=sim.let_pass, state=state
            )
        if membership is not None:
            sim.passes += 1
            self._assign(sim, team, membership, at)
            return
        # To the team queue, held for a manager: nobody in the replay hands it out.
        sim.rep_id, sim.contact_at, sim.held = None, None, True
        sim.token += 1

    def _queue(self, sim: _Sim, team: Team | None, at: datetime) -> None:
        self.queues[team.pk if team else None].append(sim)
        if team is not None:
            self._drain_at_opening(team, at)

    def _drain(self, team: Team, at: datetime) -> None:
        """handoff_assign_from_queue: nearest deadline first (the oldest, every clock here
        running from the arrival), while the round robin finds a rep."""
        queue = self.queues.get(team.pk, [])
        while queue:
            membership = routing._pick_rep(team=team, at=at, state=self.state)
            if membership is None:
                self._drain_at_opening(team, at)
                return
            self._assign(queue.pop(0), team, membership, at)

    def _drain_at_opening(self, team: Team, at: datetime) -> None:
        """The queue is also handed out when the first of the team's reps with room starts
        work."""
        members = routing._with_room(self.state.members(team, ()), at, self.state)
        if not members:
            return  # only a verdict can make room
        opening = min(self.state.hours.starts([m.rep_id for m in members], at).values())
        if opening > at and (team.pk, opening) not in self.drains:
            self.drains.add((team.pk, opening))
            self._push(opening, _DRAIN, team.pk, 0)

    def breaches(self) -> tuple[int, int]:
        """Count the predicted breaches per rep; return (left in queue, their breaches)."""
        left = left_breached = 0
        for sim in self.sims:
            due = self.timing.first_contact_due(sim.arrived)
            if sim.rep_id is None or sim.contact_at is None:
                left += 1
                if due is not None and due <= self.until:
                    left_breached += 1
            elif due is not None and sim.contact_at > due:
                self.figures[sim.rep_id].breaches += 1
        return left, left_breached


def _actual(records: list[_Record], until: datetime) -> tuple[dict[int, _RepFigures], int, int]:
    """What happened to the same MQLs: per rep, and (left in the queue, their breaches)."""
    figures: dict[int, _RepFigures] = defaultdict(_RepFigures)
    claims = list(
        HandoffClaim.objects.filter(
            status__in=(ClaimStatus.PASSED, ClaimStatus.QUEUED),
            assignment_id__in=[pk for r in records for _at, _rep, pk in r.assignments],
        ).values_list("assignment_id", "rep_id", "status", "resolved_at")
    )
    # A window let pass ends its assignment's load (passed: the next assignment does too).
    queued_claims = {pk: at for pk, _rep, status, at in claims if status == ClaimStatus.QUEUED}
    for _pk, rep_id, _status, _at in claims:
        figures[rep_id].passed_on += 1
    intervals: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
    left = 0
    for record in records:
        handoff = record.handoff
        if not record.assignments:
            left += 1
            continue
        first_at, first_rep, _pk = record.assignments[0]
        figures[first_rep].waits.append(_minutes(first_at - handoff.created_at))
        for number, (assigned_at, rep_id, pk) in enumerate(record.assignments):
            figures[rep_id].received += 1
            ends = [until]
            if number + 1 < len(record.assignments):
                ends.append(record.assignments[number + 1][0])
            if handoff.decided_at is not None:
                ends.append(handoff.decided_at)
            queued_at = queued_claims.get(pk)
            if queued_at is not None:
                ends.append(queued_at)
            end = min(ends)
            if end > assigned_at:
                # Ends sort before starts at the same instant (-1 < +1).
                intervals[rep_id] += [(assigned_at, 1), (end, -1)]
        if record.assignments and handoff.assigned_to_id is None and handoff.is_open:
            left += 1
    for rep_id, points in intervals.items():
        load = 0
        for _at, step in sorted(points):
            load += step
            figures[rep_id].peak_open = max(figures[rep_id].peak_open, load)
    timers = plan_timing().first_contact_timers([r.handoff.pk for r in records])
    left_breached = 0
    for record in records:
        handoff = record.handoff
        found = timers.get(handoff.pk)
        if found is None:
            continue
        counted_for, due = found
        contact = handoff.first_contact_at
        breached = (contact is not None and contact > due) or (contact is None and due <= until)
        if not breached:
            continue
        if counted_for is None:
            left_breached += 1
        else:
            figures[counted_for].breaches += 1
    return figures, left, left_breached


def replay(*, plan: RoutingPlan, since: datetime, until: datetime, progress=None) -> dict:
    """The replay's figures (see the module's docstring): per rep replayed and actual,
    the totals, and the behaviour each rep was replayed with. Reads only."""
    records = _records(since, until)
    simulation = _Replay(plan, records, until)
    simulation.run(progress or (lambda done: None))
    left, left_breached = simulation.breaches()
    actual, actual_left, actual_left_breached = _actual(records, until)
    rep_ids = (
        set(simulation.state.users)
        | set(PlanRep.objects.filter(plan=plan).values_list("rep_id", flat=True))
        | {rep_id for rep_id, f in simulation.figures.items() if f.received}
        | {rep_id for rep_id, f in actual.items() if f.received or f.breaches}
    )
    users = {
        u.pk: u
        for u in User.objects.filter(pk__in=rep_ids).only("username", "first_name", "last_name")
    }
    rows: list[dict[str, Any]] = []
    for rep_id in sorted(rep_ids, key=lambda pk: (str(users.get(pk, pk)), pk)):
        own = simulation.behaviour.get(rep_id)
        behaviour = own or simulation.everyone
        rows.append(
            {
                "rep_id": rep_id,
                "name": str(users[rep_id]) if rep_id in users else str(rep_id),
                "in_plan": rep_id in simulation.state.users,
                "replay": simulation.figures[rep_id].as_dict(),
                "actual": actual[rep_id].as_dict(),
                "response_min": round(_minutes(behaviour.response), 1),
                "holding_h": (
                    round(behaviour.holding.total_seconds() / 3600, 1)
                    if behaviour.holding is not None
                    else None
                ),
                "own_record": own is not None,
            }
        )

    def total(side: str, left_in_queue: int, breaches_in_queue: int) -> dict:
        return {
            "received": sum(row[side]["received"] for row in rows),
            "passed_on": sum(row[side]["passed_on"] for row in rows),
            "breaches": sum(row[side]["breaches"] for row in rows) + breaches_in_queue,
            "left_in_queue": left_in_queue,
            "breaches_in_queue": breaches_in_queue,
        }

    return {
        "mqls": len(records),
        "since": since.isoformat(),
        "until": until.isoformat(),
        "reps": rows,
        "replay": total("replay", left, left_breached),
        "actual": total("actual", actual_left, actual_left_breached),
        # The page says when the replay had nothing to go by (see the docstring).
        "no_response_record": all(r.handoff.first_contact_at is None for r in records),
        "no_holding_record": simulation.everyone.holding is None,
        "sla": plan_timing().first_contact_due(until) is not None,
    }
