"""Reads for handoff: who may see and do what, routing lookups, and the inbox queries.

Object-level access lives here (not in groups): a rep sees the handoffs assigned to them,
a manager those of the teams they manage (plus team-less ones nobody could route),
marketing reads everything, nobody else sees anything. Pages and the API both use these.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Case, Count, Exists, F, OuterRef, Prefetch, Q, QuerySet, Value, When
from django.utils import timezone
from django.utils.translation import gettext_lazy

from handoff.models import (
    Activity,
    Assignment,
    Handoff,
    HandoffPolicy,
    HandoffStatus,
    RepProfile,
    RoutingRule,
    Team,
    TeamMembership,
)
from leadflow.config import config_cached
from leadflow.models import EngagementEvent, Lead, MqlWave, Stage, User
from leadflow.roles import MARKETING

# How much of the timeline a card in the inbox list shows; the detail page shows more.
INBOX_EVENTS_PER_CARD = 5
INBOX_ACTIVITIES_PER_CARD = 3
DETAIL_EVENTS = 50
# The company panel of the handoff page: enough to see who else is being worked there.
COMPANY_ROWS = 20


# --- access ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Access:
    user_id: int | None
    is_admin: bool = False
    is_marketing: bool = False
    managed_team_ids: frozenset[int] = field(default_factory=frozenset)

    @property
    def is_manager(self) -> bool:
        return bool(self.managed_team_ids)


def access_for(*, user) -> Access:
    """The user's roles for handoffs, computed once per request (two small queries)."""
    if not getattr(user, "is_authenticated", False):
        return Access(user_id=None)
    cached = getattr(user, "_handoff_access", None)
    if cached is not None:
        return cached
    access = Access(
        user_id=user.pk,
        is_admin=user.is_superuser,
        is_marketing=user.groups.filter(name=MARKETING).exists(),
        managed_team_ids=frozenset(user.managed_teams.values_list("pk", flat=True)),
    )
    user._handoff_access = access
    return access


def handoffs_visible_to(*, user) -> QuerySet[Handoff]:
    access = access_for(user=user)
    if access.user_id is None:
        return Handoff.objects.none()
    if access.is_admin or access.is_marketing:
        return Handoff.objects.all()
    condition = Q(assigned_to_id=access.user_id)
    if access.is_manager:
        condition |= Q(team_id__in=access.managed_team_ids) | Q(team__isnull=True)
    return Handoff.objects.filter(condition)


def can_manage(*, user, handoff: Handoff) -> bool:
    """Reassign, assign from the queue: the team's managers (and admins)."""
    access = access_for(user=user)
    if access.is_admin:
        return True
    if handoff.team_id is None:
        return access.is_manager
    return handoff.team_id in access.managed_team_ids


def can_act(*, user, handoff: Handoff) -> bool:
    """Log activities, accept, reject, move on after SQL: the rep, or the team's manager."""
    access = access_for(user=user)
    if access.user_id is None:
        return False
    return handoff.assigned_to_id == access.user_id or can_manage(user=user, handoff=handoff)


# --- a rep's availability ----------------------------------------------------------------


@dataclass(frozen=True)
class Availability:
    """What the inbox header and the API show of the user's own availability."""

    is_rep: bool  # in a team: only reps have an availability to set
    away: bool  # away now (an "away until" that has passed counts as back)
    until: datetime | None = None


def availability_for(*, user, at: datetime | None = None) -> Availability:
    """The user's availability as the round robin sees it, in one query."""
    row = (
        User.objects.filter(pk=user.pk)
        .annotate(is_rep=Exists(TeamMembership.objects.filter(rep=OuterRef("pk"))))
        .values_list("is_rep", "rep_profile__away", "rep_profile__away_until")
        .first()
    )
    if row is None:
        return Availability(is_rep=False, away=False)
    is_rep, away, until = row
    profile = RepProfile(away=bool(away), away_until=until)
    if not profile.is_away(at):
        return Availability(is_rep=is_rep, away=False)
    return Availability(is_rep=is_rep, away=True, until=until)


