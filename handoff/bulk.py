"""Many new MQLs at once (a publish's rescore): the set-based twin of
`routing.handoff_create_for_mql`, for one batch of a bulk move.

The routing decisions are the single path's own functions (`routing.choose_for_new_mql`,
`routing._account_owner_membership`), run against `BatchState`: the live teams, members,
open loads and account owners read once under the teams' locks, and kept up to date in
memory as the batch's MQLs are routed one after the other in lead id order, which is the
order the per-lead path routes them in. So each lead gets the rep it would have got from
a single move, and the rows are then written a table at a time: the handoffs, their
timers, KPI day marks and fit snapshots (HANDOFFS_CREATED_BULK), the assignments and claim
windows (HANDOFFS_ASSIGNED_BULK), the timelines, queue notices, the teams' round robin.

A wave (a publish's rescore, `leadflow.models.MqlWave`) must not flood sales: its MQLs
go to the reps who have room now, round robin and capacity as for any MQL, and the rest
wait in their team's queue with their SLA clocks not running (`Handoff.clock_waits`,
no timers, no queue notice per lead: the managers see the wave in the queue's banner).
The queue's drain hands them out as reps free up, and the timers start with that
assignment (sla.reactions.on_handoff_assigned). Without a wave (and for every MQL made
one at a time: an event, a hand-raiser) a queued MQL's clock runs from the MQL, as ever.

Locks (leadflow.locks): the batch's leads are held (leads_for_bulk_change), then every
team, lower id first (`locks.teams_all`): a wave of MQLs may reach any team, and the
per-lead paths never hold two.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, F, Max, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from handoff import hours, locks, routing, selectors
from handoff.models import (
    Assignment,
    Handoff,
    HandoffStatus,
    HandoffTimeline,
    QueueNotice,
    Team,
    TeamMembership,
)
from handoff.timeline import timeline_row
from leadflow import reactions
from leadflow.models import EngagementEvent, Lead, MqlWave, Stage, StageTransition, User
from leadflow.transactions import enqueue_on_commit

logger = logging.getLogger(__name__)

# Assignment ids per notification task: one broker round trip per chunk, not per rep.
NOTIFY_CHUNK = 50


class _CachedHours:
    """The registered working hours, asked once per rep and instant: a batch routes all
    its MQLs at one instant, and each routing asks about every member of the team."""

    def __init__(self, inner: hours.WorkingHours) -> None:
        self.inner = inner
        self.known: dict[tuple[int, datetime], datetime] = {}

    def starts(self, rep_ids: Collection[int], at: datetime) -> dict[int, datetime]:
        missing = [rep_id for rep_id in rep_ids if (rep_id, at) not in self.known]
        if missing:
            for rep_id, start in self.inner.starts(missing, at).items():
                self.known[rep_id, at] = start
        return {rep_id: self.known[rep_id, at] for rep_id in rep_ids}

    def add_working_time(self, rep_id: int, start: datetime, delta: timedelta) -> datetime:
        return self.inner.add_working_time(rep_id, start, delta)


class BatchState(routing.MembersInMemory):
    """routing.RoutingState on the live tables, read once for a batch under the teams'
    locks and advanced in memory as the batch assigns (`assigned`)."""

    def __init__(self, teams: dict[int, Team], leads: list[Lead]) -> None:
        self.hours: hours.WorkingHours = _CachedHours(hours.working_hours())
        self.teams = teams
        self.by_team: dict[int, list[TeamMembership]] = defaultdict(list)
        self.by_rep: dict[int, list[TeamMembership]] = defaultdict(list)
        rows = TeamMembership.objects.filter(
            team_id__in=list(teams), is_active=True, rep__is_active=True
        ).select_related("rep__rep_profile")
        for membership in rows:
            membership.team = teams[membership.team_id]
            self.by_team[membership.team_id].append(membership)
            self.by_rep[membership.rep_id].append(membership)
        self.open = defaultdict(
            int,
            Handoff.objects.filter(status=HandoffStatus.OPEN, assigned_to_id__in=list(self.by_rep))
            .order_by()
            .values("assigned_to_id")
            .annotate(n=Count("id"))
            .values_list("assigned_to_id", "n"),
        )
        self.touched: dict[int, TeamMembership] = {}
        self.find_team = selectors.routing_team_finder()
        self.best: dict[int, tuple[tuple, int]] = {}
        self.active_owners: set[int] = set()
        self.add_leads(leads)

    def add_leads(self, leads: list[Lead]) -> None:
        """Read the account owners `leads` may be routed to (a forecast adds its leads a
        chunk at a time; a batch all at once)."""
        # Per company without an owner of its own, the best holder of another of its leads
        # (selectors.account_owner_for's order: rank, latest stage change, latest id). The
        # batch's own leads are left out here: they enter as the batch moves them (`moved`).
        batch_ids = [lead.pk for lead in leads]
        companies = {
            lead.company_id
            for lead in leads
            if lead.company is not None and lead.company.owner_id is None
        }
        rows = (
            Lead.objects.filter(
                company_id__in=list(companies),
                owner__isnull=False,
                owner__is_active=True,
                stage__in=list(selectors.OWNER_RANK),
            )
            .exclude(pk__in=batch_ids)
            .values_list("company_id", "owner_id", "stage", "stage_changed_at", "pk")
        )
        for company_id, owner_id, stage, changed_at, pk in rows:
            self._offer(company_id, (selectors.OWNER_RANK[stage], changed_at, pk), owner_id)
        owner_ids = {lead.owner_id for lead in leads if lead.owner_id is not None}
        self.active_owners |= set(
            User.objects.filter(pk__in=owner_ids, is_active=True).values_list("pk", flat=True)
        )

    def _offer(self, company_id: int, rank: tuple, owner_id: int) -> None:
        current = self.best.get(company_id)
        # Lowest rank first, then the latest stage change, then the latest id.
        if current is None or (rank[0], -rank[1].timestamp(), -rank[2]) < (
            current[0][0],
            -current[0][1].timestamp(),
            -current[0][2],
        ):
            self.best[company_id] = (rank, owner_id)

    # routing.RoutingState (beside MembersInMemory's)
    def routing_team_for(self, lead: Lead) -> Team | None:
        found = self.find_team(lead)
        return self.teams.get(found.pk) if found is not None else None

    def account_owner_for(self, lead: Lead) -> tuple[int, str] | None:
        company = lead.company
        if company is None:
            return None
        if company.owner_id is not None:
            return company.owner_id, "company"
        best = self.best.get(company.pk)
        return None if best is None else (best[1], selectors.OWNER_HOW[best[0][0]])

    # the batch's own bookkeeping
    def assigned(self, team: Team, membership: TeamMembership, at: datetime) -> None:
        """What routing._assign changes in the round robin, in memory."""
        team.assignment_counter += 1
        membership.last_assignment_seq = team.assignment_counter
        membership.last_assigned_at = at
        self.open[membership.rep_id] += 1
        self.touched[membership.pk] = membership

    def moved(self, lead: Lead, owner_id: int | None, at: datetime) -> None:
        """The lead is an MQL now, held by `owner_id`: for the company's next leads of the
        batch it is the open handoff selectors.account_owner_for finds first."""
        if lead.company_id is None or owner_id is None:
            return
        if owner_id in self.active_owners or owner_id in self.by_rep:
            self._offer(lead.company_id, (selectors.OWNER_RANK[Stage.MQL], at, lead.pk), owner_id)


@dataclass
class _Routed:
    transition: StageTransition
    team_id: int | None
    choice: routing.Choice


def handoffs_create_for_mqls(
    *, transitions: list[StageTransition], wave: MqlWave | None = None
) -> list[Handoff]:
    """Create and route the handoffs of a batch of new MQLs, in the bulk move's
    transaction (STAGE_CHANGED_BULK[MQL]); the rows a single `handoff_create_for_mql` per
    transition writes, a table at a time. Returns the new handoffs, in lead id order."""
    if not transitions:
        return []
    at = transitions[0].occurred_at
    leads = [t.lead for t in transitions]
    # A lead that still has an open handoff keeps it (the single path logs and returns it).
    still_open = set(
        Handoff.objects.filter(
            lead_id__in=[lead.pk for lead in leads], status=HandoffStatus.OPEN
        ).values_list("lead_id", flat=True)
    )
    for lead_id in sorted(still_open):
        logger.warning("Lead %s became MQL with a handoff still open", lead_id)
    transitions = [t for t in transitions if t.lead_id not in still_open]
    teams = locks.teams_all()
    counters = {pk: team.assignment_counter for pk, team in teams.items()}
    state = BatchState(teams, [t.lead for t in transitions])

    routed = [
        _Routed(transition, team_id, choice)
        for transition, (team_id, choice) in zip(
            transitions, _route([t.lead for t in transitions], state, at), strict=True
        )
    ]

    handoffs = [
        Handoff(
            lead=r.transition.lead,
            mql_transition=r.transition,
            team_id=r.team_id,
            assigned_to=r.choice.membership.rep if r.choice.membership else None,
            assigned_at=at if r.choice.membership else None,
            created_at=at,
            wave=wave,
        )
        for r in routed
    ]
    Handoff.objects.bulk_create(handoffs)
    reactions.run(reactions.HANDOFFS_CREATED_BULK, handoffs=handoffs, at=at)
    events = _newest_events([h.lead_id for h in handoffs])

    # The round robin's counters and positions, as _assign leaves them.
    for team in teams.values():
        if team.assignment_counter != counters[team.pk]:
            Team.objects.filter(pk=team.pk).update(assignment_counter=team.assignment_counter)
    TeamMembership.objects.bulk_update(
        list(state.touched.values()), ["last_assignment_seq", "last_assigned_at"]
    )
    by_rep: dict[int, list[int]] = defaultdict(list)
    assignments = []
    for handoff, r in zip(handoffs, routed, strict=True):
        if r.choice.membership is None or r.team_id is None:
            continue
        by_rep[r.choice.membership.rep_id].append(handoff.lead_id)
        handoff.team = teams[r.team_id]
        assignments.append(
            Assignment(
                handoff=handoff,
                rep=r.choice.membership.rep,
                via=r.choice.via,
                reason=r.choice.reason,
                assigned_at=at,
            )
        )
    # The rep who holds the handoff owns the lead (routing._assign): one UPDATE per rep.
    for rep_id, lead_ids in by_rep.items():
        Lead.objects.filter(pk__in=lead_ids).update(owner_id=rep_id, updated_at=at)
    Assignment.objects.bulk_create(assignments)
    if assignments:
        reactions.run(reactions.HANDOFFS_ASSIGNED_BULK, assignments=assignments, at=at)
        from handoff.tasks import notify_assignments_task

        ids = [a.pk for a in assignments]
        for start in range(0, len(ids), NOTIFY_CHUNK):
            enqueue_on_commit(notify_assignments_task, ids[start : start + NOTIFY_CHUNK])
    _queue_notices(
        [
            (handoff, r.team_id)
            for handoff, r in zip(handoffs, routed, strict=True)
            if r.choice.membership is None
            and not r.choice.waits_for_opening
            and not handoff.clock_waits
        ],
        at,
    )
    if wave is not None:
        # Last write of the batch: the wave's row is locked only until the commit.
        MqlWave.objects.filter(pk=wave.pk).update(
            mqls=F("mqls") + len(handoffs),
            assigned=F("assigned") + len(assignments),
            held=F("held") + len(handoffs) - len(assignments),
        )
    HandoffTimeline.objects.bulk_create(
        timeline_row(handoff=handoff, at=at, event=events.get(handoff.lead_id))
        for handoff in handoffs
    )
    return handoffs


def _route(
    leads: list[Lead], state: BatchState, at: datetime
) -> list[tuple[int | None, routing.Choice]]:
    """Each lead's team and routing choice, in order, as the single path would decide
    them one after the other (the state advanced after each)."""
    decided = []
    for lead in leads:
        team = state.routing_team_for(lead)
        owner = routing._account_owner_membership(lead=lead, routed=team, at=at, state=state)
        team_id = owner[0].team_id if owner else (team.pk if team else None)
        locked = state.teams.get(team_id) if team_id is not None else None
        choice = routing.choose_for_new_mql(team=locked, owner=owner, at=at, state=state)
        if locked is not None and choice.membership is not None:
            state.assigned(locked, choice.membership, at)
            state.moved(lead, choice.membership.rep_id, at)
        else:
            state.moved(lead, lead.owner_id, at)
        decided.append((team_id, choice))
    return decided


# Leads routed at a time by the forecast (each chunk's rows loaded, then let go).
FORECAST_CHUNK = 2000


def wave_forecast(*, lead_ids: Iterable[int], never_held: Iterable[int] = ()) -> list[dict]:
    """What a wave making these leads MQLs would do now, per team (the draft's preview
    and the publish's confirmation, through leadflow.reactions.WAVE_FORECAST): how many
    it would route to the team, the team's free capacity (its reps' room now), how many
    would go to a rep at once and how many would wait in the queue. The routing is the
    bulk move's own (account owners, round robin, capacity, working hours), run in
    memory on the tables as they are, without locks or writes, in lead id order, a chunk
    at a time, until no lead left can get a rep (`_may_hand`: not merely until no rep
    has room, as a rep with room in a team none of them reaches takes none of them):
    from then on every lead waits in the queue of the team the routing rules give it,
    so the rest are counted per company fields in one query (a publish may move 640,000
    leads; routing each one took 140 s and 2 GB here).
    `lead_ids` and `never_held` may be lists or querysets of ids (`pk__in`), so a
    million ids need not come into Python. `never_held`: the hand-raisers, which go one
    by one and never wait for the wave (counted as handed when they find room; queued,
    they wait with their clock running, not held). Rows by team name; None's row is the
    MQLs no rule or default team takes."""
    leads = Lead.objects.filter(pk__in=lead_ids)
    teams = {team.pk: team for team in Team.objects.order_by("pk")}
    state = BatchState(teams, [])
    now = timezone.now()
    # A rep's room counts in each team they are in, as the routing would use it.
    free = {
        team_id: sum(_room(state, membership, now) for membership in members)
        for team_id, members in state.by_team.items()
    }
    rows: dict[int | None, dict] = {}

    def count(team_id: int | None, *, leads: int, handed: int, waiting: int) -> None:
        row = rows.setdefault(
            team_id,
            {
                "team": teams[team_id].name if team_id is not None else "",
                "team_id": team_id,
                "leads": 0,
                "free": free.get(team_id, 0) if team_id is not None else 0,
                "handed": 0,
                "waiting": 0,
            },
        )
        row["leads"] += leads
        row["handed"] += handed
        row["waiting"] += waiting

    last = 0
    reach = _Reach(leads)
    while _may_hand(state, reach, last, now):
        chunk = list(
            leads.filter(pk__gt=last).select_related("company").order_by("pk")[:FORECAST_CHUNK]
        )
        if not chunk:
            break
        raisers = set(
            Lead.objects.filter(pk__in=[lead.pk for lead in chunk])
            .filter(pk__in=never_held)
            .values_list("pk", flat=True)
        )
        state.add_leads(chunk)
        for lead, (team_id, choice) in zip(chunk, _route(chunk, state, now), strict=True):
            handed = choice.membership is not None
            count(team_id, leads=1, handed=handed, waiting=not handed and lead.pk not in raisers)
        last = chunk[-1].pk
    # No lead left can get a rep: no account owner or round robin can take one (both need
    # room), each waits in the team its company's fields route it to (a hand-raiser
    # unheld).
    team_of = selectors.routing_team_by_company()
    rest = (
        leads.filter(pk__gt=last)
        .order_by()
        .values(*selectors.ROUTING_COMPANY_FIELDS)
        .annotate(n=Count("pk"), raisers=Count("pk", filter=Q(pk__in=never_held)))
    )
    for row in rest:
        team = team_of(tuple(row[name] for name in selectors.ROUTING_COMPANY_FIELDS))
        team_id = team.pk if team is not None else None
        count(team_id, leads=row["n"], handed=0, waiting=row["n"] - row["raisers"])
    return sorted(rows.values(), key=lambda row: (row["team_id"] is None, row["team"]))


class _Reach:
    """Which teams the forecast's leads route to, read once and only when needed."""

    def __init__(self, leads: QuerySet[Lead]) -> None:
        self.leads = leads
        self._last_by_team: dict[int | None, int] | None = None

    def last_by_team(self) -> dict[int | None, int]:
        """Per team, the highest id of the leads its routing rules give it: one GROUP BY
        over the company fields, as the counting of the rest."""
        if self._last_by_team is None:
            team_of = selectors.routing_team_by_company()
            found: dict[int | None, int] = {}
            rows = (
                self.leads.order_by()
                .values(*selectors.ROUTING_COMPANY_FIELDS)
                .annotate(last=Max("pk"))
            )
            for row in rows:
                team = team_of(tuple(row[name] for name in selectors.ROUTING_COMPANY_FIELDS))
                team_id = team.pk if team is not None else None
                found[team_id] = max(found.get(team_id, 0), row["last"])
            self._last_by_team = found
        return self._last_by_team


