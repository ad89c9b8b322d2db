"""Reactions of the SLA app to handoff's domain signals: explicit service calls, no logic.

All run inside the handoff service's transaction, so a timer change commits with the
handoff change that caused it.
"""

from __future__ import annotations

from sla import services


def on_handoff_created(sender, *, handoff, at, **kwargs) -> None:
    services.timers_start(handoff=handoff, at=at)


def on_handoff_assigned(sender, *, handoff, assignment, at, **kwargs) -> None:
    services.timers_reassign(handoff=handoff, rep_id=assignment.rep_id, at=at)


def on_activity_logged(sender, *, handoff, activity, **kwargs) -> None:
    services.timers_meet_first_contact(handoff=handoff, at=activity.at)


def on_handoff_rejecting(sender, *, handoff, reason, **kwargs) -> None:
    services.rejection_check(handoff=handoff, reason=reason)


def on_handoff_decided(sender, *, handoff, at, **kwargs) -> None:
    services.timers_meet_verdict(handoff=handoff, at=at)
