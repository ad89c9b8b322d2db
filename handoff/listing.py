"""The handoff lists of the pages: one filtered, sorted, paged list (handoff.filters) over
a scope the caller chose from the access rules, and what the "new since you opened the
page" poll reads."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
from django.db.models import Q, QuerySet, Subquery
from django.http import QueryDict

from handoff.filters import HandoffListFilter
from handoff.models import Assignment, Handoff
from handoff.selectors import access_for, with_inbox_details

PER_PAGE = 25
VIEWS = ("cards", "table")


@dataclass
class HandoffList:
    filterset: HandoffListFilter
    page: Page | None  # None when the parameters are wrong (the form shows why)
    view: str  # "cards" or "table"

    @property
    def valid(self) -> bool:
        return self.page is not None

    @property
    def total(self) -> int:
        return self.page.paginator.count if self.page is not None else 0


def handoff_list(
    *,
    params: QueryDict,
    scope: QuerySet[Handoff],
    now: dt.datetime,
    default_view: str = "cards",
    per_page: int = PER_PAGE,
) -> HandoffList:
    """The page of `scope` that ?page= asks for, filtered and sorted by the other
    parameters. Queries: the count (on the scope's indexes), the page, and the cards'
    prefetches: the same number whatever the page holds."""
    filterset = HandoffListFilter(params, queryset=scope, now=now)
    asked = params.get("view") or ""
    view = asked if asked in VIEWS else default_view
    if not filterset.is_valid():
        return HandoffList(filterset=filterset, page=None, view=view)
    rows = filterset.qs
    # Cards show recent events and activities (two prefetches); the table does not.
    if view == "cards":
        rows = with_inbox_details(rows)
    else:
        rows = rows.select_related("lead__company", "team", "assigned_to")
    paginator = Paginator(rows, per_page)
    try:
        page = paginator.page(params.get("page") or 1)
    except PageNotAnInteger:
        page = paginator.page(1)
    except EmptyPage:
        page = paginator.page(paginator.num_pages)
    return HandoffList(filterset=filterset, page=page, view=view)


# --- what changed since the page was opened -----------------------------------------------


@dataclass(frozen=True)
class Mark:
    """Where the page stood when it was rendered: the last assignment and handoff ids and
    the time. Everything after them is new to that page."""

    assignment_id: int
    handoff_id: int
    at: dt.datetime

    def as_params(self) -> dict[str, Any]:
        return {"a": self.assignment_id, "h": self.handoff_id, "t": int(self.at.timestamp())}


def mark_now(*, now: dt.datetime) -> Mark:
    """One query: the last handoff, and beside it the last assignment (both through their
    primary keys; no handoff means no assignment either)."""
    last_assignment = Assignment.objects.order_by("-pk").values("pk")[:1]
    row = (
        Handoff.objects.annotate(last_assignment=Subquery(last_assignment))
        .order_by("-pk")
        .values_list("pk", "last_assignment")
        .first()
    )
    handoff_id, assignment_id = row if row is not None else (0, 0)
    return Mark(assignment_id=assignment_id or 0, handoff_id=handoff_id, at=now)


def _scope(user) -> tuple[Q, Q]:
    """(assignments, handoffs) the user is told about: to or from them as a rep; in their
    teams (and team-less ones) as a manager; everything for an admin."""
    access = access_for(user=user)
    if access.is_admin:
        return Q(), Q()
    assignments = Q(rep_id=access.user_id) | Q(previous_rep_id=access.user_id)
    handoffs = Q(assigned_to_id=access.user_id)
    if access.is_manager:
        teams = Q(team_id__in=access.managed_team_ids) | Q(team__isnull=True)
        assignments |= Q(handoff__team_id__in=access.managed_team_ids)
        handoffs |= teams
    return assignments, handoffs


@dataclass(frozen=True)
class Changes:
    etag: str
    new_handoff_ids: list[int]  # assigned to, moved away from, or queued in the scope
    breached_handoff_ids: list[int]

    @property
    def count(self) -> int:
        return len(set(self.new_handoff_ids) | set(self.breached_handoff_ids))


def changes_since(*, user, mark: Mark, limit: int = 50) -> Changes:
    """What changed in the user's scope after `mark`: new assignments (a new MQL, a
    reassignment to or from them), newly queued MQLs, breaches. Three queries, each a
    range on an index (primary keys above the mark, breach times after it), so a poll
    that finds nothing costs the same at a hundred handoffs as at a hundred thousand."""
    assignments_q, handoffs_q = _scope(user)
    assigned = list(
        Assignment.objects.filter(assignments_q, pk__gt=mark.assignment_id)
        .order_by("-pk")
        .values_list("pk", "handoff_id")[:limit]
    )
    queued = list(
        Handoff.objects.filter(handoffs_q, pk__gt=mark.handoff_id, assigned_to__isnull=True)
        .order_by("-pk")
        .values_list("pk", flat=True)[:limit]
    )
    # Through the reverse relation: the timers are sla's, handoff only reads their times
    # (sla_timer_breached_idx keeps this a short range scan).
    breached = list(
        Handoff.objects.filter(handoffs_q, sla_timers__breached_at__gt=mark.at)
        .order_by("-pk")
        .values_list("pk", flat=True)
        .distinct()[:limit]
    )
    latest = max([pk for pk, _ in assigned], default=mark.assignment_id)
    etag = f'"{latest}-{max(queued, default=mark.handoff_id)}-{len(breached)}"'
    new_ids = list(dict.fromkeys([handoff_id for _, handoff_id in assigned] + queued))
    return Changes(etag=etag, new_handoff_ids=new_ids, breached_handoff_ids=breached)
