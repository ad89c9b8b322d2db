"""Reactions of the scoring app to core domain signals: explicit service calls only."""

from __future__ import annotations

from scoring import services


def on_leads_merged(sender, *, keep, record, **kwargs) -> None:
    # The kept lead now has both histories: score it from all of them (in the merge's
    # transaction, so a merge that fails leaves the old scores).
    services.lead_score_recompute(lead=keep)
