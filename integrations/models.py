"""The integrations app's models. Outbound delivery lives in integrations.outbound."""

from integrations.outbound.models import *  # noqa: F403
from integrations.outbound.models import (
    Destination,
    DestinationKind,
    FeedbackEvent,
    FeedbackOutcome,
    FeedbackResult,
    MessageStatus,
    OutboundEvent,
    OutboxMessage,
)

__all__ = [
    "Destination",
    "DestinationKind",
    "FeedbackEvent",
    "FeedbackOutcome",
    "FeedbackResult",
    "MessageStatus",
    "OutboundEvent",
    "OutboxMessage",
]
