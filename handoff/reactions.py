"""Handoff's reactions to the core's changes (listed, in order, in `leadflow.reactions`)."""

from __future__ import annotations

from handoff.routing import handoff_create_for_mql
from leadflow.models import Lead, StageTransition


def on_mql(*, transition: StageTransition, lead: Lead) -> None:
    # In lead_transition's transaction: the MQL and its handoff commit together.
    handoff_create_for_mql(lead=lead, transition=transition)
