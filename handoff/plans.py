"""Routing plans: draft → replay → publish, as the scoring studio does for models.

A draft (`routing_plan_draft_create`) starts as a copy of the live routing configuration:
every team's switches (default team, account owner first, claim window and passes, after
hours), the routing rules, the memberships and each rep's capacity and working hours.
Managers edit the copy in the admin; nothing live changes. `handoff.replay` replays it
over past MQLs. `routing_plan_publish` applies exactly the draft in one transaction and
records who published it; the plan is then read-only, the record of what was applied.

Working hours belong to sla (handoff must not import it): the `PlanTiming` that reads the
reps' hours and business time is named in `leadflow.reactions.PLAN_TIMING`, and sla
applies a published plan's hours in its reaction to ROUTING_PLAN_PUBLISHED (also in
leadflow.reactions).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Collection, Mapping
from datetime import datetime, time, timedelta
from typing import NamedTuple, Protocol

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from handoff.hours import WorkingHours
from handoff.models import (
    PlanMember,
    PlanRep,
    PlanRule,
    PlanStatus,
    PlanTeam,
    RepProfile,
    RoutingPlan,
    RoutingRule,
    Team,
    TeamMembership,
)
from leadflow import reactions
from leadflow.errors import DomainError
from leadflow.models import User

logger = logging.getLogger(__name__)

DEFAULT_CAPACITY = RepProfile._meta.get_field("max_open_handoffs").default

# The team switches a plan holds, by the same names on Team and PlanTeam.
TEAM_FIELDS = (
    "is_default",
    "account_owner_first",
    "claim_required",
    "claim_window_minutes",
    "claim_max_passes",
    "after_hours",
)


class RepHours(NamedTuple):
    """A rep's own working days and hours; empty parts follow the business calendar."""

    weekdays: tuple[int, ...] = ()
    starts_at: time | None = None
    ends_at: time | None = None


class PlanTiming(Protocol):
    def rep_hours(self, rep_ids: Collection[int]) -> dict[int, RepHours]:
        """The reps' live working hours (reps without own hours are left out)."""
        ...

    def plan_hours(self, reps: Mapping[int, RepHours]) -> WorkingHours:
        """Working hours with these reps' hours instead of the live ones."""
        ...

    def working_time_between(self, rep_id: int, start: datetime, end: datetime) -> timedelta:
        """The rep's working time (live hours) between two instants."""
        ...

    def first_contact_due(self, start: datetime) -> datetime | None:
        """When first contact of an MQL that arrived at `start` is due (None: no SLA)."""
        ...

    def first_contact_timers(
        self, handoff_ids: Collection[int]
    ) -> dict[int, tuple[int | None, datetime]]:
        """The handoffs' recorded first-contact timers: the rep it counts for, and due."""
        ...


def plan_timing() -> PlanTiming:
    """The answer named in `leadflow.reactions.PLAN_TIMING` (sla's business calendar)."""
    return reactions.resolve(reactions.PLAN_TIMING)()


# --- the draft ---------------------------------------------------------------------------


def routing_plan_draft_create(*, plan: RoutingPlan, actor: User | None = None) -> RoutingPlan:
    """Save the new (unsaved) `plan` as a draft holding a copy of the live routing
    configuration: every team, rule, membership, and each member's capacity and hours."""
    if plan.pk is not None:
        raise DomainError(_("The plan exists already."), code="plan_exists")
    with transaction.atomic():
        plan.status, plan.created_by = PlanStatus.DRAFT, actor
        plan.save()
        PlanTeam.objects.bulk_create(
            PlanTeam(plan=plan, team=team, **{f: getattr(team, f) for f in TEAM_FIELDS})
            for team in Team.objects.order_by("pk")
        )
        PlanRule.objects.bulk_create(
            PlanRule(plan=plan, **{f: getattr(rule, f) for f in PlanRule.COPIED})
            for rule in RoutingRule.objects.order_by("order", "pk")
        )
        memberships = list(TeamMembership.objects.order_by("pk"))
        PlanMember.objects.bulk_create(
            PlanMember(plan=plan, team_id=m.team_id, rep_id=m.rep_id, is_active=m.is_active)
            for m in memberships
        )
        rep_ids = sorted({m.rep_id for m in memberships})
        capacity = dict(
            RepProfile.objects.filter(user_id__in=rep_ids).values_list(
                "user_id", "max_open_handoffs"
            )
        )
        hours = plan_timing().rep_hours(rep_ids)
        PlanRep.objects.bulk_create(
            PlanRep(
                plan=plan,
                rep_id=rep_id,
                max_open_handoffs=capacity.get(rep_id, DEFAULT_CAPACITY),
                weekdays=list(hours.get(rep_id, RepHours()).weekdays),
                starts_at=hours.get(rep_id, RepHours()).starts_at,
                ends_at=hours.get(rep_id, RepHours()).ends_at,
            )
            for rep_id in rep_ids
        )
    return plan


def plan_content(plan: RoutingPlan) -> dict:
    """Everything of the plan that can change a routing decision, in a stable order."""
    teams = [
        {"team": t.team_id, **{f: getattr(t, f) for f in TEAM_FIELDS}}
        for t in PlanTeam.objects.filter(plan=plan).order_by("team_id")
    ]
    rules = [
        {f: getattr(r, f) for f in PlanRule.COPIED}
        for r in PlanRule.objects.filter(plan=plan).order_by("order", "pk")
    ]
    members = list(
        PlanMember.objects.filter(plan=plan)
        .order_by("team_id", "rep_id")
        .values_list("team_id", "rep_id", "is_active")
    )
    reps = [
        [r.rep_id, r.max_open_handoffs, sorted(r.weekdays or []), r.starts_at, r.ends_at]
        for r in PlanRep.objects.filter(plan=plan).order_by("rep_id")
    ]
    return {"teams": teams, "rules": rules, "members": members, "reps": reps}


