"""The SLA's reactions to changes of handoffs and leads (listed, in order, in
`leadflow.reactions`): explicit service calls, no logic.

All run inside the transaction of the change, so a timer change, and the mark that makes
the dashboard recompute the MQL's day (`sla.kpis.days`), commit with the change that caused it.
"""

from __future__ import annotations

from datetime import datetime

from handoff.models import (
    Activity,
    Assignment,
    AssignmentVia,
    Handoff,
    RejectionReason,
    RoutingPlan,
)
from handoff.plans import plan_rep_hours
from leadflow.models import Lead, LeadMerge, StageTransition
from sla import hours, services
from sla.kpis import days


def on_handoff_created(*, handoff: Handoff, at: datetime) -> None:
    services.timers_start(handoff=handoff, at=at)
    days.kpi_days_mark_handoff(handoff=handoff)


def on_handoff_released(*, handoff: Handoff, at: datetime) -> None:
    # A wave's held MQL whose lead raised its hand: its clocks start now, as a new MQL's
    # do at the MQL, and follow the rep the routing gives it next (HANDOFF_ASSIGNED).
    services.timers_start(handoff=handoff, at=at)
    days.kpi_days_mark_handoff(handoff=handoff)


def on_handoffs_created_bulk(*, handoffs: list[Handoff], at: datetime) -> None:
    # on_handoff_created's twin: the timers start with the rep the routing chose (where
    # timers_reassign leaves a single creation's), one mark per MQL day, not per handoff
    # (a mark says "recompute the day": one is as good as many).
    services.timers_start_bulk(handoffs=handoffs, at=at)
    days.kpi_days_mark_stale(moments=[handoff.created_at for handoff in handoffs])


def on_handoffs_assigned_bulk(*, assignments: list[Assignment], at: datetime) -> None:
    # on_handoff_assigned's twin: the timers already have their rep (on_handoffs_created_bulk);
    # an account owner's assignment marks the day again, as a single one does.
    moments = [
        a.handoff.created_at
        for a in assignments
        if not (a.via == AssignmentVia.ROUTING and at == a.handoff.created_at)
    ]
    if moments:
        days.kpi_days_mark_stale(moments=moments)


def on_handoff_assigned(*, handoff: Handoff, assignment: Assignment, at: datetime) -> None:
    # A wave's MQL that waited in the queue: its clocks start with its first rep.
    services.timers_start_on_assignment(handoff=handoff, at=at)
    services.timers_reassign(handoff=handoff, rep_id=assignment.rep_id, at=at)
    # The routing of a new MQL is part of its creation, whose day on_handoff_created has
    # just marked in the same transaction: a second row per MQL on the webhook path.
    if not (assignment.via == AssignmentVia.ROUTING and at == handoff.created_at):
        days.kpi_days_mark_handoff(handoff=handoff)


def on_activity_logged(*, handoff: Handoff, activity: Activity) -> None:
    services.timers_meet_first_contact(handoff=handoff, at=activity.at)
    days.kpi_days_mark_handoff(handoff=handoff)


def before_reject(*, handoff: Handoff, reason: RejectionReason) -> None:
    # May refuse, before any write: "at least N attempts before 連絡がつかない".
    services.rejection_check(handoff=handoff, reason=reason)


def on_handoff_decided(*, handoff: Handoff, at: datetime) -> None:
    services.timers_meet_verdict(handoff=handoff, at=at)
    days.kpi_days_mark_handoff(handoff=handoff)


def on_won_stage_changed(*, transition: StageTransition, lead: Lead) -> None:
    # Into or out of customer / advocate: "SQL → won" of the lead's MQL day changes.
    days.kpi_days_mark_lead(lead_id=lead.pk)


def on_leads_merged(*, keep: Lead, record: LeadMerge) -> None:
    days.kpi_days_mark_lead(lead_id=keep.pk)


def on_routing_plan_published(*, plan: RoutingPlan, at: datetime) -> None:
    hours.rep_working_hours_apply(hours=plan_rep_hours(plan=plan))
