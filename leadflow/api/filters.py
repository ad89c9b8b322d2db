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

    class Meta:
        model = Lead
        fields = ["email", "stage", "owner", "source", "company"]
