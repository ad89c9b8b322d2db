"""The managers' SLA dashboard, its CSV exports and the reassign action of the overdue list.

Reads go through `sla.kpis.metrics` (set-based, a fixed number of queries); the one write, a
reassignment, goes through `handoff.routing.handoff_reassign`.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from django.views.decorators.http import require_POST, require_safe

from handoff import routing as handoff_routing
from handoff import selectors as handoff_selectors
from handoff.models import HandoffTimeline, Team
from leadflow.errors import DomainError
from leadflow.models import User
from sla.access import (
    DashboardAccess,
    MetricsFilterForm,
    dashboard_access,
    metrics_filter_from,
    visible_teams,
)
from sla.kpis import claim_metrics, metrics, speed_metrics
from sla.kpis.metrics import MetricsFilter
from sla.selectors import calendar_for


def _access_or_403(request: HttpRequest) -> DashboardAccess:
    access = dashboard_access(user=request.user)
    if not access.allowed:
        raise PermissionDenied  # reps: their inbox is where they work
    return access


# The figure behind each KPI card: the handoffs it counts (the numerator of a rate).
KPI_DRILL = {
    "mqls": "mqls",
    "mql_to_sql": "sqls",
    "avg_first_contact": "contacted",
    "median_first_contact": "contacted",
    "sla_compliance": "sla_known",
    "sql_to_won": "won",
}


def _drill_query(f: MetricsFilter, team: int | None) -> str:
    params = {"mql_from": f.start.isoformat(), "mql_to": f.end.isoformat(), "view": "table"}
    if team is not None:
        params["team"] = str(team)
    return urlencode(params)


@require_safe
@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    access = _access_or_403(request)
    form = MetricsFilterForm(request.GET, access=access)
    teams = visible_teams(access)
    if not form.is_valid():
        return render(
            request,
            "sla/dashboard.html",
            {"form": form, "teams": teams, "access": access},
            status=400,
        )
    f = metrics_filter_from(request.GET, access=access)
    now = timezone.now()
    context: dict[str, Any] = {
        "form": form,
        "teams": teams,
        "access": access,
        "filter": f,
        "selected_team": form.cleaned_data.get("team"),
        "query": request.GET.urlencode(),
        # The handoff list (handoff:list) of the same cohort: each figure links to it
        # with its own condition added (kpi=, rep=, source=; sla.kpis.days.KPI_LABELS).
        "drill": _drill_query(f, form.cleaned_data.get("team")),
        "kpi_drill": KPI_DRILL,
    }
    data = metrics.summary(f)
    context.update(
        summary=data,
        kpis=metrics.kpis(data),
        weekly=metrics.weekly(f),
        sources=metrics.per_source(f),
        rejections=metrics.rejection_reasons(f),
    )
    if access.sales:
        overdue = metrics.overdue(f, now=now)
        choices = metrics.reassign_choices(overdue)
        for timer in overdue:
            timer.choices = [  # type: ignore[attr-defined]  # display-only attribute
                rep
                for rep in choices.get(timer.handoff.team_id or 0, [])
                if rep.pk != timer.handoff.assigned_to_id
            ]
        context.update(
            obligations=metrics.obligations(data),
            reps=metrics.per_rep(f),
            overdue=overdue,
            # Claim or pass on (#19): time to claim, passes per rep.
            claim_figures=claim_metrics.claim_figures(f),
        )
    if access.marketing:
        context["marketing"] = metrics.marketing(f)
    months = context["marketing"]["months"] if access.marketing else []
    context["charts"] = metrics.as_json(
        {
            "weekly": context["weekly"],
            # The axes read dates as the tables under them do (2026/10/26), not ISO.
            "week_labels": [date_format(row["week"], "Y/m/d") for row in context["weekly"]],
            "rejections": context["rejections"],
            "months": months,
            "month_labels": [date_format(row["month"], "Y/m") for row in months],
            "labels": {
                "mqls": _("MQLs"),
                "sqls": _("SQLs"),
                "first_contact": _("First contact in time (%)"),
                "target": _("Target"),
                "rejections": _("Rejections"),
            },
        }
    )
    return render(request, "sla/dashboard.html", context)


# --- CSV -------------------------------------------------------------------------------


def _fmt(value: Any) -> Any:
    return "" if value is None else value


def _csv_summary(f: MetricsFilter, access: DashboardAccess) -> tuple[list[str], list[list]]:
    """One row per KPI and obligation, in words (目安内, 時間), not the page's codes, with
    the counts behind each rate so that a spreadsheet can check them."""
    data = metrics.summary(f)
    hours = pgettext("hours", "h")
    rows = [
        [
            k.label,
            _fmt(k.value),
            hours if k.unit == "h" else k.unit,
            k.band,
            metrics.status_label(k.status, has_band=bool(k.band)),
            _fmt(k.numerator),
            _fmt(k.denominator),
        ]
        for k in metrics.kpis(data)
    ]
    if access.sales:
        for row in metrics.obligations(data):
            rows.append(
                [
                    row["label"],
                    _fmt(row["percent"]),
                    "%",
                    f"≥ {row['target']:g} %",
                    metrics.status_label(row["status"]),
                    row["on_time"],
                    row["known"],
                ]
            )
    header = [
        _("KPI"),
        _("Value"),
        _("Unit"),
        _("Target"),
        _("Against the target"),
        _("Counted (numerator)"),
        _("Out of (denominator)"),
    ]
    return header, rows


def _csv_weekly(f: MetricsFilter, access: DashboardAccess) -> tuple[list[str], list[list]]:
    header = [
        _("Week of"),
        _("MQLs"),
        _("SQLs"),
        _("Won"),
        _("MQL → SQL (%)"),
        _("Average time to first contact (h)"),
        _("First contact in time (%)"),
        _("Verdict in time (%)"),
    ]
    rows = [
        [
            row["week"].isoformat(),
            row["mqls"],
            row["sqls"],
            row["won"],
            _fmt(row["mql_to_sql_percent"]),
            _fmt(row["avg_first_contact_hours"]),
            _fmt(row["first_contact_sla_percent"]),
            _fmt(row["verdict_sla_percent"]),
        ]
        for row in metrics.weekly(f)
    ]
    return header, rows


def _csv_reps(f: MetricsFilter, access: DashboardAccess) -> tuple[list[str], list[list]]:
    if not access.sales:
        raise PermissionDenied
    header = [
        _("Rep"),
        _("Handoffs"),
        _("SQLs"),
        _("Rejected"),
        _("Open"),
        _("MQL → SQL (%)"),
        _("Average time to first contact (h)"),
        _("First contact in time (%)"),
        _("Verdict in time (%)"),
        _("Breaches"),
        _("Inherited mid-way"),
    ]
    rows = [
        [
            r["rep"],
            r["handoffs"],
            r["sqls"],
            r["rejected"],
            r["open"],
            _fmt(r["mql_to_sql_percent"]),
            _fmt(r["avg_first_contact_hours"]),
            _fmt(r["first_contact_sla_percent"]),
            _fmt(r["verdict_sla_percent"]),
            r["breaches"],
            r["inherited"],
        ]
        for r in metrics.per_rep(f)
    ]
    return header, rows


def _csv_sources(f: MetricsFilter, access: DashboardAccess) -> tuple[list[str], list[list]]:
    header = [
        _("Source"),
        _("MQLs"),
        _("SQLs"),
        _("Won"),
        _("MQL → SQL (%)"),
        _("SQL → won (%)"),
        _("Average time to first contact (h)"),
        _("First contact in time (%)"),
    ]
    rows = [
        [
            r["source"],
            r["mqls"],
            r["sqls"],
            r["won"],
            _fmt(r["mql_to_sql_percent"]),
            _fmt(r["sql_to_won_percent"]),
            _fmt(r["avg_first_contact_hours"]),
            _fmt(r["first_contact_sla_percent"]),
        ]
        for r in metrics.per_source(f)
    ]
    return header, rows


def _csv_rejections(f: MetricsFilter, access: DashboardAccess) -> tuple[list[str], list[list]]:
    header = [_("Reason"), _("Code"), _("Rejections"), _("Share (%)")]
    rows = [
        [r["reason"], r["code"], r["count"], _fmt(r["percent"])]
        for r in metrics.rejection_reasons(f)
    ]
    return header, rows


def _csv_overdue(f: MetricsFilter, access: DashboardAccess) -> tuple[list[str], list[list]]:
    if not access.sales:
        raise PermissionDenied
    header = [
        _("Lead"),
        _("Company"),
        _("Team"),
        _("Rep"),
        _("Obligation"),
        _("Due"),
        _("Overdue (h)"),
    ]
    now = timezone.now()
    rows = []
    for timer in metrics.overdue(f, now=now, limit=10_000):
        handoff = timer.handoff
        rows.append(
            [
                handoff.lead.full_name or handoff.lead.email,
                handoff.lead.company.name if handoff.lead.company else "",
                str(handoff.team or ""),
                str(handoff.assigned_to or ""),
                timer.get_kind_display(),
                timezone.localtime(timer.due_at).strftime("%Y-%m-%d %H:%M"),
                metrics.hours(now - timer.due_at),
            ]
        )
    return header, rows


def _csv_marketing(f: MetricsFilter, access: DashboardAccess) -> tuple[list[str], list[list]]:
    if not access.marketing:
        raise PermissionDenied
    data = metrics.marketing(f)
    header = [_("Month"), _("MQLs"), _("MQL target"), _("Of target (%)")]
    rows: list[list] = [
        [m["month"].strftime("%Y-%m"), m["mqls"], m["target"], _fmt(m["percent_of_target"])]
        for m in data["months"]
    ]
    rows.append(
        [
            _("MQLs that meet the scoring policy (%)"),
            data["by_policy"],
            "",
            _fmt(data["quality_percent"]),
        ]
    )
    rows.append(
        [
            _("MQLs with every required field (%)"),
            data["complete"],
            "",
            _fmt(data["completeness_percent"]),
        ]
    )
    return header, rows


CSV_TABLES: dict[str, Callable[[MetricsFilter, DashboardAccess], tuple[list[str], list[list]]]] = {
    "summary": _csv_summary,
    "weekly": _csv_weekly,
    "reps": _csv_reps,
    "sources": _csv_sources,
    "rejections": _csv_rejections,
    "overdue": _csv_overdue,
    "marketing": _csv_marketing,
}


@require_safe
@login_required
def export_csv(request: HttpRequest, table: str) -> HttpResponse:
    """Any table of the dashboard as CSV, UTF-8 with a BOM so that Excel (Japanese Windows
    included) opens it as UTF-8 rather than guessing Shift_JIS."""
    access = _access_or_403(request)
    build = CSV_TABLES.get(table)
    if build is None:
        raise Http404
    try:
        f = metrics_filter_from(request.GET, access=access)
    except DomainError as error:
        return HttpResponse(error.message, status=400, content_type="text/plain; charset=utf-8")
    header, rows = build(f, access)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="leadflow-{table}-{f.start:%Y%m%d}-{f.end:%Y%m%d}.csv"'
    )
    response.write("\ufeff")
    writer = csv.writer(response)
    writer.writerow(header)
    writer.writerows(rows)
    return response


# --- reassign from the overdue list ------------------------------------------------------------


@require_POST
@login_required
def reassign(request: HttpRequest, pk: int) -> HttpResponse:
    handoff = handoff_selectors.handoff_detail(user=request.user, pk=pk)
    if handoff is None:
        raise Http404
    if not handoff_selectors.can_manage(user=request.user, handoff=handoff):
        raise PermissionDenied
    back = request.POST.get("next") or reverse("sla:dashboard")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = reverse("sla:dashboard")
    rep = (
        handoff_selectors.reassign_candidates(handoff=handoff)
        .filter(pk=request.POST.get("rep") or 0)
        .first()
        if (request.POST.get("rep") or "").isdigit()
        else None
    )
    if rep is None:
        messages.error(request, _("Choose a rep of the team."))
        return redirect(back)
    reason = (request.POST.get("reason") or "").strip() or _("Overdue on the SLA dashboard.")
    try:
        handoff_routing.handoff_reassign(
            handoff=handoff, to_rep=rep, actor=cast(User, request.user), reason=reason
        )
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request,
            _("%(lead)s is now with %(rep)s.") % {"lead": handoff.lead, "rep": rep},
        )
    return redirect(back)


# --- speed to lead ---------------------------------------------------------------------


@require_safe
@login_required
def speed_to_lead(request: HttpRequest) -> HttpResponse:
    access = _access_or_403(request)
    form = MetricsFilterForm(request.GET, access=access)
    teams = visible_teams(access)
    context: dict[str, Any] = {"form": form, "teams": teams, "access": access}
    if not form.is_valid():
        return render(request, "sla/speed.html", context, status=400)
    f = metrics_filter_from(request.GET, access=access)
    context["selected_team"] = form.cleaned_data.get("team")
    hops = speed_metrics.hop_figures(f)
    if not access.sales:
        hops["groups"].pop("rep")  # per-rep figures are the sales managers'
    names = _group_names(hops["groups"])
    drill = request.GET.get("hop", "")
    if drill and drill not in speed_metrics.HOP_KEYS:
        raise Http404
    query = request.GET.copy()
    query.pop("hop", None)
    context.update(
        filter=f,
        hops=[
            {"hop": hop, **hops["overall"][hop.key], "slowest": hop.key == hops["slowest"]}
            for hop in speed_metrics.HOPS
        ],
        groups=[
            {
                "name": group,
                "title": title,
                "rows": [
                    {
                        "label": names[group].get(key, key),
                        "cells": [figures[hop.key] for hop in speed_metrics.HOPS],
                    }
                    for key, figures in hops["groups"][group].items()
                ],
            }
            for group, title in (
                ("source", _("By source")),
                ("team", _("By team")),
                ("rep", _("By rep")),
            )
            if group in hops["groups"]
        ],
        hop_list=speed_metrics.HOPS,
        error_percent=hops["error_percent"],
        as_of=hops["as_of"],
        delays=speed_metrics.delay_outcomes(f),
        drill=next((hop for hop in speed_metrics.HOPS if hop.key == drill), None),
        drill_rows=speed_metrics.hop_handoffs(f, drill) if drill else [],
        query=query.urlencode(),
    )
    if access.sales:
        context["forecast"] = speed_metrics.forecast(f, calendar=calendar_for())
    return render(request, "sla/speed.html", context)


def _group_names(groups: dict[str, dict[Any, Any]]) -> dict[str, dict[Any, str]]:
    """Display names for the team and rep ids of the groups (two small queries)."""
    team_ids = [key for key in groups.get("team", {}) if key is not None]
    rep_ids = [key for key in groups.get("rep", {}) if key is not None]
    names: dict[str, dict[Any, str]] = {
        "source": {"": _("(no source)")},
        "team": {None: _("(team queue)")},
        "rep": {None: _("(no rep)")},
    }
    names["team"].update(Team.objects.filter(pk__in=team_ids).values_list("pk", "name"))
    names["rep"].update((user.pk, str(user)) for user in User.objects.filter(pk__in=rep_ids))
    return names


@require_safe
@login_required
def handoff_speed(request: HttpRequest, pk: int) -> HttpResponse:
    """The handoff page's speed-to-lead timeline (loaded into it by htmx): each instant
    and each hop in clock and business time."""
    handoff = handoff_selectors.handoff_detail(user=request.user, pk=pk)
    if handoff is None:
        raise Http404  # as the handoff page: another rep's id must not reveal it exists
    timeline = HandoffTimeline.objects.filter(handoff=handoff).first()
    hops = speed_metrics.handoff_hops(timeline, calendar_for()) if timeline else []
    return render(
        request, "sla/_handoff_speed.html", {"handoff": handoff, "timeline": timeline, "hops": hops}
    )
