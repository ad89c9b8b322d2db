"""The verdict on a handoff: accepted as an SQL (enough BANT yes) or rejected back to
marketing with a reason and a comment."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from handoff import locks, selectors
from handoff.models import (
    BANT_KEYS,
    Handoff,
    HandoffStatus,
    RejectionReason,
)
from handoff.timeline import timeline_mark
from leadflow import reactions
from leadflow.errors import DomainError
from leadflow.lifecycle import lead_transition
from leadflow.models import Stage, User
from leadflow.transactions import enqueue_on_commit


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
    locked = locks.handoff(handoff.pk, with_lead=True)
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

        enqueue_on_commit(assign_from_queue_task, locked.team_id)


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
        reactions.run(reactions.HANDOFF_DECIDED, handoff=locked, at=locked.decided_at)
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
        # May refuse, before any write: the SLA's "at least N attempts before 連絡がつかない"
        # (sla.reactions.before_reject → sla.services.rejection_check).
        reactions.run(reactions.BEFORE_REJECT, handoff=locked, reason=reason)
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
        reactions.run(reactions.HANDOFF_DECIDED, handoff=locked, at=locked.decided_at)
        _after_verdict(locked)
    return _copy_back(handoff, locked)
