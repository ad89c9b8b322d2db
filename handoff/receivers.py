"""Reactions of the handoff app to core domain signals: explicit service calls, no logic."""

from __future__ import annotations

from handoff import merging, privacy, routing, selectors
from leadflow.models import Stage


def on_lead_stage_changed(sender, *, transition, lead, **kwargs) -> None:
    if transition.to_stage == Stage.MQL:
        routing.handoff_create_for_mql(lead=lead, transition=transition)


def on_leads_merging(sender, *, keep, merge, **kwargs) -> None:
    merging.handoff_check_merge(keep=keep, merge=merge)


def on_person_erasing(sender, *, person, **kwargs) -> dict[str, int]:
    return privacy.handoff_personal_data_erase(lead_ids=person.lead_ids)


def on_person_exporting(sender, *, person, **kwargs) -> dict[str, list]:
    return {"handoffs": selectors.handoffs_export(lead_ids=person.lead_ids)}