def _may_hand(state: BatchState, reach: _Reach, last: int, at: datetime) -> bool:
    """Whether a lead after id `last` might still get a rep. Only a rep with room can take
    one (routing._with_room, for the round robin and the account owner alike), and room
    only shrinks as the forecast hands leads out. Such a rep takes a lead by the round
    robin of a team of theirs that the lead's company routes to, or as the account
    owner of the lead's company, in a team that puts owners first: they own the company
    or a lead of it in the tables (the forecast's own hand-outs add none beyond these: a
    lead handed by the round robin routes its company's later leads to the same team,
    one handed to the account owner was theirs already). False only when none of that
    holds for any lead left: routing the rest would hand out nothing, and counting them
    gives the same rows. True may still hand out nothing (the rep owns a lead of the
    company, but another holder ranks first): the rest is then routed, exact but slower."""
    roomy = [
        memberships for memberships in state.by_rep.values() if _room(state, memberships[0], at) > 0
    ]
    if not roomy:
        return False
    last_by_team = reach.last_by_team()
    if any(last_by_team.get(m.team_id, 0) > last for memberships in roomy for m in memberships):
        return True
    owners = [
        memberships[0].rep_id
        for memberships in roomy
        if any(m.team.account_owner_first for m in memberships)
    ]
    if not owners:
        return False
    owned = Q(company__owner_id__in=owners) | Q(
        company_id__in=Lead.objects.filter(owner_id__in=owners).values("company_id")
    )
    return reach.leads.filter(owned, pk__gt=last).exists()


