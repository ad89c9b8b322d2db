"""Work on a handoff: the calls, e-mails and meetings a rep logs; the earliest is the first
contact."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from handoff import locks
from handoff.models import (
    Activity,
    ActivityKind,
    ActivityOutcome,
    Handoff,
    HandoffStatus,
)
from handoff.timeline import timeline_set_first_contact
from leadflow import reactions
from leadflow.errors import DomainError
from leadflow.models import User


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
        locked = locks.handoff(handoff.pk)
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
        reactions.run(reactions.ACTIVITY_LOGGED, handoff=locked, activity=activity)
    handoff.first_contact_at = locked.first_contact_at
    return activity
