"""The dashboard's figures as JSON under /api/v1/metrics/… — same filters, same access.

?from=YYYY-MM-DD&to=YYYY-MM-DD&team=<id>, all optional (the last 4 weeks, every visible
team). Parameters the schema calls invalid answer 400 in the one error shape, a range
over 366 days or a team the caller does not see 422; reps get 403.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from leadflow.api.filters import EMPTY
from leadflow.errors import MalformedInput
from sla.access import DAY_SCHEMA, DashboardAccess, dashboard_access, metrics_filter_from
from sla.kpis import claim_metrics, metrics, speed_metrics
from sla.kpis.metrics import MetricsFilter
from sla.selectors import calendar_for


class _MetricsApi(APIView):
    needs = "any"  # "sales", "marketing" or "any" of the two
    # A range over 366 days, or a team the caller does not see (leadflow.api.schema).
    error_statuses = {"get": (422,)}

    def figures(self, f: MetricsFilter, access: DashboardAccess) -> Any:
        raise NotImplementedError

    @extend_schema(
        tags=["metrics"],
        parameters=[
            OpenApiParameter(
                "from",
                DAY_SCHEMA,
                description="First day (default: 4 weeks ago); at most 366 days before `to`",
            ),
            OpenApiParameter("to", DAY_SCHEMA, description="Last day, included (default: today)"),
            OpenApiParameter(
                "team",
                {"type": "integer", "minimum": 1},
                description="One team (default: every visible team)",
            ),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response:
        access = dashboard_access(user=request.user)
        if not access.allowed or (self.needs != "any" and not getattr(access, self.needs)):
            raise PermissionDenied
        blank = {
            name: [str(EMPTY)]
            for name in ("from", "to", "team")
            if request.query_params.get(name) == ""
        }
        if blank:  # the pages' forms send "" for "any"; the API's schema calls it invalid
            raise MalformedInput(str(EMPTY), code="invalid_params", fields=blank)
        f = metrics_filter_from(request.query_params, access=access)
        body = {
            "from": f.start,
            "to": f.end,
            "teams": sorted(f.team_ids) if f.team_ids is not None else None,
            "results": self.figures(f, access),
        }
        return Response(metrics.as_json(body))


class MetricsSummaryApi(_MetricsApi):
    def figures(self, f, access):
        data = metrics.summary(f)
        result = {
            "kpis": [kpi.__dict__ for kpi in metrics.kpis(data)],
            "mqls": data["mqls"],
            "sqls": data["sqls"],
            "won": data["won"],
            "rejected": data["rejected"],
            "open": data["open"],
            "mql_to_sql_percent": data["mql_to_sql_percent"],
            "sql_to_won_percent": data["sql_to_won_percent"],
            "avg_first_contact_hours": data["avg_first_contact_hours"],
            "median_first_contact_hours": data["median_first_contact_hours"],
            "sla_compliance_percent": data["sla_compliance_percent"],
        }
        if access.sales:
            result["obligations"] = metrics.obligations(data)
        return result


class MetricsWeeklyApi(_MetricsApi):
    def figures(self, f, access):
        return metrics.weekly(f)


class MetricsRepsApi(_MetricsApi):
    needs = "sales"

    def figures(self, f, access):
        return metrics.per_rep(f)


class MetricsClaimsApi(_MetricsApi):
    """Claim or pass on (#19): time to claim and passes, per rep."""

    needs = "sales"

    def figures(self, f, access):
        return claim_metrics.claim_figures(f)


class MetricsSourcesApi(_MetricsApi):
    def figures(self, f, access):
        return metrics.per_source(f)


class MetricsRejectionsApi(_MetricsApi):
    def figures(self, f, access):
        return metrics.rejection_reasons(f)


class MetricsMarketingApi(_MetricsApi):
    needs = "marketing"

    def figures(self, f, access):
        return metrics.marketing(f)


class MetricsOverdueApi(_MetricsApi):
    needs = "sales"

    def figures(self, f, access):
        now = timezone.now()
        return [
            {
                "handoff": timer.handoff_id,
                "lead": timer.handoff.lead_id,
                "lead_name": timer.handoff.lead.full_name or timer.handoff.lead.email,
                "team": timer.handoff.team_id,
                "rep": timer.handoff.assigned_to_id,
                "obligation": timer.kind,
                "due_at": timer.due_at,
                "overdue_hours": metrics.hours(now - timer.due_at),
            }
            for timer in metrics.overdue(f, now=now)
        ]


class MetricsSpeedApi(_MetricsApi):
    """Speed to lead: hop medians/p90 (overall, per source and team, per rep for sales;
    read from per-day histograms, within `hops.error_percent` % of the exact values, as of
    `hops.as_of`), first-contact delay buckets with MQL → SQL and SQL → won (95 % Wilson
    intervals), and for sales the deadlines about to break."""

    def figures(self, f, access):
        hops = speed_metrics.hop_figures(f)
        if not access.sales:
            hops["groups"].pop("rep")
        result: dict[str, Any] = {
            "hops": hops,
            "delays": speed_metrics.delay_outcomes(f),
            "observational": True,
        }
        if access.sales:
            forecast = speed_metrics.forecast(f, calendar=calendar_for())
            result["forecast"] = [
                {
                    "window": window["key"],
                    "start": window["start"],
                    "end": window["end"],
                    "expected_mqls": window["expected_mqls"],
                    "more": window["more"],
                    "at_risk": [
                        {
                            "handoff": item["timer"].handoff_id,
                            "obligation": item["timer"].kind,
                            "due_at": item["timer"].due_at,
                            "rep": item["timer"].handoff.assigned_to_id,
                            "why": item["why"],
                        }
                        for item in window["at_risk"]
                    ],
                }
                for window in forecast["windows"]
            ]
        return result
