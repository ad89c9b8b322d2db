"""The outbound side's one reaction to the core (listed in `leadflow.reactions`): a stage
change writes outbox rows, inside lead_transition's transaction."""

from __future__ import annotations

from integrations.outbound.services import outbox_enqueue_for_transition
from leadflow.models import Lead, StageTransition


def on_stage_changed(*, transition: StageTransition, lead: Lead) -> None:
    outbox_enqueue_for_transition(transition=transition)
