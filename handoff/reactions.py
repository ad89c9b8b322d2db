"""Handoff's reactions to changes (listed, in order, in `leadflow.reactions`): explicit
service calls, no logic. Nothing imports this module but leadflow.reactions (the
import-linter contract "Reactions run only through leadflow.reactions")."""

from __future__ import annotations

from datetime import datetime

from handoff.bulk import handoffs_create_for_mqls
from handoff.claims import claim_on_activity, claim_window_open, claim_windows_open_bulk
from handoff.merging import handoff_check_merge
from handoff.models import Activity, Assignment, Handoff
from handoff.routing import handoff_create_for_mql
from handoff.waves import handoff_hand_raised
from leadflow.models import EngagementEvent, Lead, MqlWave, StageTransition


def on_mql(*, transition: StageTransition, lead: Lead) -> None:
    # In lead_transition's transaction: the MQL and its handoff commit together.
    handoff_create_for_mql(lead=lead, transition=transition)


def on_mqls_bulk(*, transitions: list[StageTransition], wave: MqlWave | None) -> None:
    # on_mql's twin, in leads_transition_bulk's transaction: a batch's MQLs and handoffs
    # commit together.
    handoffs_create_for_mqls(transitions=transitions, wave=wave)


def on_hand_raised(*, lead: Lead, event: EngagementEvent) -> None:
    # A hand-raiser is never held back: a wave's held MQL leaves the hold and is routed,
    # after the event's commit (handoff.waves says why not in its transaction).
    handoff_hand_raised(lead=lead, event=event)


def on_handoffs_assigned_bulk(*, assignments: list[Assignment], at: datetime) -> None:
    # on_handoff_assigned's twin: the batch's new handoffs have no earlier window.
    claim_windows_open_bulk(assignments=assignments, at=at)


def on_handoff_assigned(*, handoff: Handoff, assignment: Assignment, at: datetime) -> None:
    # The new rep's claim window (#19); one still pending for an earlier rep is overtaken.
    assert handoff.team is not None  # an assignment always puts the handoff in a team
    claim_window_open(assignment=assignment, team=handoff.team, at=at)


def on_activity_logged(*, handoff: Handoff, activity: Activity) -> None:
    # Any activity of the holder's claims the handoff, whatever it is dated.
    claim_on_activity(handoff=handoff, actor=activity.by, at=activity.created_at)


def before_leads_merge(*, keep: Lead, merge: Lead) -> None:
    # May refuse: a merge must not leave a lead with two open handoffs.
    handoff_check_merge(keep=keep, merge=merge)
