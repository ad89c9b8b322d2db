from __future__ import annotations

from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from leadflow.api.filters import LeadFilter
from leadflow.api.serializers import LeadDetailSerializer, LeadSerializer
from leadflow.merge import lead_merge, merge_survivor
from leadflow.models import Lead, LeadExternalId
from leadflow.selectors import lead_list_for


class LeadMergeSerializer(serializers.Serializer):
    lead_ids = serializers.ListField(child=serializers.IntegerField(), min_length=2, max_length=2)


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
        if self.action == "merge":
            return LeadMergeSerializer
        return LeadDetailSerializer if self.action == "retrieve" else LeadSerializer

    @extend_schema(request=LeadMergeSerializer, responses=LeadDetailSerializer)
    @action(detail=False, methods=["post"])
    def merge(self, request):
        """Merge two leads (one person): the one further along the journey is kept."""
        if not request.user.has_perm("leadflow.change_duplicatecandidate"):
            raise PermissionDenied()
        serializer = LeadMergeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        first_id, second_id = serializer.validated_data["lead_ids"]
        visible = self.get_queryset()
        first = get_object_or_404(visible, pk=first_id)
        second = get_object_or_404(visible, pk=second_id)
        keep, other = merge_survivor(first, second)
        lead_merge(keep=keep, merge=other, actor=request.user)
        kept = get_object_or_404(self.get_queryset(), pk=keep.pk)
        return Response(LeadDetailSerializer(kept).data, status=status.HTTP_200_OK)
