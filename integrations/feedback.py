"""SFA feedback, inbound: an outcome the SFA reports (opportunity, won, lost,
disqualified) moves the lead through the lifecycle, once per (destination, event id).

The SFA is an outbound destination, so the events are keyed by it; what they do is move
leads, like a rep's own after-SQL action in handoff.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from integrations.outbound import selectors
from integrations.outbound.models import (
    Destination,
    FeedbackEvent,
    FeedbackOutcome,
    FeedbackResult,
)
from leadflow.errors import DomainError, InvalidTransition, NotFound
from leadflow.japan import join_words
from leadflow.lifecycle import lead_mark_lost, lead_mark_opportunity, lead_mark_won, lead_transition
from leadflow.models import Lead, Stage

# --- Feedback -------------------------------------------------------------------------

# outcome → (stage it moves the lead to, stages it may come from; None = the lifecycle's
# own table decides). "lost" is a sales verdict on a lead sales worked, so an MQL nobody
# accepted cannot be lost (a rep rejects it in LeadFlow instead).
OUTCOME_MOVES: dict[str, tuple[str, frozenset[str] | None]] = {
    FeedbackOutcome.OPPORTUNITY_CREATED: (Stage.OPPORTUNITY, frozenset({Stage.SQL})),
    FeedbackOutcome.WON: (Stage.CUSTOMER, frozenset({Stage.SQL, Stage.OPPORTUNITY})),
    FeedbackOutcome.LOST: (Stage.RECYCLED, frozenset({Stage.SQL, Stage.OPPORTUNITY})),
    FeedbackOutcome.DISQUALIFIED: (Stage.DISQUALIFIED, None),
}


def _apply_outcome(
    *, lead: Lead, outcome: str, actor: str, reason: str, context: dict[str, Any]
) -> None:
    """Move the lead the way a rep's own after-SQL action would (the lifecycle's), so an
    SFA-reported loss carries its reason to marketing exactly like one logged in LeadFlow."""
    if outcome == FeedbackOutcome.OPPORTUNITY_CREATED:
        lead_mark_opportunity(lead=lead, actor=actor, reason=reason, context=context)
    elif outcome == FeedbackOutcome.WON:
        lead_mark_won(lead=lead, actor=actor, reason=reason, context=context)
    elif outcome == FeedbackOutcome.LOST:
        reason = reason or _("Lost (reported by the SFA).")
        lead_mark_lost(lead=lead, actor=actor, reason=reason, context=context)
    else:
        lead_transition(
            lead=lead,
            to_stage=Stage.DISQUALIFIED,
            actor=actor,
            reason=reason,
            context=context,
            expected_from=lead.stage,
        )


@dataclass
class FeedbackReceipt:
    event: FeedbackEvent
    duplicate: bool


def feedback_record(
    *,
    destination: Destination,
    event_id: str,
    lead_ref: str,
    outcome: str,
    reason: str,
    occurred_at: datetime,
    payload: dict[str, Any],
) -> FeedbackReceipt:
    """Apply an SFA-reported outcome to the lead once per (destination, event id).

    Raises NotFound (unknown lead) or InvalidTransition (the outcome does not fit where
    the lead is, e.g. "won" for a lead nobody accepted).
    """
    existing = FeedbackEvent.objects.filter(destination=destination, event_id=event_id).first()
    if existing is not None:
        return FeedbackReceipt(existing, duplicate=True)
    lead = selectors.lead_for_feedback(destination=destination, ref=lead_ref)
    if lead is None:
        raise NotFound(
            _("No lead matches “%(ref)s”.") % {"ref": lead_ref[:100]}, code="lead_not_found"
        )
    if outcome not in OUTCOME_MOVES:
        raise DomainError(_("Unknown outcome “%(o)s”.") % {"o": outcome}, code="bad_outcome")
    to_stage, from_stages = OUTCOME_MOVES[outcome]
    current = lead.stage
    try:
        with transaction.atomic():
            if current == to_stage:
                result = FeedbackResult.UNCHANGED
            else:
                if from_stages is not None and current not in from_stages:
                    raise InvalidTransition(
                        _(
                            "The lead is %(current)s; “%(outcome)s” is only possible for a "
                            "lead in %(allowed)s."
                        )
                        % {
                            "current": Stage(current).label,
                            "outcome": outcome,
                            "allowed": join_words(Stage(s).label for s in sorted(from_stages)),
                        }
                    )
                _apply_outcome(
                    lead=lead,
                    outcome=outcome,
                    actor=f"sfa:{destination.slug}",
                    reason=reason,
                    context={
                        "source": "sfa_feedback",
                        "feedback_destination_id": destination.pk,
                        "outcome": outcome,
                        "event_id": event_id,
                    },
                )
                result = FeedbackResult.APPLIED
            event = FeedbackEvent.objects.create(
                destination=destination,
                event_id=event_id,
                lead=lead,
                outcome=outcome,
                reason=reason,
                occurred_at=occurred_at,
                result=result,
                from_stage=current,
                to_stage=to_stage,
                payload=payload,
            )
    except (IntegrityError, InvalidTransition):
        # The same event id arriving twice at once: the loser sees either the unique key
        # or a lead the winner already moved. Either way the winner's row is the answer.
        already = FeedbackEvent.objects.filter(destination=destination, event_id=event_id).first()
        if already is None:
            raise
        return FeedbackReceipt(already, duplicate=True)
    return FeedbackReceipt(event, duplicate=False)
