"""The outbound side's one reaction to the core (listed in `leadflow.reactions`): a stage
change writes outbox rows, inside lead_transition's transaction."""

from __future__ import annotations

from typing import Any

from integrations.outbound.outbox import (
    outbox_enqueue_for_transition,
    outbox_enqueue_for_transitions,
)
from leadflow.models import Lead, StageTransition


def on_stage_changed(*, transition: StageTransition, lead: Lead) -> None:
    outbox_enqueue_for_transition(transition=transition)


def on_stages_changed_bulk(*, transitions: list[StageTransition], wave: Any) -> None:
    # on_stage_changed's twin for a bulk move: the same rows, one INSERT.
    outbox_enqueue_for_transitions(transitions=transitions)
