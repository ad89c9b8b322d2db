"""Claim within minutes, or pass on.

In a team that requires claims, every assignment opens a claim window (`HandoffClaim`):
the rep must claim the handoff — open its page, acknowledge it in the inbox, or log any
activity — within the team's window of the rep's working time. The sweep (run by the SLA
beat sweep) passes an unclaimed one to the next rep who may take it now, never back to a
rep who let it pass; after the team's number of passes, or with nobody left, it goes to
the team queue, is held there for a manager (the queue drain does not hand it out
again), and the managers are told with the queue notice.

Exactly one of a claim and a pass wins. Both change the window only while it is pending,
under its row lock: the pass holds team → handoff → window (the routing lock order) and
takes the window with SKIP LOCKED, so a claim in flight makes the sweep leave it; a claim
that comes after the pass's lock waits, then finds the window no longer pending.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet, Subquery
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from handoff import locks, selectors
from handoff.hours import working_hours
from handoff.models import (
    Assignment,
    AssignmentVia,
    ClaimStatus,
    ClaimVia,
    Handoff,
    HandoffClaim,
    HandoffStatus,
    QueueNotice,
    Team,
)
from handoff.timeline import timeline_mark
from leadflow.errors import DomainError
from leadflow.models import User
from leadflow.transactions import enqueue_on_commit

logger = logging.getLogger(__name__)

# Windows looked at per sweep batch; a full batch makes the sweep run again at once.
DEFAULT_BATCH = 200


def claim_window_open(*, assignment: Assignment, team: Team, at: datetime) -> HandoffClaim | None:
    """A new assignment of the handoff (HANDOFF_ASSIGNED, under the team and handoff
    locks): a window still pending for an earlier rep is overtaken, and a new one opens
    when the team requires claims."""
    HandoffClaim.objects.filter(
        handoff_id=assignment.handoff_id, status=ClaimStatus.PENDING
    ).update(status=ClaimStatus.SUPERSEDED, resolved_at=at)
    if not team.claim_required:
        return None
    due = working_hours().add_working_time(
        assignment.rep_id, at, timedelta(minutes=team.claim_window_minutes)
    )
    return HandoffClaim.objects.create(
        handoff_id=assignment.handoff_id,
        assignment=assignment,
        rep_id=assignment.rep_id,
        started_at=at,
        due_at=due,
    )


def claim_windows_open_bulk(*, assignments: list[Assignment], at: datetime) -> list[HandoffClaim]:
    """claim_window_open for the first assignments of a bulk move's new handoffs (each
    with its handoff and team): no window can be pending for them yet, so only the new
    windows of teams that require claims are written, in one INSERT."""
    due: dict[tuple[int, int], datetime] = {}
    claims = []
    for assignment in assignments:
        team = assignment.handoff.team
        if team is None or not team.claim_required:
            continue
        key = (assignment.rep_id, team.claim_window_minutes)
        if key not in due:
            due[key] = working_hours().add_working_time(
                assignment.rep_id, at, timedelta(minutes=team.claim_window_minutes)
            )
        claims.append(
            HandoffClaim(
                handoff_id=assignment.handoff_id,
                assignment=assignment,
                rep_id=assignment.rep_id,
                started_at=at,
                due_at=due[key],
            )
        )
    return HandoffClaim.objects.bulk_create(claims)


def claim_make(*, handoff_id: int, rep_id: int, via: str, at: datetime) -> bool:
    """The rep claims their pending window (one conditional UPDATE: a second claim, or one
    after a pass, changes nothing). The claim is the timeline's "opened" instant."""
    claimed = HandoffClaim.objects.filter(
        handoff_id=handoff_id, rep_id=rep_id, status=ClaimStatus.PENDING
    ).update(status=ClaimStatus.CLAIMED, claimed_via=via, resolved_at=at)
    if claimed:
        timeline_mark(handoff_id=handoff_id, instant="opened_at", at=at)
    return bool(claimed)


