"""Every change to a handoff: creation and routing, assignment, activities, the verdict.

Lock order, everywhere: lead (taken by `lead_transition`) → team → handoff. Routing reads
and writes a team's round-robin position only while holding that team's row lock, so two
MQLs routed at the same moment queue up on the lock and cannot both pick the same rep.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Count, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from handoff import claims, hours, selectors, signals
from handoff.models import (
    BANT_KEYS,
    Activity,
    ActivityKind,
    ActivityOutcome,
    AfterHours,
    Assignment,
    AssignmentVia,
    Handoff,
    HandoffStatus,
    QueueNotice,
    RejectionReason,
    RepProfile,
    Team,
    TeamMembership,
)
from handoff.timeline import timeline_mark, timeline_set_first_contact, timeline_start
from leadflow.errors import DomainError, InvalidTransition
from leadflow.lifecycle import lead_transition
from leadflow.models import Lead, Stage, StageTransition, User
from leadflow.notify import post_webhook, public_url, send_once
from leadflow.privacy import ERASED

logger = logging.getLogger(__name__)

DEFAULT_CAPACITY = RepProfile._meta.get_field("max_open_handoffs").default
AWAY_UNTIL_BEFORE_YEAR = 2100
SYSTEM_ACTOR = "handoff"


def _enqueue_on_commit(task, *args: Any) -> None:
    # Never talk to the broker (or anything else on the network) inside a transaction: a
    # rollback would leave a task pointing at rows that do not exist.
    transaction.on_commit(lambda: task.delay(*args))


# --- routing ---------------------------------------------------------------------------


def _fair_tiebreak(team_id: int, rep_id: int) -> bytes:
    # Among reps never assigned in this team, a stable order that is unrelated to who
    # joined first (primary keys would always favour the oldest members).
    return hashlib.sha256(f"{team_id}:{rep_id}".encode()).digest()


def _with_room(members: list[TeamMembership], at: datetime) -> list[TeamMembership]:
    """The members who are here and below their capacity of open handoffs."""
    if not members:
        return []
    open_counts = dict(
        Handoff.objects.filter(
            status=HandoffStatus.OPEN, assigned_to_id__in=[m.rep_id for m in members]
        )
        .order_by()
        .values("assigned_to_id")
        .annotate(n=Count("id"))
        .values_list("assigned_to_id", "n")
    )
    available = []
    for membership in members:
        profile = getattr(membership.rep, "rep_profile", None)
        capacity = profile.max_open_handoffs if profile else DEFAULT_CAPACITY
        if profile is not None and profile.is_away(at):
            continue
        if open_counts.get(membership.rep_id, 0) >= capacity:
            continue
        available.append(membership)
    return available


def _members(team: Team, *, exclude: Iterable[int] = ()) -> list[TeamMembership]:
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
) -> TeamMembership | None:
    """The next rep in the team's round robin who is here, has room and works now (or
    starts first, at night). Caller holds the team's row lock."""
    members = _members(team, exclude=[exclude_rep_id or 0, *exclude_rep_ids])
    # Working hours (#19): who works now, else who starts first (handoff.hours).
    available = hours.working_or_first(team=team, members=_with_room(members, at), at=at)
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
    # Claim or pass on (#19): the new rep's claim window (handoff.claims).
    claims.claim_window_open(assignment=assignment, team=team, at=at)
    signals.handoff_assigned.send(
        sender=Handoff,
        handoff=handoff,
        assignment=assignment,
        previous_rep_id=previous_rep_id,
        at=at,
    )
    from handoff.tasks import notify_assignment_task

    _enqueue_on_commit(notify_assignment_task, assignment.pk)
    return assignment


