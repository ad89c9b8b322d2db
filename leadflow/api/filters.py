from __future__ import annotations

import django_filters
from django import forms
from django.utils.translation import gettext_lazy as _
from django_filters.fields import IsoDateTimeField
from drf_spectacular.drainage import set_override

from leadflow.datetimes import DATETIME_SCHEMA, datetime_problem
from leadflow.models import Lead, Stage

# Numbers from a query string must fit the database column: unbounded, ?company=1e308
# reaches the database and fails there (a 500, found by the API fuzzer); bounded, the
# filter answers 400 with the field named.
MAX_ID = 2**63 - 1  # bigint primary keys
MAX_INT = 2**31 - 1  # integer columns (scores)


class IntegerFilter(django_filters.NumberFilter):
    # NumberFilter reads a decimal: ?engagement_max=1.5 was accepted where the schema
    # says integer. An integer field refuses it.
    field_class = forms.IntegerField


def _integer(field_name: str, lookup_expr: str, low: int, high: int) -> IntegerFilter:
    filter_ = IntegerFilter(
        field_name=field_name, lookup_expr=lookup_expr, min_value=low, max_value=high
    )
    # The bounds in the schema too, so what it calls valid is what the filter takes.
    set_override(filter_, "field", {"type": "integer", "minimum": low, "maximum": high})
    return filter_


def id_filter(field_name: str) -> IntegerFilter:
    return _integer(field_name, "exact", 0, MAX_ID)


def int_filter(field_name: str, lookup_expr: str = "exact") -> IntegerFilter:
    return _integer(field_name, lookup_expr, -MAX_INT, MAX_INT)


def bounded_int_filter(field_name: str, lookup_expr: str, low: int, high: int) -> IntegerFilter:
    """An integer filter refusing values outside [low, high], with the bounds in the schema."""
    return _integer(field_name, lookup_expr, low, high)


class CheckedIsoDateTimeField(IsoDateTimeField):
    """ISO 8601 with leadflow.datetimes' bounds (?created_before=…+20:00 was a 500 on
    PostgreSQL)."""

    def to_python(self, value):
        moment = super().to_python(value)
        problem = moment and datetime_problem(moment)
        if problem:
            raise forms.ValidationError(problem, code="invalid")
        return moment


class DateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = CheckedIsoDateTimeField


def datetime_filter(field_name: str, lookup_expr: str) -> DateTimeFilter:
    filter_ = DateTimeFilter(field_name=field_name, lookup_expr=lookup_expr)
    set_override(filter_, "field", DATETIME_SCHEMA)
    return filter_


EMPTY = _("Give a value, or leave the parameter out.")
NOT_BOOLEAN = _("Give true or false.")


class FilterSet(django_filters.FilterSet):
    """django-filter's FilterSet, taking parameters as the schema types them: one given
    empty (?created_after=, ?fit_min=) or a boolean that is neither true nor false
    (?queued=null) is a 400, where django-filter read each as "no filter"."""

    def get_form_class(self):
        base = super().get_form_class()
        filters = self.filters

        class StrictForm(base):  # type: ignore[valid-type, misc]
            def clean(self):
                cleaned = super().clean()
                for name, filter_ in filters.items():
                    if isinstance(filter_, django_filters.CharFilter) or name not in self.data:
                        continue
                    given = self.data.getlist(name)
                    if any(value == "" for value in given):
                        self.add_error(name, EMPTY)
                    elif isinstance(filter_, django_filters.BooleanFilter) and any(
                        value not in ("true", "false") for value in given
                    ):
                        self.add_error(name, NOT_BOOLEAN)
                return cleaned

        return StrictForm


class LeadFilter(FilterSet):
    email = django_filters.CharFilter(method="filter_email")
    email_contains = django_filters.CharFilter(field_name="email", lookup_expr="icontains")
    stage = django_filters.MultipleChoiceFilter(choices=Stage.choices)
    owner = django_filters.CharFilter(field_name="owner__username")
    source = django_filters.CharFilter(field_name="source")
    company = id_filter("company_id")
    created_after = datetime_filter("created_at", "gte")
    created_before = datetime_filter("created_at", "lt")
    fit_min = int_filter("score__fit", "gte")
    fit_max = int_filter("score__fit", "lte")
    engagement_min = int_filter("score__engagement", "gte")
    engagement_max = int_filter("score__engagement", "lte")

    class Meta:
        model = Lead
        fields = ["email", "stage", "owner", "source", "company"]

    def filter_email(self, queryset, name: str, value: str):
        # Case-insensitive through the unique index (iexact would read every lead).
        return queryset.with_email(value) if value else queryset
