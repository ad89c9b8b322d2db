"""Scoring's part of a person's export and erasure (the core's privacy signals; the
state changes it reacts to are in `leadflow.reactions`)."""

from __future__ import annotations

from scoring import services


def on_person_exporting(sender, *, person, **kwargs) -> dict[str, list]:
    from scoring.selectors import fit_snapshots_export, lead_scores_export

    return {
        "scores": lead_scores_export(lead_ids=person.lead_ids),
        "fit_snapshots": fit_snapshots_export(lead_ids=person.lead_ids),
    }


def on_person_erasing(sender, *, person, **kwargs) -> dict[str, int]:
    # Scores are kept through an erasure (numbers, no personal data); the fit snapshots
    # hold the person's name, e-mail and phone.
    return services.fit_snapshot_erase(lead_ids=person.lead_ids)
