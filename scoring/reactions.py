"""Scoring's reactions to the core's changes (listed, in order, in `leadflow.reactions`)."""

from __future__ import annotations

from leadflow.models import Lead, LeadMerge
from scoring import services


def on_leads_merged(*, keep: Lead, record: LeadMerge) -> None:
    # The kept lead now has both histories: score it from all of them (in the merge's
    # transaction, so a merge that fails leaves the old scores).
    services.lead_score_recompute(lead=keep)