# --- policy and routing -----------------------------------------------------------------


def managers_to_notify(*, team_id: int | None) -> QuerySet[User]:
    """Active managers with an e-mail: of the team, or of any team when `team_id` is None
    (an MQL no rule routed shows in every manager's queue; the weekly digest)."""
    managers = User.objects.filter(is_active=True).exclude(email="")
    if team_id is not None:
        managers = managers.filter(managed_teams=team_id)
    else:
        managers = managers.filter(managed_teams__isnull=False)
    return managers.distinct().order_by("pk")


def handoff_policy_get() -> HandoffPolicy:
    """The agreed policy; the defaults until someone saves one in the admin."""
    return HandoffPolicy.objects.filter(pk=1).first() or HandoffPolicy(pk=1)


def _routing_table() -> tuple[list[RoutingRule], Team | None]:
    rules = list(RoutingRule.objects.filter(is_active=True).select_related("team"))
    return rules, Team.objects.filter(is_default=True).first()


def routing_team_for(*, lead: Lead) -> Team | None:
    """The first matching active rule's team, else the default team, else None.

    Rules and default team come from the per-process copy (leadflow.config), reloaded
    when either table changes; the team returned is that copy's: lock it by pk."""
    return routing_team_finder()(lead)


def routing_team_finder() -> Callable[[Lead], Team | None]:
    """routing_team_for with the rules read once, for many leads (a bulk move's batch):
    the per-process copy's version is checked here, not per lead."""
    by_company = routing_team_by_company()

    def find(lead: Lead) -> Team | None:
        # A rule tests the company's fields only (RoutingRule.matches_company).
        company = lead.company
        if company is None:
            return by_company((None, None, None, None))
        return by_company(
            (company.prefecture, company.region, company.industry, company.employee_count)
        )

    return find


# The company fields a routing rule tests (RoutingRule.matches_company), by lookup.
ROUTING_COMPANY_FIELDS = (
    "company__prefecture",
    "company__region",
    "company__industry",
    "company__employee_count",
)


def routing_team_by_company() -> Callable[[tuple], Team | None]:
    """routing_team_for on the values of ROUTING_COMPANY_FIELDS (None where the lead has
    no company), for counting many leads by team without loading them."""
    rules, default_team = config_cached("handoff.routing", _routing_table)

    @functools.cache
    def find(fields: tuple) -> Team | None:
        prefecture, region, industry, employees = fields
        for rule in rules:
            if rule.matches_company(prefecture or "", region or "", industry or "", employees):
                return rule.team
        return default_team

    return find


# Why an account owner got the MQL: the assignment history says it in these words.
ACCOUNT_OWNER_REASONS = {
    "company": gettext_lazy("Account owner: set on the company"),
    "open": gettext_lazy("Account owner: holds an open handoff of the company"),
    "opportunity": gettext_lazy("Account owner: works an SQL or opportunity of the company"),
    "customer": gettext_lazy("Account owner: owns a customer of the company"),
}


# The stages in which another lead of the company makes its holder the account owner,
# ranked (an open handoff's first, then an SQL or opportunity's, then a customer's), and
# what each rank is called in the assignment's reason. The bulk routing ranks the same.
OWNER_RANK: dict[str, int] = {
    Stage.MQL: 1,
    Stage.SQL: 2,
    Stage.OPPORTUNITY: 2,
    Stage.CUSTOMER: 3,
    Stage.ADVOCATE: 3,
}
OWNER_HOW = {1: "open", 2: "opportunity", 3: "customer"}


def account_owner_for(*, lead: Lead) -> tuple[int, str] | None:
    """The rep who owns the lead's company, and how: the owner set on the company; else the
    owner (holder) of another of its leads — an open handoff's first, then an SQL or
    opportunity's, then a customer's, the most recent of each. At most one query beyond
    the company (`leadflow_lead.company_id` index)."""
    if lead.company_id is None:
        return None
    company = lead.company
    if company is not None and company.owner_id is not None:
        return company.owner_id, "company"
    rank = Case(*(When(stage=stage, then=Value(n)) for stage, n in OWNER_RANK.items()))
    found = (
        Lead.objects.filter(
            company_id=lead.company_id,
            owner__isnull=False,
            owner__is_active=True,
            stage__in=list(OWNER_RANK),
        )
        .exclude(pk=lead.pk)
        .annotate(rank=rank)
        .order_by("rank", "-stage_changed_at", "-pk")
        .values_list("owner_id", "rank")
        .first()
    )
    if found is None:
        return None
    return found[0], OWNER_HOW[found[1]]


