"""Routing: which rep gets a handoff, and every later change of rep.

A new MQL goes to its account owner when they can take it, else to the next rep of its
team's round robin who is here and has room, else it waits in the team's queue. Locks
in the order of `handoff.locks` (team, then handoff).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple, Protocol

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from handoff import claims, hours, locks, selectors
from handoff.models import (
    AfterHours,
    Assignment,
    AssignmentVia,
    Handoff,
    HandoffStatus,
    QueueNotice,
    RepProfile,
    Team,
    TeamMembership,
)
from handoff.timeline import timeline_event, timeline_mark, timeline_start
from leadflow import reactions
from leadflow.errors import DomainError
from leadflow.models import Lead, StageTransition, User
from leadflow.transactions import enqueue_on_commit

logger = logging.getLogger(__name__)

DEFAULT_CAPACITY = RepProfile._meta.get_field("max_open_handoffs").default


class RoutingState(Protocol):
    """What the routing decision reads, when not the live tables: a routing plan's replay
    (handoff.replay) runs the same decision code against a simulated state. Every
    function below that takes `state=None` reads the database then."""

    hours: hours.WorkingHours

    def members(self, team: Team, exclude: Iterable[int]) -> list[TeamMembership]: ...

    def memberships_of(self, rep_id: int) -> list[TeamMembership]: ...

    def open_counts(self, rep_ids: list[int]) -> dict[int, int]: ...

    def routing_team_for(self, lead: Lead) -> Team | None: ...

    def account_owner_for(self, lead: Lead) -> tuple[int, str] | None: ...


class MembersInMemory:
    """RoutingState's members and loads over rows held in memory, advanced by the holder
    as it assigns: a routing plan's replay, a bulk move's batch (handoff.bulk)."""

    by_team: dict[int, list[TeamMembership]]
    by_rep: dict[int, list[TeamMembership]]
    open: dict[int, int]  # a defaultdict(int): open handoffs per rep

    def members(self, team: Team, exclude: Iterable[int]) -> list[TeamMembership]:
        left_out = set(exclude)
        return [m for m in self.by_team.get(team.pk, []) if m.rep_id not in left_out]

    def memberships_of(self, rep_id: int) -> list[TeamMembership]:
        return list(self.by_rep.get(rep_id, []))

    def open_counts(self, rep_ids: list[int]) -> dict[int, int]:
        return {rep_id: self.open[rep_id] for rep_id in rep_ids}


def _fair_tiebreak(team_id: int, rep_id: int) -> bytes:
    # Among reps never assigned in this team, a stable order that is unrelated to who
    # joined first (primary keys would always favour the oldest members).
    return hashlib.sha256(f"{team_id}:{rep_id}".encode()).digest()


def rep_room(membership: TeamMembership, open_count: int, at: datetime) -> int:
    """How many more open handoffs the membership's rep may take at `at`: none while
    away, else their capacity less the `open_count` they hold. The one test of room: the
    routing's (`_with_room`), the queue's drain and the wave's forecast (handoff.bulk)
    all ask it, so they cannot come to different answers."""
    profile = getattr(membership.rep, "rep_profile", None)
    if profile is not None and profile.is_away(at):
        return 0
    capacity = profile.max_open_handoffs if profile else DEFAULT_CAPACITY
    return max(0, capacity - open_count)


def _open_counts(rep_ids: list[int], state: RoutingState | None) -> dict[int, int]:
    if state is not None:
        return state.open_counts(rep_ids)
    return dict(
        Handoff.objects.filter(status=HandoffStatus.OPEN, assigned_to_id__in=rep_ids)
        .order_by()
        .values("assigned_to_id")
        .annotate(n=Count("id"))
        .values_list("assigned_to_id", "n")
    )


def _with_room(
    members: list[TeamMembership], at: datetime, state: RoutingState | None = None
) -> list[TeamMembership]:
    """The members who are here and below their capacity of open handoffs."""
    if not members:
        return []
    open_counts = _open_counts([m.rep_id for m in members], state)
    return [m for m in members if rep_room(m, open_counts.get(m.rep_id, 0), at) > 0]


def _team_room(team: Team, at: datetime) -> int:
    """How many more open handoffs the team's reps may take at `at`, together: at most
    this many of its queued handoffs can get a rep now."""
    members = _members(team)
    if not members:
        return 0
    open_counts = _open_counts([m.rep_id for m in members], None)
    return sum(rep_room(m, open_counts.get(m.rep_id, 0), at) for m in members)


def _members(
    team: Team, *, exclude: Iterable[int] = (), state: RoutingState | None = None
) -> list[TeamMembership]:
    if state is not None:
        return state.members(team, exclude)
    return list(
        TeamMembership.objects.filter(team=team, is_active=True, rep__is_active=True)
        .exclude(rep_id__in=list(exclude))
        .select_related("rep__rep_profile")
        .order_by()
    )


def _pick_rep(
    *,
    team: Team,
    at: datetime,
    exclude_rep_id: int | None = None,
    exclude_rep_ids: Iterable[int] = (),
    state: RoutingState | None = None,
) -> TeamMembership | None:
    """The next rep in the team's round robin who is here, has room and works now (or
    starts first, at night). Caller holds the team's row lock."""
    members = _members(team, exclude=[exclude_rep_id or 0, *exclude_rep_ids], state=state)
    # Working hours (#19): who works now, else who starts first (handoff.hours).
    available = hours.working_or_first(
        team=team,
        members=_with_room(members, at, state),
        at=at,
        hours=state.hours if state is not None else None,
    )
    if not available:
        return None
    return min(
        available,
        key=lambda m: (m.last_assignment_seq, _fair_tiebreak(team.pk, m.rep_id)),
    )


