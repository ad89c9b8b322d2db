"""Scoring's reactions to the core's changes (listed, in order, in `leadflow.reactions`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from leadflow.models import Lead, LeadMerge
from scoring import services


def on_leads_merged(*, keep: Lead, record: LeadMerge) -> None:
    # The kept lead now has both histories: score it from all of them (in the merge's
    # transaction, so a merge that fails leaves the old scores).
    services.lead_score_recompute(lead=keep)


def on_handoff_created(*, handoff: Any, at: datetime) -> None:
    # The fit the lead has as it goes to sales, for backtests that score it as it was.
    # (`handoff` is handoff.models.Handoff: an app above this one, so not imported.)
    services.fit_snapshot_take(lead=handoff.lead, at=at)


def on_handoffs_created_bulk(*, handoffs: list[Any], at: datetime) -> None:
    # on_handoff_created's twin for a bulk move's handoffs: one INSERT.
    services.fit_snapshots_take(leads=[handoff.lead for handoff in handoffs], at=at)
