"""Reactions of the scoring app to core domain signals: explicit service calls only."""

from __future__ import annotations

from scoring import services


def on_leads_merged(sender, *, keep, record, **kwargs) -> None:
    # The kept lead now has both histories: score it from all of them (in the merge's
    # transaction, so a merge that fails leaves the old scores).
    services.lead_score_recompute(lead=keep)


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
