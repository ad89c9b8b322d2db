"""The rep's inbox and the handoff page.

Every action is a plain form POST that redirects with a message (PRG). With htmx the same
URL answers with the fragment to swap in (or HX-Redirect after a verdict); with errors,
the form comes back with them (422) either way, never a 500.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST, require_safe

from handoff import activities, claims, list_views, routing, selectors, timeline, verdicts
from handoff import availability as rep_availability
from handoff.forms import (
    AcceptForm,
    ActivityForm,
    AwayForm,
    ReassignForm,
    RejectForm,
    StageForm,
    add_domain_error,
)
from handoff.listing import handoff_list
from handoff.models import Handoff, HandoffStatus
from leadflow import lifecycle
from leadflow.errors import DomainError
from leadflow.models import Stage, User

# The inbox shows this many cards of the team queue, most urgent first; the rest are on
# the paged list (queue_list_url). After a wave 64,000 queued handoffs are normal, and a
# card each would make the page useless (and its build minutes long).
INBOX_QUEUE_CARDS = 50
# The team table beside a manager's own (paged) list: its most urgent rows.
INBOX_TEAM_ROWS = 50


def _actor(request: HttpRequest) -> User:
    # Every action view is behind login_required: the user is a real one here.
    return cast(User, request.user)


def _lead_name(handoff: Handoff) -> str:
    """The lead as the page names it (its heading): the name, else the address. Not
    str(lead), which is "name <address>" for the admin and logs."""
    return handoff.lead.full_name or handoff.lead.email


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _attach_scores(handoffs: list[Handoff]) -> bool:
    """Put each lead's scores on its handoff (`.scores`, None when unscored).
    False when there is no score data at all, so pages can say so once."""
    scores = selectors.lead_scores_for(lead_ids=[h.lead_id for h in handoffs])
    for handoff in handoffs:
        handoff.scores = (  # type: ignore[attr-defined]  # display-only attribute
            scores.get(handoff.lead_id) if scores is not None else None
        )
    return scores is not None


def _availability_context(
    request: HttpRequest, availability: selectors.Availability | None = None
) -> dict[str, Any]:
    availability = availability or selectors.availability_for(user=request.user)
    # Away until a time: the field starts at that time, so changing it is one edit.
    return {
        "availability": availability,
        "away_form": AwayForm(initial={"away_until": availability.until}),
    }


def _inbox_context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    access = selectors.access_for(user=request.user)
    now = timezone.now()
    availability = selectors.availability_for(user=request.user)
    is_rep = availability.is_rep
    # One list of the page is searched, filtered, sorted and paged (?q=&status=&sort=
    # &page=, handoff.filters): the rep's own handoffs, or for a manager who is no rep
    # their teams' handoffs in progress. Without ?status= both list the open ones.
    params = request.GET
    mine_scope = Handoff.objects.filter(assigned_to_id=request.user.pk)
    if not params.get("status"):
        mine_scope = mine_scope.filter(status=HandoffStatus.OPEN)
    listing = None
    if is_rep or mine_scope.exists():
        listing = handoff_list(params=params, scope=mine_scope, now=now)
        mine = list(listing.page.object_list) if listing.page is not None else []
    else:
        mine = []
    queue: list[Handoff] = []
    queue_summary: selectors.QueueSummary | None = None
    team_open: list[Handoff] = []
    team_open_total = 0
    if access.is_manager or access.is_admin:
        queue = list(selectors.team_queue_for_manager(user=request.user)[:INBOX_QUEUE_CARDS])
        queue_summary = selectors.team_queue_summary(user=request.user)
        if listing is None:
            listing = handoff_list(
                params=params,
                scope=selectors.team_open_for_manager(user=request.user),
                now=now,
                default_view="table",
            )
            team_open = list(listing.page.object_list) if listing.page is not None else []
        else:
            # A manager who is also a rep: their own list is the paged one, so the team
            # table shows the most urgent rows and says how many there are in all.
            team_scope = selectors.team_open_for_manager(user=request.user)
            team_open = list(team_scope[:INBOX_TEAM_ROWS])
            team_open_total = team_scope.count()
    marketing_open: list[Handoff] = []
    if access.is_marketing and not (access.is_manager or access.is_admin):
        marketing_open = list(selectors.open_handoffs_for_marketing()[:200])
    scoring_available = _attach_scores(mine + queue)
    context: dict[str, Any] = {
        "mine": mine,
        "queue": queue,
        "queue_total": queue_summary.total if queue_summary else 0,
        "queue_waves": [
            {"wave": wave, "waiting": waiting}
            for wave, waiting in (queue_summary.waves if queue_summary else [])
        ],
        "queue_list_url": f"{reverse('handoff:list')}?status=open&queued=true",
        "team_open": team_open,
        "team_open_total": team_open_total,
        "teams": queue_summary.teams if queue_summary else [],
        "marketing_open": marketing_open,
        "access": access,
        "scoring_available": scoring_available,
        "now": now,
        "listing": listing,
        **(list_views.filter_context(request) if listing is not None else {}),
        **list_views.live_context(request, now=now),
    }
    context.update(_availability_context(request, availability))
    # Only people in a sales team are handed MQLs: for anyone else (marketing, a manager
    # or admin who is not also a rep) "my open handoffs" would always say 0.
    context["works_handoffs"] = context["availability"].is_rep or bool(mine)
    context["mine_filtered"] = listing is not None and context["works_handoffs"]
    context.update(extra)
    return context


@require_safe
@login_required
def inbox(request: HttpRequest) -> HttpResponse:
    context = _inbox_context(request)
    listing = context["listing"]
    status = 400 if listing is not None and not listing.valid else 200
    return render(request, "handoff/inbox.html", context, status=status)


def _visible_or_404(request: HttpRequest, pk: int) -> Handoff:
    handoff = selectors.handoff_detail(user=request.user, pk=pk)
    if handoff is None:
        # 404, not 403: another rep's handoff id must not reveal that it exists.
        raise Http404
    return handoff


def _forms_for(handoff: Handoff, **bound: forms.Form) -> dict[str, forms.Form]:
    forms_: dict[str, forms.Form] = {
        "activity_form": ActivityForm(),
        "accept_form": AcceptForm(),
        "reject_form": RejectForm(),
        "reassign_form": ReassignForm(candidates=selectors.reassign_candidates(handoff=handoff)),
        "stage_form": StageForm(),
    }
    forms_.update(bound)
    return forms_


def _detail_context(request: HttpRequest, handoff: Handoff, **bound: forms.Form) -> dict[str, Any]:
    scoring_available = _attach_scores([handoff])
    may_act = selectors.can_act(user=request.user, handoff=handoff)
    may_manage = selectors.can_manage(user=request.user, handoff=handoff)
    return {
        "handoff": handoff,
        "lead": handoff.lead,
        "bant_min_yes": selectors.handoff_policy_get().bant_min_yes,
        "scoring_available": scoring_available,
        "can_act": may_act,
        "can_manage": may_manage,
        "now": timezone.now(),
        "can_decide": may_act and handoff.status == HandoffStatus.OPEN,
        "can_log": may_act and handoff.status != HandoffStatus.REJECTED and handoff.assigned_to_id,
        "can_move_on": may_act
        and handoff.status == HandoffStatus.ACCEPTED
        and handoff.lead.stage in (Stage.SQL, Stage.OPPORTUNITY),
        "company_history": selectors.company_history(user=request.user, handoff=handoff),
        # Claim or pass on (#19): the windows, newest first.
        "claim_rows": claims.claims_of(handoff=handoff),
        **selectors.handoff_timeline(handoff=handoff),
        **_forms_for(handoff, **bound),
    }


@require_safe
@login_required
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    handoff = _visible_or_404(request, pk)
    # Speed to lead: the holder's first look at the page is when they picked it up.
    now = timezone.now()
    timeline.handoff_mark_opened(handoff=handoff, user=cast(User, request.user), at=now)
    # Claim or pass on (#19): the holder opening the page claims it.
    if claims.claim_on_open(handoff=handoff, user=cast(User, request.user), at=now):
        messages.success(request, _("You claimed this MQL."))
    return render(request, "handoff/detail.html", _detail_context(request, handoff))


def _carried_over(form_class: type[forms.Form], data: QueryDict) -> forms.Form:
    """An unbound form (so without errors) showing the values in `data`."""
    blank = form_class()
    return form_class(
        initial={
            name: field.widget.value_from_datadict(data, {}, blank.add_prefix(name))
            for name, field in blank.fields.items()
        }
    )


def _action(
    request: HttpRequest,
    pk: int,
    *,
    form_name: str,
    make_form: Callable[[Handoff], forms.Form],
    perform: Callable[[Handoff, Any], str],
    fragment: str,
    manage: bool = False,
    in_place: bool = False,
) -> HttpResponse:
    handoff = _visible_or_404(request, pk)
    allowed = selectors.can_manage if manage else selectors.can_act
    if not allowed(user=request.user, handoff=handoff):
        raise PermissionDenied  # it can see it (marketing, a colleague's manager), not act
    form = make_form(handoff)
    if form.is_valid():
        try:
            success = perform(handoff, form)
        except DomainError as error:
            add_domain_error(form, error)
        else:
            url = reverse("handoff:detail", args=[handoff.pk])
            if _is_htmx(request) and in_place:
                handoff = _visible_or_404(request, pk)
                context = _detail_context(request, handoff)
                context["flash"] = success
                # The page's verdict forms may show a refusal from before this change (too
                # few BANT answers, too few attempts for "not reachable"): they are sent
                # again without it, keeping what the rep has entered (htmx includes them).
                context["accept_form"] = _carried_over(AcceptForm, request.POST)
                context["reject_form"] = _carried_over(RejectForm, request.POST)
                context["refresh_verdicts"] = True
                return render(request, fragment, context)
            messages.success(request, success)
            if _is_htmx(request):
                response = HttpResponse(status=200)
                response["HX-Redirect"] = url
                return response
            return redirect(url)
    context = _detail_context(request, handoff, **{form_name: form})
    template = fragment if _is_htmx(request) else "handoff/detail.html"
    return render(request, template, context, status=422)


@require_POST
@login_required
def activity_create(request: HttpRequest, pk: int) -> HttpResponse:
    def perform(handoff: Handoff, form: ActivityForm) -> str:
        activity = activities.activity_log(
            handoff=handoff,
            actor=_actor(request),
            kind=form.cleaned_data["kind"],
            outcome=form.cleaned_data["outcome"],
            note=form.cleaned_data["note"],
        )
        return _("Logged: %(activity)s.") % {"activity": activity}

    return _action(
        request,
        pk,
        form_name="activity_form",
        make_form=lambda h: ActivityForm(request.POST),
        perform=perform,
        fragment="handoff/_activity_section.html",
        in_place=True,
    )


@require_POST
@login_required
def accept(request: HttpRequest, pk: int) -> HttpResponse:
    def perform(handoff: Handoff, form: AcceptForm) -> str:
        verdicts.handoff_accept(handoff=handoff, actor=_actor(request), bant=form.bant())
        return _("Accepted: %(lead)s is now an SQL.") % {"lead": _lead_name(handoff)}

    return _action(
        request,
        pk,
        form_name="accept_form",
        make_form=lambda h: AcceptForm(request.POST),
        perform=perform,
        fragment="handoff/_accept_form.html",
    )


@require_POST
@login_required
def reject(request: HttpRequest, pk: int) -> HttpResponse:
    def perform(handoff: Handoff, form: RejectForm) -> str:
        verdicts.handoff_reject(
            handoff=handoff,
            actor=_actor(request),
            reason=form.cleaned_data["reason"],
            comment=form.cleaned_data["comment"],
        )
        return _("Rejected: %(lead)s goes back to marketing for nurture.") % {
            "lead": _lead_name(handoff)
        }

    return _action(
        request,
        pk,
        form_name="reject_form",
        make_form=lambda h: RejectForm(request.POST),
        perform=perform,
        fragment="handoff/_reject_form.html",
    )


@require_POST
@login_required
def reassign(request: HttpRequest, pk: int) -> HttpResponse:
    def perform(handoff: Handoff, form: ReassignForm) -> str:
        rep = form.cleaned_data["rep"]
        routing.handoff_reassign(
            handoff=handoff, to_rep=rep, actor=_actor(request), reason=form.cleaned_data["reason"]
        )
        return _("Assigned to %(rep)s.") % {"rep": rep}

    return _action(
        request,
        pk,
        form_name="reassign_form",
        make_form=lambda h: ReassignForm(
            request.POST, candidates=selectors.reassign_candidates(handoff=h)
        ),
        perform=perform,
        fragment="handoff/_reassign_form.html",
        manage=True,
    )


@require_POST
@login_required
def stage_change(request: HttpRequest, pk: int) -> HttpResponse:
    def perform(handoff: Handoff, form: StageForm) -> str:
        if handoff.status != HandoffStatus.ACCEPTED:
            raise DomainError(_("Only an accepted handoff moves on to a deal."))
        to = form.cleaned_data["to"]
        reason = form.cleaned_data["reason"]
        if to == StageForm.OPPORTUNITY:
            lifecycle.lead_mark_opportunity(lead=handoff.lead, actor=_actor(request), reason=reason)
        elif to == StageForm.WON:
            lifecycle.lead_mark_won(lead=handoff.lead, actor=_actor(request), reason=reason)
        else:
            lifecycle.lead_mark_lost(lead=handoff.lead, actor=_actor(request), reason=reason)
        handoff.lead.refresh_from_db(fields=["stage"])
        return _("The lead is now: %(stage)s.") % {"stage": handoff.lead.get_stage_display()}

    return _action(
        request,
        pk,
        form_name="stage_form",
        make_form=lambda h: StageForm(request.POST),
        perform=perform,
        fragment="handoff/_stage_form.html",
    )


@require_POST
@login_required
def team_assign_queue(request: HttpRequest, team_id: int) -> HttpResponse:
    teams = selectors.managed_teams(user=request.user)
    team = get_object_or_404(teams, pk=team_id)
    assigned = routing.handoff_assign_from_queue(team=team, actor=_actor(request))
    if assigned:
        messages.success(
            request,
            ngettext(
                "%(n)d queued handoff of %(team)s assigned.",
                "%(n)d queued handoffs of %(team)s assigned.",
                len(assigned),
            )
            % {"n": len(assigned), "team": team},
        )
    else:
        messages.warning(
            request,
            _("Nobody in %(team)s can take a handoff now (away or at capacity).") % {"team": team},
        )
    return redirect("handoff:inbox")


@require_POST
@login_required
def claim(request: HttpRequest, pk: int) -> HttpResponse:
    """Claim or pass on (#19): the rep acknowledges a new MQL from the inbox ("mine")."""
    handoff = _visible_or_404(request, pk)
    if not selectors.can_act(user=request.user, handoff=handoff):
        raise PermissionDenied  # it can see it (marketing), not act
    try:
        claims.claim_acknowledge(handoff=handoff, actor=_actor(request))
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("Claimed: %(lead)s is yours.") % {"lead": _lead_name(handoff)})
    return redirect("handoff:inbox")