def _assign(
    *,
    handoff: Handoff,
    team: Team,
    membership: TeamMembership,
    via: str,
    by: User | None = None,
    reason: str = "",
    at: datetime,
    mark_timeline: bool = True,
) -> Assignment:
    """Give the handoff to the membership's rep. Caller holds the team and handoff locks.

    `mark_timeline=False` for a handoff being created: its timeline row is written after
    the routing, with the assignment in it (one INSERT, no UPDATE)."""
    team.assignment_counter += 1
    team.save(update_fields=["assignment_counter"])
    membership.last_assignment_seq = team.assignment_counter
    membership.last_assigned_at = at
    membership.save(update_fields=["last_assignment_seq", "last_assigned_at"])

    previous_rep_id = handoff.assigned_to_id
    handoff.team = team
    handoff.assigned_to = membership.rep
    handoff.assigned_at = at
    handoff.save(update_fields=["team", "assigned_to", "assigned_at"])
    # The rep who holds the handoff owns the lead: the lead API, the SFA push and the
    # reports all read Lead.owner.
    Lead.objects.filter(pk=handoff.lead_id).update(owner=membership.rep, updated_at=at)
    assignment = Assignment.objects.create(
        handoff=handoff,
        rep=membership.rep,
        previous_rep_id=previous_rep_id,
        via=via,
        by=by,
        reason=reason,
        assigned_at=at,
    )
    if mark_timeline:
        timeline_mark(handoff_id=handoff.pk, instant="assigned_at", at=at)
    reactions.run(reactions.HANDOFF_ASSIGNED, handoff=handoff, assignment=assignment, at=at)
    from handoff.tasks import notify_assignment_task

    enqueue_on_commit(notify_assignment_task, assignment.pk)
    return assignment


