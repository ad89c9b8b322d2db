"""The handoff list page (search, filters, sort, pages: the overdue list and the
dashboard's drill-downs open it), the inbox's "what is new" poll, and bulk reassign."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST, require_safe

from handoff import routing, selectors
from handoff.filters import kpi_choices
from handoff.listing import Mark, changes_since, handoff_list, mark_now
from handoff.models import Handoff, Team, TeamMembership
from leadflow.api.filters import MAX_ID
from leadflow.errors import DomainError
from leadflow.models import MqlWave, User

ROUND_ROBIN = "round_robin"
# How often an open inbox asks what is new (seconds); the browser tests shorten it.
POLL_SECONDS = 10


def poll_seconds() -> int:
    return int(getattr(settings, "HANDOFF_POLL_SECONDS", POLL_SECONDS))


def _visible_teams(user) -> list[Team]:
    access = selectors.access_for(user=user)
    if access.is_admin or access.is_marketing:
        return list(Team.objects.order_by("name"))
    if access.is_manager:
        return list(selectors.managed_teams(user=user))
    return []


def _reps_of(teams: list[Team]) -> list[User]:
    return list(
        User.objects.filter(
            pk__in=TeamMembership.objects.filter(team__in=teams).values("rep_id"),
            is_active=True,
        ).order_by("last_name", "first_name", "username")
    )


def filter_context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    """What the filter form offers the user: their teams and those teams' reps."""
    teams = _visible_teams(request.user)
    return {"filter_teams": teams, "filter_reps": _reps_of(teams) if teams else [], **extra}


def live_context(request: HttpRequest, *, now: dt.datetime) -> dict[str, Any]:
    """The poll element of an inbox page: where the page stands now."""
    mark = mark_now(now=now)
    return {"live_params": mark.as_params(), "poll_seconds": poll_seconds()}


class BulkReassignForm(forms.Form):
    handoff = forms.TypedMultipleChoiceField(coerce=int, choices=())
    rep = forms.ChoiceField(label=gettext_lazy("To"), choices=())
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=1000)

    def __init__(self, *args, reps: list[User], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["rep"]).choices = [
            (ROUND_ROBIN, _("Next in the round robin")),
            *((str(rep.pk), str(rep)) for rep in reps),
        ]
        sent = self.data.getlist("handoff") if hasattr(self.data, "getlist") else []
        cast(forms.ChoiceField, self.fields["handoff"]).choices = [
            (value, value) for value in sent if value.isdigit()
        ]
        self.fields["handoff"].error_messages["required"] = _("Choose at least one handoff.")


def _wave_label(value: str) -> str:
    """What made the wave ?wave= names (the heading says whose MQLs these are); a query
    only when the list is filtered by a wave. The filter itself validates the value."""
    if not value.isdigit() or int(value) > MAX_ID:
        return ""
    return MqlWave.objects.filter(pk=int(value)).values_list("label", flat=True).first() or ""


@require_safe
@login_required
def handoff_list_page(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    listing = handoff_list(
        params=request.GET,
        scope=selectors.handoffs_visible_to(user=request.user),
        now=now,
        default_view="table",
    )
    rows = list(listing.page.object_list) if listing.page is not None else []
    manageable = [h for h in rows if selectors.can_manage(user=request.user, handoff=h)]
    context = filter_context(
        request,
        listing=listing,
        rows=rows,
        now=now,
        selectable=bool(manageable),
        kpi_label=dict(kpi_choices()).get(request.GET.get("kpi", "")),
        wave_label=_wave_label(request.GET.get("wave", "")),
    )
    if manageable:
        context["bulk_form"] = BulkReassignForm(reps=context["filter_reps"])
    return render(request, "handoff/list.html", context, status=200 if listing.valid else 400)


@require_safe
@login_required
def live(request: HttpRequest) -> HttpResponse:
    """What is new in the user's scope since the page's mark (?a=&h=&t=): 304 when the
    browser's copy (its ETag) is still right, else a small fragment: a count and links."""
    try:
        mark = Mark(
            assignment_id=int(request.GET.get("a", "")),
            handoff_id=int(request.GET.get("h", "")),
            at=dt.datetime.fromtimestamp(int(request.GET.get("t", "")), tz=dt.UTC),
        )
    except (ValueError, OverflowError, OSError):
        return HttpResponse(status=400)
    changes = changes_since(user=request.user, mark=mark)
    if request.headers.get("If-None-Match") == changes.etag:
        response: HttpResponse = HttpResponseNotModified()
    else:
        handoffs = (
            selectors.handoffs_visible_to(user=request.user)
            .filter(pk__in=changes.new_handoff_ids + changes.breached_handoff_ids)
            .select_related("lead", "assigned_to")
            .order_by("-pk")[:10]
        )
        response = render(
            request,
            "handoff/_live.html",
            {
                "changes": changes,
                "changed": list(handoffs),
                "breached_ids": set(changes.breached_handoff_ids),
            },
        )
    response["ETag"] = changes.etag
    # The browser keeps the fragment and asks again every time: its If-None-Match gets the
    # 304, and htmx is handed the kept fragment (no re-render, nothing changes on screen).
    response["Cache-Control"] = "private, no-cache"
    return response


def _back(request: HttpRequest) -> str:
    back = request.POST.get("next") or reverse("handoff:list")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = reverse("handoff:list")
    return back


@require_POST
@login_required
def bulk_reassign(request: HttpRequest) -> HttpResponse:
    access = selectors.access_for(user=request.user)
    if not (access.is_manager or access.is_admin):
        raise PermissionDenied
    reps = _reps_of(_visible_teams(request.user))
    form = BulkReassignForm(request.POST, reps=reps)
    back = _back(request)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        return redirect(back)
    # Only handoffs the user manages: ids of others are left out as if not sent.
    handoffs = [
        handoff
        for handoff in selectors.handoffs_visible_to(user=request.user).filter(
            pk__in=form.cleaned_data["handoff"]
        )
        if selectors.can_manage(user=request.user, handoff=handoff)
    ]
    choice = form.cleaned_data["rep"]
    to_rep = None if choice == ROUND_ROBIN else next(r for r in reps if str(r.pk) == choice)
    try:
        result = routing.handoff_bulk_reassign(
            handoffs=handoffs,
            to_rep=to_rep,
            actor=cast(User, request.user),
            reason=form.cleaned_data["reason"],
        )
    except DomainError as error:
        messages.error(request, error.message)
        return redirect(back)
    if result.moved:
        messages.success(
            request,
            ngettext("%(n)d handoff reassigned.", "%(n)d handoffs reassigned.", len(result.moved))
            % {"n": len(result.moved)},
        )
    names = dict(Handoff.objects.filter(pk__in=result.refused).values_list("pk", "lead__email"))
    for pk, why in result.refused.items():
        messages.warning(request, f"{names.get(pk, pk)}: {why}")
    if not handoffs:
        messages.error(request, _("None of the chosen handoffs is yours to reassign."))
    return redirect(back)