def _account_owner_membership(
    *, lead: Lead, routed: Team | None, at: datetime
) -> tuple[TeamMembership, str] | None:
    """The membership of the rep who owns the lead's account, and why (for the assignment
    history), when the routed team puts the account owner first and that rep can take an
    MQL now. Their membership in the routed team first, else in another team of theirs.
    Read without locks: the caller locks the team and looks at the room again."""
    if routed is not None and not routed.account_owner_first:
        return None
    found = selectors.account_owner_for(lead=lead)
    if found is None:
        return None
    rep_id, how = found
    routed_id = routed.pk if routed else None
    # The routed team first; another team of the owner's only if it puts owners first too.
    memberships = sorted(
        (
            m
            for m in TeamMembership.objects.filter(
                rep_id=rep_id, is_active=True, rep__is_active=True
            ).select_related("rep__rep_profile", "team")
            if m.team_id == routed_id or m.team.account_owner_first
        ),
        key=lambda m: (m.team_id != routed_id, m.pk),
    )
    # Working hours (#19): an owner who is off while colleagues work gives way.
    available = [
        m for m in _with_room(memberships, at) if hours.owner_may_take(membership=m, at=at)
    ]
    if not available:
        return None  # away, off, at capacity or in no team: the normal rules decide
    with translation.override(settings.LANGUAGE_CODE):
        reason = str(selectors.ACCOUNT_OWNER_REASONS[how])
    return available[0], reason


