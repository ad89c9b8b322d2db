"""The one handoff list: search, filters and sort shared by the rep inbox, the managers'
team table, the list page (overdue list, dashboard drill-downs) and the API's list.

A FilterSet narrows a queryset the caller has already scoped to what the user may see
(`handoff.selectors.handoffs_visible_to` and friends): no filter here widens anything, so
a rep never reaches another rep's handoff by any combination of parameters.

The SLA states and the KPI drill-down conditions need the timers, which are the `sla`
app's: handoff must not import it, so they are named in `leadflow.reactions`
(LIST_CONDITIONS, KPI_LABELS) and resolved on first use.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, cast

import django_filters
from django import forms
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from handoff.models import Handoff, HandoffStatus
from handoff.selectors import handoffs_order_by_urgency
from leadflow import reactions
from leadflow.api.filters import MAX_INT, FilterSet, bounded_int_filter, datetime_filter, id_filter
from leadflow.errors import DomainError
from leadflow.models import Lead
from leadflow.normalize import search_fold

# The longest search term: more says nothing a name, address or number does not.
MAX_SEARCH_LENGTH = 100
# Dates a range may use (datetime overflows near years 1 and 9999: the dashboard's lesson).
FIRST_DAY = dt.date(2000, 1, 1)
LAST_DAY = dt.date(2099, 12, 31)

SLA_STATES = (
    ("overdue", _("Overdue")),
    ("due_today", _("Due today")),
    ("on_time", _("On time")),
    ("met", _("Met")),
)

SORTS = (
    ("urgency", _("Most urgent")),
    ("newest", _("Newest MQL")),
    ("score", _("Highest score")),
    ("company", _("Company")),
)

# (value, now) → Q over Handoff, or None for a value it does not know: what "SLA state
# overdue" (?sla=) or "the handoffs behind KPI x" (?kpi=) means on a handoff queryset.
ListCondition = Callable[[str, dt.datetime], Q | None]
Choices = list[tuple[str, Any]]


def kpi_choices() -> Choices:
    labels = cast(dict[str, Any], reactions.resolve(reactions.KPI_LABELS))
    return list(labels.items())


def _condition(name: str, value: str, now: dt.datetime) -> Q:
    condition: ListCondition = reactions.resolve(reactions.LIST_CONDITIONS[name])
    found = condition(value, now)
    if found is None:
        raise forms.ValidationError(_("Unknown value."), code="invalid_choice")
    return found


def search_condition(term: str) -> Q:
    """Name, kana, e-mail, phone (the lead's key) or company name and kana (the company's),
    folded the same way (`search_fold`): a substring of the handoff's own search key,
    which the database keeps as the lead's and the company's keys change (handoff
    migration 0012). On PostgreSQL a scan of one trigram index over the handoffs
    (handoff_search_trgm_idx), combined with the lists' other conditions on the same
    rows: no lead or company subquery, no union of ids."""
    folded = search_fold(term)
    if not folded:
        return Q()
    return Q(search_key__contains=folded)


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """00:00 of the day and of the next, in TIME_ZONE (the dashboard's days)."""
    tz = timezone.get_default_timezone()
    start = dt.datetime.combine(day, dt.time(0), tzinfo=tz)
    return start, dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=tz)


def _score_filter(field: str, lookup: str) -> django_filters.NumberFilter:
    # Scores are whole points: ?engagement_max=1.5 is refused (the schema says integer).
    return bounded_int_filter(f"lead__score__{field}", lookup, 0, MAX_INT)


