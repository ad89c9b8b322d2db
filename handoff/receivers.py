"""Reactions of the handoff app to core domain signals: explicit service calls, no logic."""

from __future__ import annotations

from handoff import services
from leadflow.models import Stage


def on_lead_stage_changed(sender, *, transition, lead, **kwargs) -> None:
    if transition.to_stage == Stage.MQL:
        services.handoff_create_for_mql(lead=lead, transition=transition)


def on_leads_merging(sender, *, keep, merge, **kwargs) -> None:
    services.handoff_check_merge(keep=keep, merge=merge)
