"""Handoff's row locks, in the order `leadflow.locks` documents: team, then handoff, then
the handoff's pending claim window.

Every service that changes a handoff takes its locks through these functions, so the
order is the one written there.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import F, QuerySet

from handoff.models import ClaimStatus, Handoff, HandoffClaim, HandoffStatus, Team


def team(team_id: int) -> Team:
    """Lock a team's row: its round robin (counter, members' positions) is read and written
    only under it, so two MQLs routed at once queue up and cannot pick the same rep."""
    return Team.objects.select_for_update(no_key=True).get(pk=team_id)


def teams_all() -> dict[int, Team]:
    """Lock every team, lower id first (a bulk move's routing, `handoff.bulk`): its MQLs
    may go to any team, and a fixed order keeps two batches from deadlocking."""
    return {t.pk: t for t in Team.objects.select_for_update(no_key=True).order_by("pk")}


def team_queue(team_id: int) -> tuple[Team, QuerySet[Handoff]]:
    """The team locked, and its queued handoffs in the order the queue hands them out, to
    be locked as read (the caller slices it: only the rows it may assign are locked).

    A queued handoff whose SLA clock runs (an MQL made by an event, a hand-raiser, a claim
    passed back) has a deadline, `next_due_at`; a wave's MQL held with its clock stopped
    has none (`Handoff.clock_waits`). The running clocks go first, nearest deadline first,
    then the held ones, oldest first: otherwise a lead whose clock runs waits behind a
    whole wave and breaches while the reps work the wave off. No SKIP LOCKED: the only
    holders of a queued handoff's row without the team's lock are one handoff's verdict
    or activity, short, and skipping the row would hand out a less urgent one before it."""
    locked = team(team_id)
    queued = (
        Handoff.objects.select_for_update()
        .filter(team=locked, status=HandoffStatus.OPEN, assigned_to__isnull=True)
        .order_by(F("next_due_at").asc(nulls_last=True), "created_at", "id")
    )
    return locked, queued


def team_of(handoff_id: int) -> int | None:
    """The handoff's team, read without a lock: which team lock to take first. The caller
    checks under the handoff's lock that it did not change meanwhile."""
    return Handoff.objects.values_list("team_id", flat=True).get(pk=handoff_id)


def team_then_handoff(
    handoff_id: int, team_id: int | None, *, with_team: bool = False
) -> tuple[Team | None, Handoff]:
    """Lock the handoff's team (from `team_of`; none for a handoff without one), then the
    handoff (its own row only). `with_team` reads the handoff's team with it."""
    locked_team = team(team_id) if team_id is not None else None
    queryset = Handoff.objects.select_for_update(of=("self",))
    if with_team:
        queryset = queryset.select_related("team")
    return locked_team, queryset.get(pk=handoff_id)


def handoff(handoff_id: int, *, with_lead: bool = False) -> Handoff:
    """Lock one handoff for work on it (an activity, a verdict); its own row only.
    `with_lead` reads the lead with it (a verdict moves the lead next)."""
    if with_lead:
        return (
            Handoff.objects.select_for_update(of=("self",))
            .select_related("lead")
            .get(pk=handoff_id)
        )
    return Handoff.objects.select_for_update().get(pk=handoff_id)


def claim_window_due(claim_id: int, *, due_by: datetime) -> HandoffClaim | None:
    """A pass (`handoff.claims.claim_pass`), after the team and the handoff: its pending
    window, due by `due_by`, with SKIP LOCKED. A claim in flight holds the window (its
    conditional UPDATE under the handoff's lock), so the pass leaves it and the claim
    wins; None when it is held, no longer pending or not due."""
    return (
        HandoffClaim.objects.select_for_update(skip_locked=True)
        .filter(pk=claim_id, status=ClaimStatus.PENDING, due_at__lte=due_by)
        .first()
    )
