from __future__ import annotations

import django_filters

from leadflow.models import Lead, Stage


class LeadFilter(django_filters.FilterSet):
    email = django_filters.CharFilter(field_name="email", lookup_expr="iexact")
    email_contains = django_filters.CharFilter(field_name="email", lookup_expr="icontains")
    stage = django_filters.MultipleChoiceFilter(choices=Stage.choices)
    owner = django_filters.CharFilter(field_name="owner__username")
    source = django_filters.CharFilter(field_name="source")
    company = django_filters.NumberFilter(field_name="company_id")
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    fit_min = django_filters.NumberFilter(field_name="score__fit", lookup_expr="gte")
    fit_max = django_filters.NumberFilter(field_name="score__fit", lookup_expr="lte")
    engagement_min = django_filters.NumberFilter(field_name="score__engagement", lookup_expr="gte")
    engagement_max = django_filters.NumberFilter(field_name="score__engagement", lookup_expr="lte")

    class Meta:
        model = Lead
        fields = ["email", "stage", "owner", "source", "company"]
