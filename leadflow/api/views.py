from __future__ import annotations

from django.db.models import Prefetch
from rest_framework import viewsets

from leadflow.api.filters import LeadFilter
from leadflow.api.serializers import LeadDetailSerializer, LeadSerializer
from leadflow.models import Lead, LeadExternalId
from leadflow.selectors import lead_list_for


class LeadViewSet(viewsets.ReadOnlyModelViewSet):
    """Leads the caller may see (a rep: their own; marketing and managers: all)."""

    filterset_class = LeadFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return Lead.objects.none()
        return (
            lead_list_for(self.request.user)
            .prefetch_related(Prefetch("external_ids", queryset=LeadExternalId.objects.all()))
            .order_by("-created_at", "-id")
        )

    def get_serializer_class(self):
        return LeadDetailSerializer if self.action == "retrieve" else LeadSerializer