def handoff_create_for_mql(*, lead: Lead, transition: StageTransition) -> Handoff:
    """Create the handoff of a lead that just became an MQL and route it.

    Runs inside `lead_transition`'s transaction (via the lead_stage_changed receiver), so
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
        team = Team.objects.select_for_update(no_key=True).get(pk=team_id) if team_id else None
        handoff = Handoff.objects.create(
            lead=lead, mql_transition=transition, team=team, created_at=at
        )
        signals.handoff_created.send(sender=Handoff, handoff=handoff, at=at)
        via, reason, membership = AssignmentVia.ROUTING, "", None
        if team is not None and owner is not None and _with_room([owner[0]], at):
            # Looked at again under the lock: another MQL may have filled their room.
            via, reason, membership = AssignmentVia.ACCOUNT_OWNER, owner[1], owner[0]
        elif team is not None:
            membership = _pick_rep(team=team, at=at)
        if team is not None and membership is not None:
            _assign(
                handoff=handoff,
                team=team,
                membership=membership,
                via=via,
                reason=reason,
                at=at,
                mark_timeline=False,
            )
        elif (
            team is not None
            and team.after_hours == AfterHours.WAIT_FOR_OPENING
            and _with_room(_members(team), at)
        ):
            # Working hours (#19): reps with room, all off now, and the team keeps such MQLs
            # until someone starts: the queue drain hands it out then, nobody is alarmed.
            pass
        else:
            # Nobody could take it: it waits in the queue, and the managers must hear of
            # it (a queued MQL is the one nobody's clock reminds anybody of). With nobody
            # to tell (no manager, no webhook) there is no notice and no task.
            webhook = getattr(settings, "HANDOFF_SLACK_WEBHOOK_URL", "")
            if webhook or selectors.managers_to_notify(team_id=team.pk if team else None).exists():
                notice = QueueNotice.objects.create(handoff=handoff, created_at=at)
                from handoff.tasks import notify_queued_task

                _enqueue_on_commit(notify_queued_task, notice.pk)
        timeline_start(handoff=handoff, at=at)
    return handoff


def handoff_assign_from_queue(*, team: Team, actor: User | None = None) -> list[Handoff]:
    """Hand the team's queued handoffs, oldest first, to reps who now have room.

    Called when a rep frees up or comes back (tasks after a verdict, the periodic sweep,
    the admin action, the manager's button). Returns the handoffs that got a rep.
    """
    at = timezone.now()
    assigned: list[Handoff] = []
    with transaction.atomic():
        locked_team = Team.objects.select_for_update(no_key=True).get(pk=team.pk)
        queued = (
            Handoff.objects.select_for_update()
            .filter(team=locked_team, status=HandoffStatus.OPEN, assigned_to__isnull=True)
            .order_by("created_at", "id")
        )
        # Claim or pass on (#19): out of passes, it waits for a manager, not the drain.
        queued = claims.exclude_held(queued)
        for handoff in queued:
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
    with transaction.atomic():
        team_id = Handoff.objects.values_list("team_id", flat=True).get(pk=handoff.pk)
        if team_id is not None:
            Team.objects.select_for_update(no_key=True).get(pk=team_id)
        locked = (
            Handoff.objects.select_for_update(of=("self",))
            .select_related("team")
            .get(pk=handoff.pk)
        )
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
        team = Team.objects.select_for_update(no_key=True).get(pk=membership.team_id)
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
    with transaction.atomic():
        team_id = Handoff.objects.values_list("team_id", flat=True).get(pk=handoff.pk)
        if team_id is None:
            return None
        team = Team.objects.select_for_update(no_key=True).get(pk=team_id)
        locked = Handoff.objects.select_for_update(of=("self",)).get(pk=handoff.pk)
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


# --- a rep's availability ----------------------------------------------------------------


class Comeback(NamedTuple):
    profile: RepProfile
    assigned: list[Handoff]  # queued handoffs that went to this rep on their return


def _check_availability_change(*, rep: User, actor: User) -> None:
    # The rep sets their own; a superuser or a manager of one of the rep's teams may too
    # (the admin is theirs already). Nobody sets a colleague's.
    allowed = (
        actor.pk == rep.pk
        or actor.is_superuser
        or Team.objects.filter(managers=actor, memberships__rep=rep).exists()
    )
    if not allowed:
        raise DomainError(
            _("You can only change your own availability."), code="not_your_availability"
        )
    if not TeamMembership.objects.filter(rep=rep).exists():
        raise DomainError(
            _("%(rep)s is not a rep in any team, so there is no availability to set.")
            % {"rep": rep},
            code="not_a_rep",
        )


def rep_set_away(*, rep: User, actor: User, until: datetime | None = None) -> RepProfile:
    """The rep gets no new handoffs from now on: until `until` (back by the clock then), or
    until they say they are back. The handoffs they hold stay theirs."""
    if until is not None:
        message = None
        if until.tzinfo is None:
            message = _("The time has no time zone.")
        # The year first: comparing 0001-01-01T00:00+09:00 with now overflows (a 500), and
        # 9999-12-31T23:59-09:00 was stored as year 10000 UTC, which no read of the
        # profile could turn back into a datetime: every page of that rep was a 500.
        elif until.year < timezone.now().year or until <= timezone.now():
            message = _("“Away until” must be in the future.")
        elif until.year >= AWAY_UNTIL_BEFORE_YEAR:
            message = _("“Away until” must be before %(year)d.") % {"year": AWAY_UNTIL_BEFORE_YEAR}
        if message is not None:
            raise DomainError(message, code="invalid_away_until", fields={"away_until": [message]})
    _check_availability_change(rep=rep, actor=actor)
    profile, _created = RepProfile.objects.update_or_create(
        user=rep, defaults={"away": True, "away_until": until}
    )
    logger.info("Rep %s away until %s (set by %s)", rep.pk, until, actor.pk)
    return profile


def rep_set_back(*, rep: User, actor: User) -> Comeback:
    """The rep takes new handoffs again, and their teams' queues are drained at once (the
    returning rep is usually the one with room), not at the next periodic sweep."""
    _check_availability_change(rep=rep, actor=actor)
    profile, _created = RepProfile.objects.update_or_create(
        user=rep, defaults={"away": False, "away_until": None}
    )
    logger.info("Rep %s back (set by %s)", rep.pk, actor.pk)
    # After the profile's commit, one team at a time: each drain takes its team's lock in
    # its own transaction (the routing lock order), and a failed drain leaves the rep back
    # all the same; the periodic assign_all_queues_task drains what is left.
    team_ids = (
        TeamMembership.objects.filter(rep=rep, is_active=True)
        .order_by("team_id")
        .values_list("team_id", flat=True)
    )
    assigned: list[Handoff] = []
    for team in Team.objects.filter(pk__in=list(team_ids)).order_by("pk"):
        assigned += [
            handoff
            for handoff in handoff_assign_from_queue(team=team)
            if handoff.assigned_to_id == rep.pk
        ]
    return Comeback(profile=profile, assigned=assigned)


# --- work on a handoff -----------------------------------------------------------------


def activity_log(
    *,
    handoff: Handoff,
    actor: User,
    kind: str,
    outcome: str,
    note: str = "",
    at: datetime | None = None,
) -> Activity:
    """Record a call, e-mail, meeting or other touch. The earliest one is the first contact."""
    now = timezone.now()
    when = at or now
    errors: dict[str, list[str]] = {}
    if kind not in ActivityKind.values:
        errors["kind"] = [_("Choose call, e-mail, meeting or other.")]
    if outcome not in ActivityOutcome.values:
        errors["outcome"] = [_("Choose the outcome.")]
    if when.tzinfo is None:
        errors["at"] = [_("The time has no time zone.")]
    elif when > now + timedelta(minutes=1):
        errors["at"] = [_("An activity cannot be in the future.")]
    if errors:
        first = next(iter(errors.values()))[0]
        raise DomainError(first, code="invalid_activity", fields=errors)

    with transaction.atomic():
        locked = Handoff.objects.select_for_update().get(pk=handoff.pk)
        if locked.status == HandoffStatus.REJECTED:
            raise DomainError(
                _("This handoff was rejected; log further contact in marketing's tools."),
                code="handoff_closed",
            )
        if locked.assigned_to_id is None:
            raise DomainError(
                _("This handoff waits in the team queue; assign it to a rep first."),
                code="handoff_queued",
            )
        activity = Activity.objects.create(
            handoff=locked, kind=kind, outcome=outcome, note=(note or "").strip(), by=actor, at=when
        )
        if locked.first_contact_at is None or when < locked.first_contact_at:
            locked.first_contact_at = when
            locked.save(update_fields=["first_contact_at"])
            timeline_set_first_contact(handoff_id=locked.pk, at=when)
        signals.activity_logged.send(sender=Handoff, handoff=locked, activity=activity)
        # Claim or pass on (#19): any activity of the holder's claims the handoff.
        claims.claim_on_activity(handoff=locked, actor=actor, at=now)
    handoff.first_contact_at = locked.first_contact_at
    return activity


def _clean_bant(bant: Mapping[str, Any]) -> dict[str, bool]:
    unknown = sorted(set(bant) - set(BANT_KEYS))
    if unknown:
        raise DomainError(
            ngettext(
                "Unknown BANT item: %(items)s.", "Unknown BANT items: %(items)s.", len(unknown)
            )
            % {"items": ", ".join(unknown)},
            code="invalid_bant",
            fields={"bant": [_("Use budget, authority, need and timeline.")]},
        )
    return {key: bool(bant.get(key, False)) for key in BANT_KEYS}


def _lock_open(handoff: Handoff) -> Handoff:
    locked = (
        Handoff.objects.select_for_update(of=("self",)).select_related("lead").get(pk=handoff.pk)
    )
    if locked.status != HandoffStatus.OPEN:
        raise DomainError(
            _("This handoff is already decided (%(status)s).")
            % {"status": locked.get_status_display()},
            code="handoff_closed",
        )
    # A queued handoff may be decided too (by its team's manager, e.g. obvious bad data).
    return locked


def _after_verdict(locked: Handoff) -> None:
    assert locked.decided_at is not None
    timeline_mark(handoff_id=locked.pk, instant="decided_at", at=locked.decided_at)
    # A verdict frees a slot of the rep's capacity: let the team's queue move.
    if locked.team_id is not None:
        from handoff.tasks import assign_from_queue_task

        _enqueue_on_commit(assign_from_queue_task, locked.team_id)


def _copy_back(handoff: Handoff, locked: Handoff) -> Handoff:
    for name in (
        "status",
        "decided_at",
        "decided_by_id",
        "rejection_reason_id",
        "rejection_comment",
        *(f"bant_{key}" for key in BANT_KEYS),
    ):
        setattr(handoff, name, getattr(locked, name))
    return locked


def handoff_accept(
    *, handoff: Handoff, actor: User, bant: Mapping[str, Any], at: datetime | None = None
) -> Handoff:
    """Sales takes the lead: it becomes an SQL if enough BANT answers are yes.

    `at` records a verdict given earlier (imports, the demo); default now."""
    answers = _clean_bant(bant)
    needed = selectors.handoff_policy_get().bant_min_yes
    with transaction.atomic():
        locked = _lock_open(handoff)
        yes = sum(answers.values())
        if yes < needed:
            message = _(
                "To accept as SQL, at least %(needed)d of budget, authority, need and timeline "
                "must be yes (%(yes)d checked)."
            ) % {"needed": needed, "yes": yes}
            raise DomainError(message, code="bant_too_few", fields={"bant": [message]})
        transition = lead_transition(
            lead=locked.lead,
            to_stage=Stage.SQL,
            actor=actor,
            reason=_("Accepted by sales (BANT %(yes)d/4).") % {"yes": yes},
            context={"handoff_id": locked.pk, "bant": answers},
            expected_from=Stage.MQL,
            at=at,
        )
        for key, value in answers.items():
            setattr(locked, f"bant_{key}", value)
        locked.status = HandoffStatus.ACCEPTED
        locked.decided_at = transition.occurred_at
        locked.decided_by = actor
        locked.save(
            update_fields=[
                "status",
                "decided_at",
                "decided_by",
                *(f"bant_{key}" for key in BANT_KEYS),
            ]
        )
        signals.handoff_decided.send(sender=Handoff, handoff=locked, at=locked.decided_at)
        _after_verdict(locked)
    return _copy_back(handoff, locked)


def handoff_reject(
    *,
    handoff: Handoff,
    actor: User,
    reason: RejectionReason | str | None,
    comment: str,
    at: datetime | None = None,
) -> Handoff:
    """Sales does not take the lead: it goes back to marketing (recycled) with the reason.

    `reason` is a row, or its code as an API client sends it: which codes exist is the
    database's to say, so an unknown one is refused here with the other missing parts
    (a 422 in the API), not as malformed input.

    The reason code and the comment are stored on the handoff and in the transition's
    reason/context, which is what marketing's reports and the outbox read.
    """
    comment = (comment or "").strip()
    errors: dict[str, list[str]] = {}
    if isinstance(reason, str):
        code = reason
        reason = RejectionReason.objects.filter(code=code).first() if code else None
        if reason is None and code:
            errors["reason"] = [
                _("There is no reason “%(code)s”; choose one of the offered reasons.")
                % {"code": code[:50]}
            ]
    if reason is None:
        errors.setdefault("reason", [_("Choose a reason.")])
    elif not reason.is_active:
        errors["reason"] = [_("This reason is no longer offered; choose another.")]
    if not comment:
        errors["comment"] = [_("Write a comment for marketing.")]
    if errors:
        raise DomainError(
            _("A rejection needs a reason and a comment, so marketing knows what to do next."),
            code="rejection_incomplete",
            fields=errors,
        )
    assert reason is not None
    with transaction.atomic():
        locked = _lock_open(handoff)
        signals.handoff_rejecting.send(sender=Handoff, handoff=locked, reason=reason)
        transition = lead_transition(
            lead=locked.lead,
            to_stage=Stage.RECYCLED,
            actor=actor,
            reason=f"{reason.label_en}: {comment}",
            context={
                "handoff_id": locked.pk,
                "rejection_reason": reason.code,
                "rejection_comment": comment,
            },
            expected_from=Stage.MQL,
            at=at,
        )
        locked.status = HandoffStatus.REJECTED
        locked.decided_at = transition.occurred_at
        locked.decided_by = actor
        locked.rejection_reason = reason
        locked.rejection_comment = comment
        locked.save(
            update_fields=[
                "status",
                "decided_at",
                "decided_by",
                "rejection_reason",
                "rejection_comment",
            ]
        )
        signals.handoff_decided.send(sender=Handoff, handoff=locked, at=locked.decided_at)
        _after_verdict(locked)
    return _copy_back(handoff, locked)


# --- after SQL -------------------------------------------------------------------------


def _move_after_sql(
    *,
    lead: Lead,
    to_stage: str,
    allowed_from: tuple[str, ...],
    actor: User | str,
    reason: str,
    context: dict[str, Any] | None,
    refusal: str,
    at: datetime | None = None,
) -> StageTransition:
    current = Lead.objects.values_list("stage", flat=True).get(pk=lead.pk)
    if current not in allowed_from:
        raise InvalidTransition(refusal % {"stage": Stage(current).label})
    handoff_id = (
        Handoff.objects.filter(lead_id=lead.pk, status=HandoffStatus.ACCEPTED)
        .order_by("-decided_at", "-id")
        .values_list("pk", flat=True)
        .first()
    )
    full_context = {"handoff_id": handoff_id, **(context or {})}
    # expected_from: if someone moved the lead since we read it, refuse instead of guessing.
    return lead_transition(
        lead=lead,
        to_stage=to_stage,
        actor=actor,
        reason=reason,
        context=full_context,
        expected_from=current,
        at=at,
    )


def lead_mark_opportunity(
    *,
    lead: Lead,
    actor: User | str,
    reason: str = "",
    context: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> StageTransition:
    """An SQL became a deal in the pipeline (by the rep, or SFA feedback as actor "sfa:x")."""
    return _move_after_sql(
        lead=lead,
        to_stage=Stage.OPPORTUNITY,
        allowed_from=(Stage.SQL,),
        actor=actor,
        reason=reason,
        context=context,
        refusal=_("Only an SQL can become an opportunity; this lead is %(stage)s."),
        at=at,
    )


def lead_mark_won(
    *,
    lead: Lead,
    actor: User | str,
    reason: str = "",
    context: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> StageTransition:
    return _move_after_sql(
        lead=lead,
        to_stage=Stage.CUSTOMER,
        allowed_from=(Stage.SQL, Stage.OPPORTUNITY),
        actor=actor,
        reason=reason,
        context=context,
        refusal=_("Only an SQL or an opportunity can be won; this lead is %(stage)s."),
        at=at,
    )


def lead_mark_lost(
    *,
    lead: Lead,
    actor: User | str,
    reason: str,
    context: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> StageTransition:
    """A lost SQL or opportunity goes back to marketing for nurture, with the lost reason."""
    reason = (reason or "").strip()
    if not reason:
        message = _("Say why the deal was lost; marketing uses it for nurture.")
        raise DomainError(message, code="reason_required", fields={"reason": [message]})
    return _move_after_sql(
        lead=lead,
        to_stage=Stage.RECYCLED,
        allowed_from=(Stage.SQL, Stage.OPPORTUNITY),
        actor=actor,
        reason=reason,
        context={"lost_reason": reason, **(context or {})},
        refusal=_("Only an SQL or an opportunity can be lost; this lead is %(stage)s."),
        at=at,
    )


# --- merging two leads ------------------------------------------------------------------


def handoff_check_merge(*, keep: Lead, merge: Lead) -> None:
    """Refuse a merge that would leave a lead with two open handoffs, or an open handoff on
    a lead that is no longer an MQL. The fix is a verdict first (e.g. reject as duplicate)."""
    merge_open = Handoff.objects.filter(lead=merge, status=HandoffStatus.OPEN).exists()
    if not merge_open:
        return
    keep_open = Handoff.objects.filter(lead=keep, status=HandoffStatus.OPEN).exists()
    if keep_open or keep.stage != Stage.MQL:
        raise DomainError(
            _(
                "%(lead)s has an open handoff. Close it first (for example reject it as a "
                "duplicate), then merge."
            )
            % {"lead": merge},
            code="merge_open_handoff",
        )


# --- notifications ---------------------------------------------------------------------


def assignment_notify(*, assignment_id: int) -> dict[str, bool]:
    """E-mail the rep about a new handoff and post to Slack if a webhook is configured.

    Runs outside any transaction (from a Celery task). Returns what was sent this time.
    """
    sent = {"email": False, "slack": False}
    assignment = (
        Assignment.objects.select_related("handoff__lead__company", "handoff__team", "rep")
        .filter(pk=assignment_id)
        .first()
    )
    if assignment is None:
        return sent
    handoff = assignment.handoff
    if handoff.status != HandoffStatus.OPEN or handoff.assigned_to_id != assignment.rep_id:
        return sent  # decided or handed on before we got here: the news is stale
    url = public_url(reverse("handoff:detail", args=[handoff.pk]))
    with translation.override(settings.LANGUAGE_CODE):
        context = {"assignment": assignment, "handoff": handoff, "lead": handoff.lead, "url": url}
        subject = _("New MQL for you: %(lead)s") % {
            "lead": handoff.lead.full_name or handoff.lead.email
        }
        if handoff.lead.company:
            subject += f" ({handoff.lead.company.name})"
        body = render_to_string("handoff/email/assigned.txt", context)
        slack_text = _("%(rep)s has a new MQL: %(lead)s — %(url)s") % {
            "rep": assignment.rep,
            "lead": handoff.lead.full_name or handoff.lead.email,
            "url": url,
        }
    if assignment.rep.email:
        sent["email"] = send_once(
            Assignment,
            assignment.pk,
            "email_sent_at",
            lambda: send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [assignment.rep.email]),
        )
    webhook = getattr(settings, "HANDOFF_SLACK_WEBHOOK_URL", "")
    if webhook:
        sent["slack"] = send_once(
            Assignment, assignment.pk, "slack_sent_at", lambda: post_webhook(webhook, slack_text)
        )
    if sent["email"] or sent["slack"]:
        # The first message that reached the rep, whichever channel and assignment.
        timeline_mark(handoff_id=handoff.pk, instant="notified_at", at=timezone.now())
    return sent


def queue_notice_notify(*, notice_id: int) -> dict[str, bool]:
    """Tell the managers that an MQL waits in the queue: one e-mail to them all, and the
    handoff webhook if one is configured. Each channel at most once per queued handoff.

    Runs outside any transaction (from a Celery task). Returns what was sent this time.
    """
    sent = {"email": False, "slack": False}
    notice = (
        QueueNotice.objects.select_related("handoff__lead__company", "handoff__team")
        .filter(pk=notice_id)
        .first()
    )
    if notice is None:
        return sent
    handoff = notice.handoff
    if not handoff.is_queued:
        return sent  # somebody took it (or decided it) before we got here: nothing to do
    managers = list(selectors.managers_to_notify(team_id=handoff.team_id))
    url = public_url(reverse("handoff:detail", args=[handoff.pk]))
    lead_name = handoff.lead.full_name or handoff.lead.email
    with translation.override(settings.LANGUAGE_CODE):
        context = {
            "handoff": handoff,
            "lead": handoff.lead,
            "team": handoff.team,
            "url": url,
            "inbox_url": public_url(reverse("handoff:inbox")),
        }
        if handoff.team is not None:
            subject = _("MQL waiting in the queue of %(team)s: %(lead)s") % {
                "team": handoff.team.name,
                "lead": lead_name,
            }
            slack_text = _(
                "Nobody in %(team)s could take a new MQL; it waits in the queue: %(lead)s — %(url)s"
            ) % {"team": handoff.team.name, "lead": lead_name, "url": url}
        else:
            subject = _("MQL waiting without a team: %(lead)s") % {"lead": lead_name}
            slack_text = _(
                "A new MQL matched no team; it waits in the queue: %(lead)s — %(url)s"
            ) % {"lead": lead_name, "url": url}
        if handoff.lead.company:
            subject += f" ({handoff.lead.company.name})"
        body = render_to_string("handoff/email/queued.txt", context)
    if managers:
        recipients = [manager.email for manager in managers]
        sent["email"] = send_once(
            QueueNotice,
            notice.pk,
            "email_sent_at",
            lambda: send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients),
        )
    webhook = getattr(settings, "HANDOFF_SLACK_WEBHOOK_URL", "")
    if webhook:
        sent["slack"] = send_once(
            QueueNotice, notice.pk, "slack_sent_at", lambda: post_webhook(webhook, slack_text)
        )
    return sent


# --- privacy ---------------------------------------------------------------------------


def handoff_personal_data_erase(*, lead_ids: Iterable[int]) -> dict[str, int]:
    """Free text sales wrote about the person (activity notes, rejection comments) is
    replaced by the erasure marker; the rows, outcomes and times stay for the KPIs."""
    ids = list(lead_ids)
    notes = (
        Activity.objects.filter(handoff__lead_id__in=ids)
        .exclude(note="")
        .exclude(note=ERASED)
        .update(note=ERASED)
    )
    comments = (
        Handoff.objects.filter(lead_id__in=ids)
        .exclude(rejection_comment="")
        .exclude(rejection_comment=ERASED)
        .update(rejection_comment=ERASED)
    )
    return {"handoff.Activity.note": notes, "handoff.Handoff.rejection_comment": comments}