class HandoffListFilter(django_filters.FilterSet):
    """?q=&status=&sla=&team=&rep=&source=&fit_min=&fit_max=&engagement_min=
    &engagement_max=&mql_from=&mql_to=&kpi=&wave=&sort= (all optional)."""

    q = django_filters.CharFilter(
        label=_("Search"), method="filter_q", max_length=MAX_SEARCH_LENGTH
    )
    status = django_filters.ChoiceFilter(label=_("Status"), choices=HandoffStatus.choices)
    queued = django_filters.BooleanFilter(
        label=_("In the team queue"), field_name="assigned_to", lookup_expr="isnull"
    )
    sla = django_filters.ChoiceFilter(label=_("SLA"), choices=SLA_STATES, method="filter_sla")
    team = id_filter("team_id")
    rep = id_filter("assigned_to_id")
    source = django_filters.CharFilter(label=_("Source"), method="filter_source", max_length=100)
    fit_min = _score_filter("fit", "gte")
    fit_max = _score_filter("fit", "lte")
    engagement_min = _score_filter("engagement", "gte")
    engagement_max = _score_filter("engagement", "lte")
    mql_from = django_filters.DateFilter(label=_("MQL from"), method="filter_mql_from")
    mql_to = django_filters.DateFilter(label=_("MQL to"), method="filter_mql_to")
    kpi = django_filters.CharFilter(label=_("Figure"), method="filter_kpi", max_length=40)
    # The MQLs a wave made (the wave's admin page links here, with ?queued=true for those
    # that still wait).
    wave = id_filter("wave_id")
    sort = django_filters.ChoiceFilter(label=_("Sort"), choices=SORTS, method="filter_sort")

    # The order without ?sort=: the pages work most urgent first; the API has always
    # listed newest first (HandoffApiFilter).
    default_sort = "urgency"

    class Meta:
        model = Handoff
        fields: list[str] = []

    def __init__(self, *args, now: dt.datetime | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.now = now or timezone.now()
        self.filters["team"].label = _("Team")
        self.filters["rep"].label = _("Rep")
        self.filters["wave"].label = _("MQL wave")
        for name, label in (
            ("fit_min", _("Fit from")),
            ("fit_max", _("Fit up to")),
            ("engagement_min", _("Engagement from")),
            ("engagement_max", _("Engagement up to")),
        ):
            self.filters[name].label = label

    # --- validation of what no single field knows ------------------------------------

    def _check_dates(self) -> None:
        form = self.form
        for name in ("mql_from", "mql_to"):
            day = form.cleaned_data.get(name)
            if day is not None and not FIRST_DAY <= day <= LAST_DAY:
                form.add_error(
                    name,
                    _("Choose a day between %(first)s and %(last)s.")
                    % {"first": FIRST_DAY.isoformat(), "last": LAST_DAY.isoformat()},
                )
        start, end = form.cleaned_data.get("mql_from"), form.cleaned_data.get("mql_to")
        if start and end and start > end and "mql_from" not in form.errors:
            form.add_error("mql_from", _("The range starts after it ends."))
        for low, high in (("fit_min", "fit_max"), ("engagement_min", "engagement_max")):
            a, b = form.cleaned_data.get(low), form.cleaned_data.get(high)
            if a is not None and b is not None and a > b:
                form.add_error(low, _("The lower bound is above the upper bound."))
        kpi = form.cleaned_data.get("kpi")
        if kpi and kpi not in dict(kpi_choices()):
            form.add_error("kpi", _("Unknown figure."))

    def is_valid(self) -> bool:
        if not self.form.is_valid():
            return False
        self._check_dates()
        return not self.form.errors

    @property
    def qs(self) -> QuerySet[Handoff]:
        if not hasattr(self, "_sorted"):
            # Always through the urgency ordering, for its annotation (each row shows its
            # next deadline); another ?sort= then replaces the order only.
            self._sorted = _sorted(
                handoffs_order_by_urgency(super().qs),
                self.form.cleaned_data.get("sort") or self.default_sort,
            )
        return self._sorted

    # --- the filters ------------------------------------------------------------------

    def filter_q(self, queryset: QuerySet[Handoff], name: str, value: str) -> QuerySet[Handoff]:
        return queryset.filter(search_condition(value)) if value.strip() else queryset

    def filter_source(self, queryset, name: str, value: str) -> QuerySet[Handoff]:
        # The leads of that source among those with a handoff (lead_handoff_source_idx),
        # tested as a set against handoff.lead_id: no join to a million leads to count.
        if not value:
            return queryset
        return queryset.filter(
            lead_id__in=Lead.objects.filter(has_handoff=True, source=value).values("pk")
        )

    def filter_sla(self, queryset: QuerySet[Handoff], name: str, value: str) -> QuerySet[Handoff]:
        return queryset.filter(_condition("sla", value, self.now)) if value else queryset

    def filter_kpi(self, queryset: QuerySet[Handoff], name: str, value: str) -> QuerySet[Handoff]:
        return queryset.filter(_condition("kpi", value, self.now)) if value else queryset

    def filter_mql_from(self, queryset, name: str, value: dt.date):
        return queryset.filter(created_at__gte=day_bounds(value)[0]) if value else queryset

    def filter_mql_to(self, queryset, name: str, value: dt.date):
        return queryset.filter(created_at__lt=day_bounds(value)[1]) if value else queryset

    def filter_sort(self, queryset: QuerySet[Handoff], name: str, value: str) -> QuerySet[Handoff]:
        return queryset  # applied last, in `qs`


def _sorted(queryset: QuerySet[Handoff], sort: str | None) -> QuerySet[Handoff]:
    if sort == "newest":
        return queryset.order_by("-created_at", "-id")
    if sort == "score":
        total = F("lead__score__fit") + F("lead__score__engagement")
        return queryset.alias(score_total=total).order_by(
            F("score_total").desc(nulls_last=True), "-created_at", "-id"
        )
    if sort == "company":
        return queryset.order_by(
            F("lead__company__name").asc(nulls_last=True), "lead__last_name", "id"
        )
    return queryset  # urgency: the order handoffs_order_by_urgency gave


class HandoffApiFilter(FilterSet, HandoffListFilter):
    """The list's filters for /api/v1/handoffs/, taken as the schema types them (FilterSet:
    an empty parameter is a 400, as on every API list), plus the API's older spelling of
    the MQL range as instants, each checked at the door (offsets, years)."""

    created_after = datetime_filter("created_at", "gte")
    created_before = datetime_filter("created_at", "lte")
    default_sort = "newest"

    def is_valid(self) -> bool:
        if not self.form.is_valid():
            return False  # malformed (a wrong type, out of the stated bounds): 400
        self._check_dates()
        if self.form.errors:
            # Each parameter is well-formed and a rule across them refuses (a range upside
            # down, a day outside 2000–2099, an unknown figure): 422, as for every rule.
            fields = {name: list(errors) for name, errors in self.form.errors.items()}
            first = next(iter(fields.values()))[0]
            raise DomainError(first, code="invalid_params", fields=fields)
        return True
