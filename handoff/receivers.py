"""Handoff's part of erasing and exporting a person (the core's privacy signals). What
handoff does after a change of state is in `leadflow.reactions`."""

from __future__ import annotations

from handoff import privacy, selectors


def on_person_erasing(sender, *, person, **kwargs) -> dict[str, int]:
    return privacy.handoff_personal_data_erase(lead_ids=person.lead_ids)


def on_person_exporting(sender, *, person, **kwargs) -> dict[str, list]:
    return {"handoffs": selectors.handoffs_export(lead_ids=person.lead_ids)}
