"""Scoring's part of a person's export (the core's privacy signal; the state changes it
reacts to are in `leadflow.reactions`)."""

from __future__ import annotations


def on_person_exporting(sender, *, person, **kwargs) -> dict[str, list]:
    # Scores are kept through an erasure (numbers, no personal data): export only.
    from scoring.selectors import lead_scores_export

    return {"scores": lead_scores_export(lead_ids=person.lead_ids)}
