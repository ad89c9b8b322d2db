"""Reactions of the SLA app to handoff's domain signals: explicit service calls, no logic.

All run inside the transaction of the change, so a timer change, and the mark that makes
the dashboard recompute the MQL's day (`sla.kpis`), commit with the change that caused it.
"""

from __future__ import annotations

from handoff.models import AssignmentVia
from leadflow.models import Stage
from sla import kpis, services

# A lead entering or leaving these stages changes "SQL → won" of its MQL's day.
WON_STAGES = {Stage.CUSTOMER, Stage.ADVOCATE}


def on_handoff_created(sender, *, handoff, at, **kwargs) -> None:
    services.timers_start(handoff=handoff, at=at)
    kpis.kpi_days_mark_handoff(handoff=handoff)


def on_handoff_assigned(sender, *, handoff, assignment, at, **kwargs) -> None:
    services.timers_reassign(handoff=handoff, rep_id=assignment.rep_id, at=at)
    # The routing of a new MQL is part of its creation, whose day on_handoff_created has
    # just marked in the same transaction: a second row per MQL on the webhook path.
    if not (assignment.via == AssignmentVia.ROUTING and at == handoff.created_at):
        kpis.kpi_days_mark_handoff(handoff=handoff)


def on_activity_logged(sender, *, handoff, activity, **kwargs) -> None:
    services.timers_meet_first_contact(handoff=handoff, at=activity.at)
    kpis.kpi_days_mark_handoff(handoff=handoff)


def on_handoff_rejecting(sender, *, handoff, reason, **kwargs) -> None:
    services.rejection_check(handoff=handoff, reason=reason)


def on_handoff_decided(sender, *, handoff, at, **kwargs) -> None:
    services.timers_meet_verdict(handoff=handoff, at=at)
    kpis.kpi_days_mark_handoff(handoff=handoff)


def on_lead_stage_changed(sender, *, transition, lead, **kwargs) -> None:
    if {transition.from_stage, transition.to_stage} & WON_STAGES:
        kpis.kpi_days_mark_lead(lead_id=lead.pk)


def on_leads_merged(sender, *, keep, **kwargs) -> None:
    kpis.kpi_days_mark_lead(lead_id=keep.pk)
