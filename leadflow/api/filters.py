from __future__ import annotations

import django_filters

from leadflow.models import Lead, Stage

# Numbers from a query string must fit the database column: unbounded, ?company=1e308
# reaches the database and fails there (a 500, found by the API fuzzer); bounded, the
# filter answers 400 with the field named.
MAX_ID = 2**63 - 1  # bigint primary keys
MAX_INT = 2**31 - 1  # integer columns (scores)


def id_filter(field_name: str) -> django_filters.NumberFilter:
    return django_filters.NumberFilter(field_name=field_name, min_value=0, max_value=MAX_ID)


def int_filter(field_name: str, lookup_expr: str = "exact") -> django_filters.NumberFilter:
    return django_filters.NumberFilter(
        field_name=field_name, lookup_expr=lookup_expr, min_value=-MAX_INT, max_value=MAX_INT
    )


class LeadFilter(django_filters.FilterSet):
    email = django_filters.CharFilter(method="filter_email")
    email_contains = django_filters.CharFilter(field_name="email", lookup_expr="icontains")
    stage = django_filters.MultipleChoiceFilter(choices=Stage.choices)
    owner = django_filters.CharFilter(field_name="owner__username")
    source = django_filters.CharFilter(field_name="source")
    company = id_filter("company_id")
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
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
