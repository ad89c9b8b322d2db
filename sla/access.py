"""Who sees which part of the dashboard and the metrics API, and for which teams.

Sales managers see the sales side for the teams they manage; marketing sees its own side
(MQL volume, quality, completeness) and the funnel figures that feed back to it (sources,
rejection reasons) for every team; admins see everything. Reps see none of it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from handoff.models import Team
from handoff.selectors import access_for
from leadflow.errors import DomainError, MalformedInput
from sla.kpis.metrics import MAX_RANGE_DAYS, MetricsFilter

DEFAULT_RANGE_DAYS = 28
# The dates a range may use. Python's date stops at years 1 and 9999: ?to=0001-01-01 made
# the default start (to - 27 days) overflow, ?to=9999-12-31 the end of day after it (500s).
FIRST_DAY = dt.date(2000, 1, 1)
LAST_DAY = dt.date(2099, 12, 31)
# What the API schema says of ?from= and ?to= (the years FIRST_DAY..LAST_DAY), so a day
# outside them is input the schema calls invalid (400), not a refusal of a valid one.
DAY_SCHEMA = {"type": "string", "format": "date", "pattern": r"^20[0-9]{2}-[0-9]{2}-[0-9]{2}$"}
# Refusals of well-formed values by a rule (the range between two parameters, which a
# schema cannot state; a team the caller does not see): the API answers them 422.
RULE_CODES = frozenset({"range_reversed", "range_too_long", "team_not_visible", "no_such_team"})


@dataclass(frozen=True)
class DashboardAccess:
    sales: bool = False  # compliance per obligation, per-rep table, overdue list, reassign
    marketing: bool = False  # marketing's side
    team_ids: frozenset[int] | None = frozenset()  # None = every team

    @property
    def allowed(self) -> bool:
        return self.sales or self.marketing


def dashboard_access(*, user) -> DashboardAccess:
    access = access_for(user=user)
    if access.user_id is None:
        return DashboardAccess()
    if access.is_admin:
        return DashboardAccess(sales=True, marketing=True, team_ids=None)
    if access.is_marketing:
        # Marketing reads every team; a marketer who also manages a team gets that team's
        # sales side too (the team filter then offers every team for the marketing figures).
        return DashboardAccess(sales=access.is_manager, marketing=True, team_ids=None)
    if access.is_manager:
        return DashboardAccess(sales=True, team_ids=access.managed_team_ids)
    return DashboardAccess()


def visible_teams(access: DashboardAccess) -> list[Team]:
    teams = Team.objects.order_by("name")
    if access.team_ids is not None:
        teams = teams.filter(pk__in=access.team_ids)
    return list(teams)


class MetricsFilterForm(forms.Form):
    # "from"/"to" are Python keywords: the form reads them from data under these names.
    from_ = forms.DateField(label=gettext_lazy("From"), required=False)
    to = forms.DateField(label=gettext_lazy("To"), required=False)
    team = forms.IntegerField(label=gettext_lazy("Team"), required=False, min_value=1)

    def __init__(self, data, *, access: DashboardAccess, **kwargs) -> None:
        data = data.copy()
        if "from" in data:
            data["from_"] = data.get("from")
        super().__init__(data, **kwargs)
        self.access = access

    def _in_range(self, name: str) -> dt.date | None:
        day = self.cleaned_data.get(name)
        if day is not None and not FIRST_DAY <= day <= LAST_DAY:
            raise forms.ValidationError(
                _("Choose a day between %(first)s and %(last)s.")
                % {"first": FIRST_DAY.isoformat(), "last": LAST_DAY.isoformat()},
                code="out_of_range",
            )
        return day

    def clean_from_(self) -> dt.date | None:
        return self._in_range("from_")

    def clean_to(self) -> dt.date | None:
        return self._in_range("to")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        today = timezone.localdate()
        end = cleaned.get("to") or today
        start = cleaned.get("from_") or end - dt.timedelta(days=DEFAULT_RANGE_DAYS - 1)
        if "from_" in self.errors or "to" in self.errors:
            return cleaned
        if start > end:
            self._refuse("from_", _("The range starts after it ends."), "range_reversed")
        elif (end - start).days + 1 > MAX_RANGE_DAYS:
            message = _("Choose at most %(days)d days.") % {"days": MAX_RANGE_DAYS}
            self._refuse("from_", message, "range_too_long")
        team = cleaned.get("team")
        if (
            team is not None
            and self.access.team_ids is not None
            and team not in self.access.team_ids
        ):
            self._refuse("team", _("You do not see this team."), "team_not_visible")
        elif team is not None and not Team.objects.filter(pk=team).exists():
            self._refuse("team", _("There is no such team."), "no_such_team")
        cleaned["start"], cleaned["end"] = start, end
        return cleaned

    def _refuse(self, name: str, message: str, code: str) -> None:
        self.add_error(name, forms.ValidationError(message, code=code))

    def only_rules_refused(self) -> bool:
        """Every value was well formed; only a rule (RULE_CODES) said no."""
        return all(
            error.code in RULE_CODES
            for errors in self.errors.as_data().values()
            for error in errors
        )

    def errors_by_param(self) -> dict[str, list[str]]:
        return {
            ("from" if name == "from_" else name): [str(e) for e in errors]
            for name, errors in self.errors.items()
        }


def metrics_filter_from(params, *, access: DashboardAccess) -> MetricsFilter:
    """Read ?from=YYYY-MM-DD&to=YYYY-MM-DD&team=<id> (all optional: the last 4 weeks, every
    visible team). Bad values raise DomainError (code invalid_params): MalformedInput (the
    API's 400) when one is not what the schema allows, else a rule's refusal (422)."""
    form = MetricsFilterForm(params, access=access)
    if not form.is_valid():
        fields = form.errors_by_param()
        first = next(iter(fields.values()))[0]
        error = DomainError if form.only_rules_refused() else MalformedInput
        raise error(first, code="invalid_params", fields=fields)
    data = form.cleaned_data
    team = data.get("team")
    team_ids = frozenset({team}) if team is not None else access.team_ids
    return MetricsFilter(start=data["start"], end=data["end"], team_ids=team_ids)
