"""What happens after a change, per use case, in the order it happens: the one place to read.

A service that changes something calls `run(<list>, **kwargs)` inside its transaction,
after its own rows are written; each entry is called in order with those kwargs, so its
writes commit or roll back with the change, and an error in one undoes the lot. There are
no signal receivers: nothing reacts that is not listed here.

The core may not import the apps above it (the import-linter contracts in pyproject.toml),
so the entries are dotted paths, resolved on first use. `tests/leadflow/test_reactions.py`
resolves every one, so a moved function fails a test, not a lead.

The use cases, top to bottom (→ means "which runs"):

- **A lead becomes an MQL** (`lead_transition` to MQL, e.g. scoring crossing the
  threshold): STAGE_CHANGED[MQL] →
  1. `handoff.reactions.on_mql`: the handoff is created → HANDOFF_CREATED (the SLA timers
     start, the MQL's KPI day is marked, scoring keeps the lead's fit snapshot), then
     routed to a rep → HANDOFF_ASSIGNED (the timers follow the rep), or queued, and the
     managers told after commit;
  2. the outbox: a message per SFA connection that subscribes to the stage.
- **Many leads become MQLs at once** (a publish's rescore, `scoring.services.
  hand_off_new_mqls`): `leadflow.lifecycle.leads_transition_bulk`, one transaction per
  batch → STAGE_CHANGED_BULK[MQL], the set-based twins of the list above:
  1. `handoff.reactions.on_mqls_bulk`: the batch's handoffs routed (the same decisions, in
     lead id order) and written → HANDOFFS_CREATED_BULK (timers, KPI day marks, fit
     snapshots) → HANDOFFS_ASSIGNED_BULK (claim windows);
  2. the outbox: the same messages, one INSERT.
  Hand-raisers and MQLs made by an event keep the single path.
- **An MQL's lead raises its hand** (`scoring.services.lead_score_changes`: a new event
  of the published model's hand-raiser kind, fit ≥ its hand-raiser minimum): HAND_RAISED →
  `handoff.reactions.on_hand_raised`: a lead whose MQL waits in a wave's hold has its
  handoff released after the event's commit (`handoff.waves`), in a transaction of its
  own: HANDOFF_RELEASED (its SLA timers start at the event), then it is routed as a new
  MQL is → HANDOFF_ASSIGNED, or it stays queued, its clock running, and the managers told.
- **Accepted** (`handoff.verdicts.handoff_accept`): `lead_transition` to SQL →
  STAGE_CHANGED[SQL] (the outbox); then HANDOFF_DECIDED (the verdict and first-contact
  timers are met, the KPI day marked); after commit the team's queue moves.
- **Rejected** (`handoff.verdicts.handoff_reject`): BEFORE_REJECT first, under the handoff's
  lock and before any write (the SLA's "at least N attempts before 連絡がつかない" may
  refuse); then `lead_transition` to recycled → STAGE_CHANGED[RECYCLED] (the outbox); then
  HANDOFF_DECIDED as for an acceptance.
- **Won** (`lifecycle.lead_mark_won`, by the rep or SFA feedback): STAGE_CHANGED[CUSTOMER]
  (the MQL's "SQL → won" KPI day, the outbox). **Lost** (`lead_mark_lost`):
  STAGE_CHANGED[RECYCLED].
- **A rep logs an activity** (`handoff.activities.activity_log`): ACTIVITY_LOGGED (the
  first-contact timer, and the holder's activity claims the handoff).
- **Any assignment** (routing, the queue, a manager, an escalation, a pass for want of a
  claim): HANDOFF_ASSIGNED (the timers follow the rep; the new rep's claim window opens).
- **Two leads are merged** (`leadflow.merge.lead_merge`): LEADS_MERGING before any row
  moves (may refuse), LEADS_MERGED after.
- **A routing plan is published** (`handoff.plans.routing_plan_publish`): after the
  teams, rules, memberships and capacities, ROUTING_PLAN_PUBLISHED (the reps' working
  hours, which sla keeps).

Below the reactions, the answers: what handoff asks of an app above it (and what scoring
asks of handoff, above it: a wave's forecast) that it may not
import (who works when; the list conditions that need the SLA timers). They are listed
here by name as the reactions are, so no AppConfig.ready() registers anything anywhere.

Erasing and exporting a person (APPI / GDPR) have their own registry of participants in
the privacy code; they are not reactions to a change of state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from django.utils.module_loading import import_string

from leadflow.models import Stage

S = Stage

# The reactions of the apps, by name: each is a plain function with keyword arguments.
_HANDOFF_FOR_MQL = "handoff.reactions.on_mql"
_OUTBOX = "integrations.outbound.reactions.on_stage_changed"
_WON_KPI_DAY = "sla.reactions.on_won_stage_changed"

# lead_transition, after the StageTransition row, under the lead's lock. By the stage the
# lead moves to (every stage is listed: adding one means deciding what follows it).
# kwargs: transition (StageTransition), lead (Lead, locked, with its company).
STAGE_CHANGED: dict[str, tuple[str, ...]] = {
    S.ANONYMOUS: (_OUTBOX,),
    S.KNOWN: (_OUTBOX,),
    S.MQL: (_HANDOFF_FOR_MQL, _OUTBOX),
    S.SQL: (_OUTBOX,),
    S.OPPORTUNITY: (_OUTBOX,),
    # In or out of won ("SQL → won" of the MQL's day): customer and advocate only move
    # between themselves (lifecycle.ALLOWED), so the stage moved to says both.
    S.CUSTOMER: (_WON_KPI_DAY, _OUTBOX),
    S.ADVOCATE: (_WON_KPI_DAY, _OUTBOX),
    S.RECYCLED: (_OUTBOX,),
    S.DISQUALIFIED: (_OUTBOX,),
}

# leads_transition_bulk, after its StageTransition rows, under the batch's lead locks: the
# set-based twin of STAGE_CHANGED for the stages a batch may move to, entry for entry
# (BULK_TWINS; tests/leadflow/test_reactions.py holds each list to its single twin's).
# kwargs: transitions (list of StageTransition, lead id order, each with its locked lead
# and company as `.lead`), wave (leadflow.models.MqlWave or None).
_BULK_HANDOFFS_FOR_MQLS = "handoff.reactions.on_mqls_bulk"
_BULK_OUTBOX = "integrations.outbound.reactions.on_stages_changed_bulk"
STAGE_CHANGED_BULK: dict[str, tuple[str, ...]] = {
    S.MQL: (_BULK_HANDOFFS_FOR_MQLS, _BULK_OUTBOX),
}
# The single reaction each bulk one stands for (of the three bulk lists: this one,
# HANDOFFS_CREATED_BULK and HANDOFFS_ASSIGNED_BULK below).
BULK_TWINS: dict[str, str] = {
    _BULK_HANDOFFS_FOR_MQLS: _HANDOFF_FOR_MQL,
    _BULK_OUTBOX: _OUTBOX,
    "sla.reactions.on_handoffs_created_bulk": "sla.reactions.on_handoff_created",
    "scoring.reactions.on_handoffs_created_bulk": "scoring.reactions.on_handoff_created",
    "sla.reactions.on_handoffs_assigned_bulk": "sla.reactions.on_handoff_assigned",
    "handoff.reactions.on_handoffs_assigned_bulk": "handoff.reactions.on_handoff_assigned",
}

# handoff_create_for_mql, the handoff row written, before it is routed.
# kwargs: handoff, at (when the MQL happened).
HANDOFF_CREATED: tuple[str, ...] = (
    "sla.reactions.on_handoff_created",  # the SLA timers start, the KPI day is marked
    "scoring.reactions.on_handoff_created",  # the lead's fit snapshot, for backtests
)

# handoffs_create_for_mqls (handoff.bulk), the batch's handoffs written with the reps the
# routing chose: HANDOFF_CREATED's twin, whose timers start with that rep (where a single
# creation's HANDOFF_ASSIGNED leaves them). kwargs: handoffs (list of Handoff), at.
HANDOFFS_CREATED_BULK: tuple[str, ...] = (
    "sla.reactions.on_handoffs_created_bulk",
    "scoring.reactions.on_handoffs_created_bulk",
)

# lead_score_changes, after the score is written and the MQL policy applied, in the
# event's transaction (the lead and its score locked): the lead was an MQL already, one
# of the new events is of the published model's hand-raiser kind and the lead's fit
# reaches its hand-raiser minimum.
# kwargs: lead, event (the newest such EngagementEvent of the change).
HAND_RAISED: tuple[str, ...] = (
    "handoff.reactions.on_hand_raised",  # a wave's held MQL leaves the hold (after commit)
)

# handoff_release_from_wave, the handoff out of its wave's hold, under the team's and the
# handoff's locks, before it is routed. kwargs: handoff, at (the hand-raise, recorded).
HANDOFF_RELEASED: tuple[str, ...] = (
    "sla.reactions.on_handoff_released",  # its timers start, the KPI day is marked
)

# Every assignment of a rep (routing, the queue, a manager, an SLA escalation), under the
# team's and the handoff's locks. kwargs: handoff, assignment, at.
HANDOFF_ASSIGNED: tuple[str, ...] = (
    "sla.reactions.on_handoff_assigned",
    "handoff.reactions.on_handoff_assigned",  # the new rep's claim window (#19)
)

# handoffs_create_for_mqls, the batch's assignment rows written: HANDOFF_ASSIGNED's twin.
# kwargs: assignments (list of Assignment, each with its handoff and the handoff's team), at.
HANDOFFS_ASSIGNED_BULK: tuple[str, ...] = (
    "sla.reactions.on_handoffs_assigned_bulk",
    "handoff.reactions.on_handoffs_assigned_bulk",
)

# activity_log, the activity written, under the handoff's lock. kwargs: handoff, activity.
ACTIVITY_LOGGED: tuple[str, ...] = (
    "sla.reactions.on_activity_logged",
    "handoff.reactions.on_activity_logged",  # the holder's activity claims it (#19)
)

# handoff_reject, under the handoff's lock, before any write: each may refuse by raising
# DomainError. kwargs: handoff (locked), reason (RejectionReason).
BEFORE_REJECT: tuple[str, ...] = ("sla.reactions.before_reject",)

# handoff_accept / handoff_reject, after the verdict's rows. kwargs: handoff, at.
HANDOFF_DECIDED: tuple[str, ...] = ("sla.reactions.on_handoff_decided",)

# lead_merge, both leads locked, before the merged lead's rows move: each may refuse by
# raising DomainError. kwargs: keep, merge (Lead).
LEADS_MERGING: tuple[str, ...] = ("handoff.reactions.before_leads_merge",)

# lead_merge, after every row moved and the merged lead was deleted. kwargs: keep, record.
LEADS_MERGED: tuple[str, ...] = (
    "scoring.reactions.on_leads_merged",  # the kept lead scored from both histories
    "sla.reactions.on_leads_merged",  # its MQL's KPI day recomputed
)

# routing_plan_publish, after the plan's teams, rules, memberships and capacities are
# applied, under the plan's and its teams' locks. kwargs: plan, at.
ROUTING_PLAN_PUBLISHED: tuple[str, ...] = ("sla.reactions.on_routing_plan_published",)

ALL: dict[str, Sequence[str]] = {
    **{f"STAGE_CHANGED[{stage}]": paths for stage, paths in STAGE_CHANGED.items()},
    **{f"STAGE_CHANGED_BULK[{stage}]": paths for stage, paths in STAGE_CHANGED_BULK.items()},
    "HANDOFF_CREATED": HANDOFF_CREATED,
    "HANDOFFS_CREATED_BULK": HANDOFFS_CREATED_BULK,
    "HAND_RAISED": HAND_RAISED,
    "HANDOFF_RELEASED": HANDOFF_RELEASED,
    "HANDOFF_ASSIGNED": HANDOFF_ASSIGNED,
    "HANDOFFS_ASSIGNED_BULK": HANDOFFS_ASSIGNED_BULK,
    "ACTIVITY_LOGGED": ACTIVITY_LOGGED,
    "BEFORE_REJECT": BEFORE_REJECT,
    "HANDOFF_DECIDED": HANDOFF_DECIDED,
    "LEADS_MERGING": LEADS_MERGING,
    "LEADS_MERGED": LEADS_MERGED,
    "ROUTING_PLAN_PUBLISHED": ROUTING_PLAN_PUBLISHED,
}

# Every module a reaction above lives in. The import-linter contract "Reactions run only
# through leadflow.reactions" forbids importing them (tests/leadflow/test_reactions.py
# holds the two lists equal), so no service can call a reaction out of its listed order.
REACTION_MODULES = (
    "handoff.reactions",
    "scoring.reactions",
    "sla.reactions",
    "integrations.outbound.reactions",
)

# --- the answers: what handoff asks of the apps above it ------------------------------

# Who works when: routing skips reps who are off, a claim window counts the rep's working
# time. A class implementing handoff.hours.WorkingHours, made once per process (sla's
# reads each rep's hours on the business calendar).
WORKING_HOURS = "sla.hours.CalendarWorkingHours"

# A routing plan's replay: the reps' live hours, a plan's hours, business time and the
# first-contact SLA. A class implementing handoff.plans.PlanTiming (sla's calendar).
PLAN_TIMING = "sla.plan_timing.CalendarPlanTiming"

# What a wave of MQLs would do to the teams now (scoring's preview and publish
# confirmation: per team, the MQLs routed to it, its free capacity, how many go to a rep
# at once and how many wait). `(lead_ids, never_held) -> list[dict]`.
WAVE_FORECAST = "handoff.bulk.wave_forecast"

# The handoff lists' conditions that need the timers (handoff.filters.ListCondition,
# `(value, now) -> Q | None`), by the list parameter they serve: ?sla= (the SLA state) and
# ?kpi= (the handoffs behind a dashboard figure).
LIST_CONDITIONS: dict[str, str] = {
    "sla": "sla.selectors.handoff_sla_state_condition",
    "kpi": "sla.kpis.days.handoff_kpi_condition",
}
# The figures ?kpi= may name: {value: label}.
KPI_LABELS = "sla.kpis.days.KPI_LABELS"


@cache
def resolve(path: str) -> Callable[..., Any]:
    return import_string(path)


def run(reactions: Sequence[str], **kwargs: Any) -> None:
    """Call each reaction in order with `kwargs` (inside the caller's transaction)."""
    for path in reactions:
        resolve(path)(**kwargs)