def _account_owner_membership(
    *, lead: Lead, routed: Team | None, at: datetime, state: RoutingState | None = None
) -> tuple[TeamMembership, str] | None:
    """The membership of the rep who owns the lead's account, and why (for the assignment
    history), when the routed team puts the account owner first and that rep can take an
    MQL now. Their membership in the routed team first, else in another team of theirs.
    Read without locks: the caller locks the team and looks at the room again."""
    if routed is not None and not routed.account_owner_first:
        return None
    found = (
        state.account_owner_for(lead)
        if state is not None
        else selectors.account_owner_for(lead=lead)
    )
    if found is None:
        return None
    rep_id, how = found
    routed_id = routed.pk if routed else None
    owner_memberships = (
        state.memberships_of(rep_id)
        if state is not None
        else TeamMembership.objects.filter(
            rep_id=rep_id, is_active=True, rep__is_active=True
        ).select_related("rep__rep_profile", "team")
    )
    # The routed team first; another team of the owner's only if it puts owners first too.
    memberships = sorted(
        (m for m in owner_memberships if m.team_id == routed_id or m.team.account_owner_first),
        key=lambda m: (m.team_id != routed_id, m.pk or 0),
    )
    # Working hours (#19): an owner who is off while colleagues work gives way.
    available = [
        m
        for m in _with_room(memberships, at, state)
        if hours.owner_may_take(
            membership=m,
            at=at,
            hours=state.hours if state is not None else None,
            team_rep_ids=(
                [t.rep_id for t in state.members(m.team, ())] if state is not None else None
            ),
        )
    ]
    if not available:
        return None  # away, off, at capacity or in no team: the normal rules decide
    with translation.override(settings.LANGUAGE_CODE):
        reason = str(selectors.ACCOUNT_OWNER_REASONS[how])
    return available[0], reason


class Choice(NamedTuple):
    membership: TeamMembership | None  # None: it waits in the team's queue
    via: str
    reason: str
    waits_for_opening: bool  # queued only until a rep starts: nobody is alarmed


def choose_for_new_mql(
    *,
    team: Team | None,
    owner: tuple[TeamMembership, str] | None,
    at: datetime,
    state: RoutingState | None = None,
) -> Choice:
    """Who gets a new MQL of `team` (the owner's team when `owner` was found): the account
    owner if they still have room, else the round robin. Caller holds the team's lock."""
    if team is None:
        return Choice(None, AssignmentVia.ROUTING, "", False)
    if owner is not None and _with_room([owner[0]], at, state):
        # Looked at again under the lock: another MQL may have filled their room.
        return Choice(owner[0], AssignmentVia.ACCOUNT_OWNER, owner[1], False)
    membership = _pick_rep(team=team, at=at, state=state)
    if membership is not None:
        return Choice(membership, AssignmentVia.ROUTING, "", False)
    # Working hours (#19): reps with room, all off now, and the team keeps such MQLs until
    # someone starts: the queue drain hands it out then.
    waits = team.after_hours == AfterHours.WAIT_FOR_OPENING and bool(
        _with_room(_members(team, state=state), at, state)
    )
    return Choice(None, AssignmentVia.ROUTING, "", waits)


def handoff_create_for_mql(*, lead: Lead, transition: StageTransition) -> Handoff:
    """Create the handoff of a lead that just became an MQL and route it.

    Runs inside `lead_transition`'s transaction (STAGE_CHANGED[MQL] in leadflow.reactions), so
    the MQL and its handoff commit together. Idempotent per MQL transition.
    """
    at = transition.occurred_at
    # No savepoint of its own: it only groups the writes; an error goes up to the caller.
    with transaction.atomic(savepoint=False):
        # One query for both: this transition's handoff (a second call) or the lead's
        # open one.
        found = list(
            Handoff.objects.filter(
                Q(mql_transition=transition) | Q(lead=lead, status=HandoffStatus.OPEN)
            ).order_by("pk")
        )
        for existing in found:
            if existing.mql_transition_id == transition.pk:
                return existing
        if found:
            still_open = found[0]
            # Cannot happen through the lifecycle (a lead leaves MQL before it re-enters),
            # but if it does, one open handoff per lead is the rule the inbox relies on.
            logger.warning("Lead %s became MQL with handoff %s still open", lead.pk, still_open.pk)
            return still_open
        routed = selectors.routing_team_for(lead=lead)
        owner = _account_owner_membership(lead=lead, routed=routed, at=at)
        # One team lock only: the owner's team when the owner can take it, else the
        # routed one (two team locks taken in either order could deadlock).
        team_id = owner[0].team_id if owner else (routed.pk if routed else None)
        # The team's lock is held from here to the commit, and every MQL of the team waits
        # for it: what needs no lock comes first. The new handoff, its SLA timers, KPI day
        # mark and fit snapshot (HANDOFF_CREATED) and the timeline's event are rows nobody
        # else can see or wait for yet; the team is only referred to (the foreign key's KEY
        # SHARE does not conflict with the lock's NO KEY UPDATE). Under the lock they made
        # a quarter of the locked time, and a team's MQLs per second are one over it.
        handoff = Handoff.objects.create(
            lead=lead, mql_transition=transition, team_id=team_id, created_at=at
        )
        reactions.run(reactions.HANDOFF_CREATED, handoff=handoff, at=at)
        event = timeline_event(handoff=handoff)
        team = locks.team(team_id) if team_id else None
        if team is not None:
            handoff.team = team  # the locked row, for the assignment below
        choice = choose_for_new_mql(team=team, owner=owner, at=at)
        if team is not None and choice.membership is not None:
            _assign(
                handoff=handoff,
                team=team,
                membership=choice.membership,
                via=choice.via,
                reason=choice.reason,
                at=at,
                mark_timeline=False,
            )
        elif not choice.waits_for_opening:
            queue_notice(handoff=handoff, team=team, at=at)
        timeline_start(handoff=handoff, at=at, event=event)
    return handoff