def reassign_candidates(*, handoff: Handoff) -> QuerySet[User]:
    """Reps a manager can hand this to: members of its team (of any team when unrouted)."""
    memberships = TeamMembership.objects.filter(rep__is_active=True)
    if handoff.team_id is not None:
        memberships = memberships.filter(team_id=handoff.team_id)
    return (
        User.objects.filter(pk__in=memberships.values("rep_id"))
        .exclude(pk=handoff.assigned_to_id or 0)
        .order_by("last_name", "first_name", "username")
    )


# --- inbox -----------------------------------------------------------------------------


# "Most urgent first": the nearest SLA deadline not yet met (an overdue one is nearest of
# all; sla.services stores it as next_due_at), then the longest-waiting assignment (queued
# ones by creation). handoff_urgency_idx has these columns in this order, so a list reads
# its first page off the index. This replaces an ordering sla used to register into this
# module at startup (a subquery per row, and a mutable global).
URGENCY_ORDER = (F("next_due_at").asc(nulls_last=True), "assigned_at", "created_at", "id")


def handoffs_order_by_urgency(queryset: QuerySet[Handoff]) -> QuerySet[Handoff]:
    """Most urgent first (URGENCY_ORDER). The only place the inbox order is decided."""
    return queryset.order_by(*URGENCY_ORDER)


def with_inbox_details(queryset: QuerySet[Handoff]) -> QuerySet[Handoff]:
    """Everything an inbox card shows, in a fixed number of queries whatever the length."""
    from handoff.claims import with_claim_due  # claims reads managers_to_notify from here

    # Claim or pass on (#19): the pending claim window's due time, in the same query.
    queryset = with_claim_due(queryset)
    return queryset.select_related("lead__company", "team", "assigned_to").prefetch_related(
        Prefetch(
            "lead__events",
            queryset=EngagementEvent.objects.order_by("-occurred_at", "-id")[
                :INBOX_EVENTS_PER_CARD
            ],
            to_attr="recent_events",
        ),
        Prefetch(
            "activities",
            queryset=Activity.objects.select_related("by").order_by("-at", "-id")[
                :INBOX_ACTIVITIES_PER_CARD
            ],
            to_attr="recent_activities",
        ),
    )


def inbox_for_rep(*, user) -> QuerySet[Handoff]:
    return with_inbox_details(
        handoffs_order_by_urgency(
            Handoff.objects.filter(assigned_to_id=user.pk, status=HandoffStatus.OPEN)
        )
    )


def team_queued(*, user) -> QuerySet[Handoff]:
    """Open handoffs nobody could take yet, in the teams this user manages (or in no team):
    the bare rows, for counting and grouping. After a wave (handoff.bulk) tens of
    thousands of them are normal."""
    access = access_for(user=user)
    queued = Handoff.objects.filter(status=HandoffStatus.OPEN, assigned_to__isnull=True)
    if not access.is_admin:
        queued = queued.filter(Q(team_id__in=access.managed_team_ids) | Q(team__isnull=True))
    return queued


def team_queue_for_manager(*, user) -> QuerySet[Handoff]:
    """The team queue, most urgent first, with what an inbox card shows. Unbounded: slice it."""
    return with_inbox_details(handoffs_order_by_urgency(team_queued(user=user)))


@dataclass(frozen=True)
class QueueSummary:
    """The whole team queue in figures, whatever its length: what the inbox says of it
    beside the few cards it shows."""

    total: int
    # (wave, how many of its MQLs still wait here), oldest wave first.
    waves: list[tuple[MqlWave, int]]
    # The managed teams with something queued: "assign the queue" of an empty one does nothing.
    teams: list[Team]