def _away_message(until) -> str:
    if until is None:
        return _("You are away: no new MQLs come to you until you say you are back.")
    return _("You are away until %(until)s: no new MQLs come to you until then.") % {
        "until": timezone.localtime(until).strftime("%m/%d %H:%M")
    }


@require_POST
@login_required
def availability(request: HttpRequest) -> HttpResponse:
    """The rep sets themselves away (now, optionally until a time) or back.

    Always the caller's own availability: the POST names no user, and anything it adds
    (a user id) is ignored. Users who are in no team have none to set (403).
    """
    user = _actor(request)
    if not selectors.availability_for(user=user).is_rep:
        raise PermissionDenied
    form = AwayForm(request.POST)
    action = request.POST.get("action")
    success = ""
    drained = False
    if action == "back":
        try:
            comeback = rep_availability.rep_set_back(rep=user, actor=user)
        except DomainError as error:  # e.g. taken out of their last team meanwhile
            add_domain_error(form, error)
        else:
            success = _("Welcome back: new MQLs come to you again.")
            if comeback.assigned:
                drained = True
                # One sentence to translate: Japanese joins them without the English space.
                success = ngettext(
                    "Welcome back: new MQLs come to you again. "
                    "%(n)d MQL from the team queue is now yours.",
                    "Welcome back: new MQLs come to you again. "
                    "%(n)d MQLs from the team queue are now yours.",
                    len(comeback.assigned),
                ) % {"n": len(comeback.assigned)}
    elif action == "away":
        if form.is_valid():
            try:
                profile = rep_availability.rep_set_away(
                    rep=user, actor=user, until=form.cleaned_data["away_until"]
                )
            except DomainError as error:
                add_domain_error(form, error)
            else:
                success = _away_message(profile.away_until)
    else:
        form.add_error(None, _("Choose “away” or “I'm back”."))

    if success:
        if _is_htmx(request) and not drained:
            context = {**_availability_context(request), "flash": success}
            return render(request, "handoff/_availability.html", context)
        # Handoffs came from the queue: the whole inbox changed, not just the header.
        messages.success(request, success)
        if _is_htmx(request):
            response = HttpResponse(status=200)
            response["HX-Redirect"] = reverse("handoff:inbox")
            return response
        return redirect("handoff:inbox")
    if _is_htmx(request):
        context = {"availability": selectors.availability_for(user=user), "away_form": form}
        return render(request, "handoff/_availability.html", context, status=422)
    return render(
        request, "handoff/inbox.html", _inbox_context(request, away_form=form), status=422
    )