def queue_notice(*, handoff: Handoff, team: Team | None, at: datetime) -> QueueNotice | None:
    """Nobody could take the MQL: it waits in the queue, and the managers must hear of it
    (a queued MQL is the one nobody's clock reminds anybody of). With nobody to tell (no
    manager, no webhook) there is no notice and no task. In the routing's transaction."""
    webhook = getattr(settings, "HANDOFF_SLACK_WEBHOOK_URL", "")
    if not webhook and not selectors.managers_to_notify(team_id=team.pk if team else None).exists():
        return None
    notice = QueueNotice.objects.create(handoff=handoff, created_at=at)
    from handoff.tasks import notify_queued_task

    enqueue_on_commit(notify_queued_task, notice.pk)
    return notice


def handoff_assign_from_queue(*, team: Team, actor: User | None = None) -> list[Handoff]:
    """Hand the team's queued handoffs, most urgent first (`locks.team_queue`: running
    SLA clocks by deadline, then the held wave MQLs oldest first), to reps who now have
    room.

    Called when a rep frees up or comes back (tasks after a verdict, the periodic sweep,
    the admin action, the manager's button). Returns the handoffs that got a rep.
    """
    at = timezone.now()
    assigned: list[Handoff] = []
    with transaction.atomic(durable=True):
        locked_team, queued = locks.team_queue(team.pk)
        # Only as many rows as the reps have room for are read and locked: after a wave the
        # queue may hold tens of thousands, and each call hands out a few. Counted under
        # the team's lock, which every routing to this team waits for.
        room = _team_room(locked_team, at)
        if room == 0:
            return []
        # Claim or pass on (#19): out of passes, it waits for a manager, not the drain.
        for handoff in list(claims.exclude_held(queued)[:room]):
            membership = _pick_rep(team=locked_team, at=at)
            if membership is None:
                break
            _assign(
                handoff=handoff,
                team=locked_team,
                membership=membership,
                via=AssignmentVia.QUEUE,
                by=actor,
                at=at,
            )
            assigned.append(handoff)
    return assigned


def handoff_reassign(*, handoff: Handoff, to_rep: User, actor: User, reason: str = "") -> Handoff:
    """A manager gives the handoff to `to_rep` by hand (also how a queued one is assigned).

    The manager's choice wins over away and capacity: they know what the round robin
    does not. Taking a handoff away from a rep needs a reason, kept in the assignment log.
    """
    reason = (reason or "").strip()
    at = timezone.now()
    with transaction.atomic(durable=True):
        team_id = locks.team_of(handoff.pk)
        _team, locked = locks.team_then_handoff(handoff.pk, team_id, with_team=True)
        if locked.team_id != team_id:
            raise DomainError(_("The handoff moved to another team meanwhile; reload and retry."))
        if locked.status != HandoffStatus.OPEN:
            raise DomainError(
                _("This handoff is already decided (%(status)s); it cannot be reassigned.")
                % {"status": locked.get_status_display()},
                code="handoff_closed",
            )
        if locked.assigned_to_id == to_rep.pk:
            raise DomainError(
                _("%(rep)s already has this handoff.") % {"rep": to_rep},
                code="same_rep",
                fields={"rep": [_("Choose another rep.")]},
            )
        if not to_rep.is_active:
            raise DomainError(
                _("%(rep)s is not an active user.") % {"rep": to_rep},
                code="inactive_rep",
                fields={"rep": [_("Choose an active rep.")]},
            )
        memberships = TeamMembership.objects.filter(rep=to_rep).select_related("team")
        if team_id is not None:
            memberships = memberships.filter(team_id=team_id)
        membership = memberships.order_by("team__name").first()
        if membership is None:
            message = (
                _("%(rep)s is not a member of team %(team)s.")
                % {"rep": to_rep, "team": locked.team}
                if team_id is not None
                else _("%(rep)s is not a member of any team.") % {"rep": to_rep}
            )
            raise DomainError(message, code="not_a_member", fields={"rep": [message]})
        if locked.assigned_to_id is not None and not reason:
            message = _("Say why the handoff moves to another rep.")
            raise DomainError(message, code="reason_required", fields={"reason": [message]})
        # The same team again when the handoff has one; else the rep's (nothing to order
        # against: no other transaction locks a handoff without a team after a team).
        team = locks.team(membership.team_id)
        _assign(
            handoff=locked,
            team=team,
            membership=membership,
            via=AssignmentVia.MANUAL,
            by=actor,
            reason=reason,
            at=at,
        )
    return locked