def claim_on_open(*, handoff: Handoff, user: User, at: datetime) -> bool:
    """The holder opened the handoff's page."""
    if handoff.assigned_to_id != user.pk or not handoff.is_open:
        return False
    return claim_make(handoff_id=handoff.pk, rep_id=user.pk, via=ClaimVia.OPENED, at=at)


def claim_on_activity(*, handoff: Handoff, actor: User, at: datetime) -> bool:
    """An activity was logged (ACTIVITY_LOGGED, under the handoff lock): any activity of
    the holder's, whatever it is dated, claims it now."""
    if handoff.assigned_to_id != actor.pk:
        return False
    return claim_make(handoff_id=handoff.pk, rep_id=actor.pk, via=ClaimVia.ACTIVITY, at=at)


def claim_acknowledge(*, handoff: Handoff, actor: User) -> HandoffClaim:
    """The rep says "mine" from the inbox. Refused for anyone but the holder, for a
    decided handoff, and once the window has passed or there is none."""
    at = timezone.now()
    with transaction.atomic():
        locked = locks.handoff(handoff.pk)
        if locked.assigned_to_id != actor.pk:
            raise DomainError(
                _("Only the rep who holds this handoff can claim it."), code="not_yours"
            )
        if locked.status != HandoffStatus.OPEN:
            raise DomainError(_("This handoff is already decided."), code="handoff_closed")
        claim_make(handoff_id=locked.pk, rep_id=actor.pk, via=ClaimVia.ACKNOWLEDGED, at=at)
        claim = locked.claims.filter(rep_id=actor.pk).order_by("-started_at", "-id").first()
        if claim is None or claim.status != ClaimStatus.CLAIMED:
            raise DomainError(
                _("There is nothing to claim: this handoff has no claim window waiting for you."),
                code="nothing_to_claim",
            )
    return claim


def with_claim_due(queryset: QuerySet[Handoff]) -> QuerySet[Handoff]:
    """`claim_due_at`: when the pending claim window ends (None: nothing to claim)."""
    pending = HandoffClaim.objects.filter(handoff=OuterRef("pk"), status=ClaimStatus.PENDING)
    return queryset.annotate(claim_due_at=Subquery(pending.values("due_at")[:1]))


def held_for_managers() -> QuerySet[HandoffClaim]:
    """Queued handoffs that ran out of passes: the queue drain leaves them to a manager."""
    return HandoffClaim.objects.filter(handoff=OuterRef("pk"), status=ClaimStatus.QUEUED)


def exclude_held(queryset: QuerySet[Handoff]) -> QuerySet[Handoff]:
    return queryset.filter(~Exists(held_for_managers()))


# --- the sweep ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimSweepResult:
    passed: list[int]  # handoff ids given to the next rep
    queued: list[int]  # handoff ids sent to the team queue
    more: bool


def claims_sweep(*, now: datetime | None = None, batch_size: int | None = None) -> ClaimSweepResult:
    """Pass on the windows that are due, oldest first, in a bounded batch; each in its own
    transaction (a team's lock is held for one handoff, not for the batch)."""
    now = now or timezone.now()
    size = batch_size or getattr(settings, "HANDOFF_CLAIM_SWEEP_BATCH_SIZE", DEFAULT_BATCH)
    due = list(
        HandoffClaim.objects.filter(status=ClaimStatus.PENDING, due_at__lte=now)
        .order_by("due_at", "id")
        .values_list("pk", "handoff_id", "handoff__team_id")[:size]
    )
    passed: list[int] = []
    queued: list[int] = []
    for claim_id, handoff_id, team_id in due:
        outcome = claim_pass(claim_id=claim_id, handoff_id=handoff_id, team_id=team_id, now=now)
        if outcome == ClaimStatus.PASSED:
            passed.append(handoff_id)
        elif outcome == ClaimStatus.QUEUED:
            queued.append(handoff_id)
    if passed or queued:
        logger.info("Claim sweep: %d passed on, %d to the queue", len(passed), len(queued))
    return ClaimSweepResult(passed=passed, queued=queued, more=len(due) == size)