def _room(state: BatchState, membership: TeamMembership, at: datetime) -> int:
    """How many more open handoffs the rep may take now (the routing's own test)."""
    return routing.rep_room(membership, state.open[membership.rep_id], at)


def _newest_events(lead_ids: list[int]) -> dict[int, EngagementEvent]:
    """Each lead's newest event (timeline.timeline_event, for many leads): two queries."""
    newest = (
        EngagementEvent.objects.filter(lead_id=OuterRef("pk"))
        .order_by("-created_at", "-id")
        .values("id")[:1]
    )
    event_ids = [
        event_id
        for event_id in Lead.objects.filter(pk__in=lead_ids)
        .annotate(event_id=Subquery(newest))
        .values_list("event_id", flat=True)
        if event_id is not None
    ]
    return {
        event.lead_id: event
        for event in EngagementEvent.objects.filter(pk__in=event_ids).only(
            "lead_id", "occurred_at", "received_at", "created_at"
        )
    }


def _queue_notices(queued: list[tuple[Handoff, int | None]], at: datetime) -> None:
    """The managers hear of each MQL nobody could take (handoff_create_for_mql's notice),
    when there is anybody to tell."""
    if not queued:
        return
    webhook = getattr(settings, "HANDOFF_SLACK_WEBHOOK_URL", "")
    told: dict[int | None, bool] = {}
    notices = []
    for handoff, team_id in queued:
        if team_id not in told:
            told[team_id] = bool(webhook) or selectors.managers_to_notify(team_id=team_id).exists()
        if told[team_id]:
            notices.append(QueueNotice(handoff=handoff, created_at=at))
    QueueNotice.objects.bulk_create(notices)
    from handoff.tasks import notify_queued_task

    for notice in notices:
        enqueue_on_commit(notify_queued_task, notice.pk)