def handoff_reroute(*, handoff: Handoff, reason: str) -> Handoff | None:
    """Give an open handoff to the next rep of its team's round robin, not the one who has
    it (used when an SLA escalation takes a lead away from a rep who let it wait).

    Returns the handoff with its new rep, or None when nobody else in the team can take it
    now (away, at capacity, no other member): then it stays where it is, and a person
    decides. Recorded as a routing assignment with `reason`, by nobody.
    """
    return _reroute(handoff=handoff, reason=reason, via=AssignmentVia.ROUTING, by=None)


def _reroute(*, handoff: Handoff, reason: str, via: str, by: User | None) -> Handoff | None:
    at = timezone.now()
    with transaction.atomic(durable=True):
        team_id = locks.team_of(handoff.pk)
        if team_id is None:
            return None
        team, locked = locks.team_then_handoff(handoff.pk, team_id)
        assert team is not None
        if locked.status != HandoffStatus.OPEN or locked.team_id != team_id:
            return None
        membership = _pick_rep(team=team, at=at, exclude_rep_id=locked.assigned_to_id)
        if membership is None:
            return None
        _assign(
            handoff=locked,
            team=team,
            membership=membership,
            via=via,
            by=by,
            reason=reason,
            at=at,
        )
    return locked


class BulkReassignResult(NamedTuple):
    moved: list[Handoff]  # with their new rep
    refused: dict[int, str]  # handoff id → why it stayed where it was


def handoff_bulk_reassign(
    *, handoffs: list[Handoff], to_rep: User | None, actor: User, reason: str
) -> BulkReassignResult:
    """A manager moves several handoffs at once: to `to_rep`, or (None) each to the next
    rep of its team's round robin. Every move writes its own assignment row with `reason`.

    One transaction per handoff, not one for all: a handoff decided or moved meanwhile is
    refused on its own without undoing the others, and each move holds its team's lock
    only for itself (lead routing queues behind that lock; a batch of 50 under one lock
    would stall new MQLs for the whole batch). Locks in the routing order, team then
    handoff, as handoff_reassign takes them.
    """
    reason = (reason or "").strip()
    if not reason:
        message = _("Say why the handoffs move.")
        raise DomainError(message, code="reason_required", fields={"reason": [message]})
    moved: list[Handoff] = []
    refused: dict[int, str] = {}
    for handoff in sorted(handoffs, key=lambda h: h.pk):
        if to_rep is not None:
            try:
                moved.append(
                    handoff_reassign(handoff=handoff, to_rep=to_rep, actor=actor, reason=reason)
                )
            except DomainError as error:
                refused[handoff.pk] = error.message
            continue
        result = _reroute(handoff=handoff, reason=reason, via=AssignmentVia.MANUAL, by=actor)
        if result is None:
            refused[handoff.pk] = _(
                "Nobody else in the team can take it now (away, at capacity, or no team)."
            )
        else:
            moved.append(result)
    return BulkReassignResult(moved=moved, refused=refused)