def team_queue_summary(*, user) -> QueueSummary:
    """Three queries: the COUNT, one GROUP BY over the waves, one DISTINCT over the teams."""
    queued = team_queued(user=user)
    total = queued.count()
    # Held: a handoff whose lead raised its hand left the wave's hold (handoff.waves) and
    # waits as any queued MQL does, its clock running.
    waves = (
        MqlWave.objects.filter(handoffs__in=queued.filter(wave_released_at__isnull=True))
        .annotate(waiting=Count("handoffs"))
        .order_by("pk")
    )
    teams = managed_teams(user=user).filter(pk__in=queued.values("team_id").distinct())
    return QueueSummary(
        total=total,
        waves=[(wave, wave.waiting) for wave in waves],  # type: ignore[attr-defined]
        teams=list(teams),
    )


def team_open_for_manager(*, user) -> QuerySet[Handoff]:
    """Open, assigned handoffs of the managed teams other than the manager's own."""
    access = access_for(user=user)
    assigned = Handoff.objects.filter(status=HandoffStatus.OPEN, assigned_to__isnull=False)
    if not access.is_admin:
        assigned = assigned.filter(team_id__in=access.managed_team_ids)
    return handoffs_order_by_urgency(assigned.exclude(assigned_to_id=user.pk)).select_related(
        "lead__company", "team", "assigned_to"
    )


def open_handoffs_for_marketing() -> QuerySet[Handoff]:
    return handoffs_order_by_urgency(
        Handoff.objects.filter(status=HandoffStatus.OPEN)
    ).select_related("lead__company", "team", "assigned_to")


def managed_teams(*, user) -> QuerySet[Team]:
    access = access_for(user=user)
    teams = (
        Team.objects.all()
        if access.is_admin
        else Team.objects.filter(pk__in=access.managed_team_ids)
    )
    return teams.order_by("name")


def handoff_detail(*, user, pk: int) -> Handoff | None:
    """One handoff with what its page shows, or None when the user may not see it (the view
    answers 404 then: guessing another rep's id must not reveal that it exists)."""
    # Through the urgency ordering for its annotation: the page shows the next deadline.
    return (
        handoffs_order_by_urgency(handoffs_visible_to(user=user))
        .select_related(
            "lead__company", "team", "assigned_to", "decided_by", "rejection_reason", "wave"
        )
        .filter(pk=pk)
        .first()
    )


def handoff_timeline(*, handoff: Handoff) -> dict[str, list]:
    return {
        "events": list(
            EngagementEvent.objects.filter(lead_id=handoff.lead_id).order_by("-occurred_at", "-id")[
                :DETAIL_EVENTS
            ]
        ),
        "activities": list(
            Activity.objects.filter(handoff=handoff).select_related("by").order_by("-at", "-id")
        ),
        "assignments": list(
            Assignment.objects.filter(handoff=handoff)
            .select_related("rep", "previous_rep", "by")
            .order_by("-assigned_at", "-id")
        ),
    }


@dataclass(frozen=True)
class CompanyHistory:
    """What the handoff page shows of the lead's company: the other people there and the
    company's other handoffs, newest first, at most COMPANY_ROWS of each (`more_*` says
    whether there were more). `visible_ids`: the handoffs this user may open."""

    leads: list[Lead]
    more_leads: bool
    handoffs: list[Handoff]
    more_handoffs: bool
    visible_ids: frozenset[int]