def _reason(minutes: int) -> str:
    with translation.override(settings.LANGUAGE_CODE):
        return _("Not claimed within %(minutes)d minutes.") % {"minutes": minutes}


def claim_pass(*, claim_id: int, handoff_id: int, team_id: int | None, now: datetime) -> str | None:
    """Pass one due window on; the outcome (a ClaimStatus), or None when another worker or
    a claim got there first."""
    from handoff import routing  # routing's assignments open windows here

    # Never inside another transaction: a caller's would hold the team lock for its whole
    # length (the sweep runs each pass on its own).
    with transaction.atomic(durable=True):
        team, handoff = locks.team_then_handoff(handoff_id, team_id)
        # The window last, with SKIP LOCKED: a claim in flight holds it, and wins.
        claim = locks.claim_window_due(claim_id, due_by=now)
        if claim is None:
            return None
        if team is None or not handoff.is_open or handoff.assigned_to_id != claim.rep_id:
            claim.status, claim.resolved_at = ClaimStatus.SUPERSEDED, now
            claim.save(update_fields=["status", "resolved_at"])
            return ClaimStatus.SUPERSEDED
        earlier = list(
            HandoffClaim.objects.filter(
                handoff_id=handoff_id, status__in=[ClaimStatus.PASSED, ClaimStatus.QUEUED]
            ).values_list("rep_id", "status")
        )
        passes = sum(1 for _rep, status in earlier if status == ClaimStatus.PASSED)
        let_pass = {rep_id for rep_id, _status in earlier} | {claim.rep_id}
        claim.reason = _reason(team.claim_window_minutes)
        claim.resolved_at = now
        membership = None
        if passes < team.claim_max_passes:
            membership = routing._pick_rep(team=team, at=now, exclude_rep_ids=let_pass)
        if membership is not None:
            claim.status, claim.passed_to = ClaimStatus.PASSED, membership.rep
            claim.save(update_fields=["status", "passed_to", "reason", "resolved_at"])
            routing._assign(
                handoff=handoff,
                team=team,
                membership=membership,
                via=AssignmentVia.PASSED,
                reason=claim.reason,
                at=now,
            )
            return ClaimStatus.PASSED
        claim.status = ClaimStatus.QUEUED
        with translation.override(settings.LANGUAGE_CODE):
            claim.reason += " " + (
                _("No passes left: to the team queue.")
                if passes >= team.claim_max_passes
                else _("Nobody else can take it now: to the team queue.")
            )
        claim.save(update_fields=["status", "reason", "resolved_at"])
        handoff.assigned_to = None
        handoff.save(update_fields=["assigned_to"])
        _notify_managers(handoff=handoff, at=now)
        return ClaimStatus.QUEUED


def _notify_managers(*, handoff: Handoff, at: datetime) -> None:
    """The existing queue notice: one per handoff (a row per handoff), so a handoff queued
    before (at its creation) gets its notice renewed and sent again."""
    webhook = getattr(settings, "HANDOFF_SLACK_WEBHOOK_URL", "")
    if not (webhook or selectors.managers_to_notify(team_id=handoff.team_id).exists()):
        return
    notice, _created = QueueNotice.objects.update_or_create(
        handoff=handoff, defaults={"created_at": at, "email_sent_at": None, "slack_sent_at": None}
    )
    from handoff.tasks import notify_queued_task

    enqueue_on_commit(notify_queued_task, notice.pk)


def claims_of(*, handoff: Handoff) -> list[HandoffClaim]:
    """The handoff's windows, newest first (the handoff page)."""
    return list(
        HandoffClaim.objects.filter(handoff_id=handoff.pk)
        .select_related("rep", "passed_to")
        .order_by("-started_at", "-id")
    )
