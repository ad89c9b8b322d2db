"""A rep's availability: away (no new handoffs) and back (their queues drain at once)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import NamedTuple

from django.utils import timezone
from django.utils.translation import gettext as _

from handoff.models import (
    Handoff,
    RepProfile,
    Team,
    TeamMembership,
)
from handoff.routing import handoff_assign_from_queue
from leadflow.errors import DomainError
from leadflow.models import User

logger = logging.getLogger(__name__)

AWAY_UNTIL_BEFORE_YEAR = 2100


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