def company_history(*, user, handoff: Handoff) -> CompanyHistory | None:
    """Three queries whatever the company's size; None for a lead with no company.

    A rep sees the names and outcomes of colleagues' handoffs at the same company (so
    nobody calls a customer another rep is already talking to) but opens only their own."""
    company_id = handoff.lead.company_id
    if company_id is None:
        return None
    leads = list(
        Lead.objects.filter(company_id=company_id)
        .exclude(pk=handoff.lead_id)
        .order_by("-created_at", "-id")[: COMPANY_ROWS + 1]
    )
    handoffs = list(
        Handoff.objects.filter(lead__company_id=company_id)
        .exclude(pk=handoff.pk)
        .select_related("lead", "assigned_to", "rejection_reason")
        .order_by("-created_at", "-id")[: COMPANY_ROWS + 1]
    )
    shown = handoffs[:COMPANY_ROWS]
    visible = (
        frozenset(
            handoffs_visible_to(user=user)
            .filter(pk__in=[h.pk for h in shown])
            .values_list("pk", flat=True)
        )
        if shown
        else frozenset()
    )
    return CompanyHistory(
        leads=leads[:COMPANY_ROWS],
        more_leads=len(leads) > COMPANY_ROWS,
        handoffs=shown,
        more_handoffs=len(handoffs) > COMPANY_ROWS,
        visible_ids=visible,
    )


# --- scores (owned by the scoring app) --------------------------------------------------


@dataclass(frozen=True)
class ScoreLine:
    label: str
    points: int


@dataclass(frozen=True)
class LeadScores:
    """What the inbox shows of a lead's score: both axes and why."""

    fit: int
    engagement: int
    fit_explanation: list[ScoreLine] = field(default_factory=list)
    engagement_explanation: list[ScoreLine] = field(default_factory=list)


def lead_scores_for(*, lead_ids: Iterable[int]) -> dict[int, LeadScores] | None:
    """Fit and engagement score with explanation per lead id, in one query for all of them.

    Scores are shown as of now (engagement decays), with the lines that sum to them; a
    lead without a score is simply missing from the dict. Every page and API reads scores
    through this function.
    """
    from scoring.models import LeadScore
    from scoring.selectors import lead_score_explain

    now = timezone.now()
    result: dict[int, LeadScores] = {}
    for score in LeadScore.objects.filter(lead_id__in=list(lead_ids), model__isnull=False):
        explained = lead_score_explain(score=score, at=now)
        result[score.lead_id] = LeadScores(
            fit=explained.fit,
            engagement=explained.engagement,
            fit_explanation=[
                ScoreLine(
                    f"{line.category}: {line.label}" if line.category else line.label, line.points
                )
                for line in explained.fit_lines
            ],
            engagement_explanation=[
                ScoreLine(f"{line.label} ×{line.count}", line.points)
                for line in explained.engagement_lines
            ],
        )
    return result


# --- privacy ---------------------------------------------------------------------------


def handoffs_export(*, lead_ids: Iterable[int]) -> list[dict]:
    """Every handoff of the person's lead with its activities and assignments (export)."""
    rows = []
    handoffs = (
        Handoff.objects.filter(lead_id__in=list(lead_ids))
        .select_related("team", "assigned_to", "decided_by", "rejection_reason")
        .prefetch_related(
            Prefetch("activities", queryset=Activity.objects.select_related("by").order_by("at")),
            Prefetch(
                "assignments",
                queryset=Assignment.objects.select_related("rep").order_by("assigned_at"),
            ),
        )
        .order_by("created_at", "id")
    )
    for handoff in handoffs:
        rows.append(
            {
                "id": handoff.pk,
                "team": handoff.team.name if handoff.team else None,
                "assigned_to": str(handoff.assigned_to) if handoff.assigned_to else None,
                "status": handoff.status,
                "created_at": handoff.created_at,
                "assigned_at": handoff.assigned_at,
                "first_contact_at": handoff.first_contact_at,
                "decided_at": handoff.decided_at,
                "bant": handoff.bant,
                "rejection_reason": handoff.rejection_reason.code
                if handoff.rejection_reason
                else None,
                "rejection_comment": handoff.rejection_comment,
                "activities": [
                    {
                        "kind": activity.kind,
                        "outcome": activity.outcome,
                        "note": activity.note,
                        "by": str(activity.by),
                        "at": activity.at,
                    }
                    for activity in handoff.activities.all()
                ],
                "assignments": [
                    {"rep": str(a.rep), "via": a.via, "assigned_at": a.assigned_at}
                    for a in handoff.assignments.all()
                ],
            }
        )
    return rows