def routing_plan_fingerprint(*, plan: RoutingPlan) -> str:
    """A digest of the plan's content: a replay stands for the draft while it is equal."""
    text = json.dumps(plan_content(plan), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def routing_plan_problems(*, plan: RoutingPlan) -> list[str]:
    """Why the plan cannot be published (empty: it can)."""
    team_ids = set(PlanTeam.objects.filter(plan=plan).values_list("team_id", flat=True))
    problems = []
    for rule in PlanRule.objects.filter(plan=plan).exclude(team_id__in=team_ids):
        problems.append(
            _("Rule “%(rule)s” routes to %(team)s, which is not in the plan.")
            % {"rule": rule.name, "team": rule.team}
        )
    for member in PlanMember.objects.filter(plan=plan).exclude(team_id__in=team_ids):
        problems.append(
            _("%(rep)s is a member of %(team)s, which is not in the plan.")
            % {"rep": member.rep, "team": member.team}
        )
    return problems


# --- publish -----------------------------------------------------------------------------


def routing_plan_publish(*, plan: RoutingPlan, actor: User | None = None) -> RoutingPlan:
    """Apply the draft to the live configuration, all or nothing: the teams' switches,
    the rules (replaced), the memberships of the plan's teams (kept ones keep their place
    in the round robin), the reps' capacities, and (sla's reaction) their working hours.
    Teams that are not in the plan keep their settings and members. The plan becomes
    the published one (the one before is archived), with who published it and when.

    Locks: the plan, then the plan's teams in id order — routing locks one team and then
    its handoff, so a new MQL routed meanwhile waits for the commit and sees the new
    configuration, or was routed before it under the old one."""
    at = timezone.now()
    with transaction.atomic(durable=True):
        locked = RoutingPlan.objects.select_for_update().filter(pk=plan.pk).first()
        if locked is None or locked.status != PlanStatus.DRAFT:
            raise DomainError(_("Only a draft plan can be published."), code="not_a_draft")
        problems = routing_plan_problems(plan=locked)
        if problems:
            raise DomainError(
                _("The plan cannot be published: %(problems)s")
                % {"problems": " / ".join(problems)},
                code="invalid_plan",
            )
        plan_teams = list(PlanTeam.objects.filter(plan=locked).order_by("team_id"))
        team_ids = [t.team_id for t in plan_teams]
        list(Team.objects.select_for_update().filter(pk__in=team_ids).order_by("pk"))
        # The one default first off: the partial unique index allows one at any moment.
        Team.objects.filter(is_default=True).exclude(
            pk__in=[t.team_id for t in plan_teams if t.is_default]
        ).update(is_default=False)
        for plan_team in plan_teams:
            Team.objects.filter(pk=plan_team.team_id).update(
                **{f: getattr(plan_team, f) for f in TEAM_FIELDS}
            )
        RoutingRule.objects.all().delete()
        RoutingRule.objects.bulk_create(
            rule.as_rule() for rule in PlanRule.objects.filter(plan=locked).order_by("order", "pk")
        )
        _apply_memberships(plan=locked, team_ids=team_ids)
        for plan_rep in PlanRep.objects.filter(plan=locked).order_by("rep_id"):
            RepProfile.objects.update_or_create(
                user_id=plan_rep.rep_id, defaults={"max_open_handoffs": plan_rep.max_open_handoffs}
            )
        reactions.run(reactions.ROUTING_PLAN_PUBLISHED, plan=locked, at=at)
        RoutingPlan.objects.filter(status=PlanStatus.PUBLISHED).update(
            status=PlanStatus.ARCHIVED, archived_at=at
        )
        RoutingPlan.objects.filter(pk=locked.pk).update(
            status=PlanStatus.PUBLISHED, published_at=at, published_by=actor
        )
    plan.refresh_from_db()
    logger.info("Routing plan %s published by %s", plan.pk, actor)
    return plan


def _apply_memberships(*, plan: RoutingPlan, team_ids: list[int]) -> None:
    wanted = {(m.team_id, m.rep_id): m.is_active for m in PlanMember.objects.filter(plan=plan)}
    existing = {
        (m.team_id, m.rep_id): m for m in TeamMembership.objects.filter(team_id__in=team_ids)
    }
    gone = [m.pk for key, m in existing.items() if key not in wanted]
    TeamMembership.objects.filter(pk__in=gone).delete()
    for key, membership in existing.items():
        if key in wanted and membership.is_active != wanted[key]:
            TeamMembership.objects.filter(pk=membership.pk).update(is_active=wanted[key])
    TeamMembership.objects.bulk_create(
        TeamMembership(team_id=team_id, rep_id=rep_id, is_active=active)
        for (team_id, rep_id), active in sorted(wanted.items())
        if (team_id, rep_id) not in existing
    )


def plan_rep_hours(*, plan: RoutingPlan) -> dict[int, RepHours]:
    """The plan's working hours per rep (what publishing writes)."""
    return {
        r.rep_id: RepHours(tuple(r.weekdays or ()), r.starts_at, r.ends_at)
        for r in PlanRep.objects.filter(plan=plan)
    }
