from __future__ import annotations

from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView
from rest_framework import serializers, status, viewsets
from rest_framework.authtoken.models import Token
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from leadflow.api.filters import LeadFilter
from leadflow.api.serializers import LeadDetailSerializer, LeadSerializer
from leadflow.merge import lead_merge, merge_survivor
from leadflow.models import Lead, LeadExternalId
from leadflow.selectors import lead_list_for
from leadflow.services import api_token_regenerate, api_token_revoke


class LeadMergeSerializer(serializers.Serializer):
    lead_ids = serializers.ListField(child=serializers.IntegerField(), min_length=2, max_length=2)


class LeadViewSet(viewsets.ReadOnlyModelViewSet):
    """Leads the caller may see (a rep: their own; marketing and managers: all)."""

    filterset_class = LeadFilter
    error_statuses = {"merge": (404,)}  # a lead id the caller does not see

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


class TokenStateSerializer(serializers.Serializer):
    exists = serializers.BooleanField()
    created = serializers.DateTimeField(allow_null=True)
    last4 = serializers.CharField(allow_null=True, help_text="The key's last four characters.")


class NewTokenSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="Shown only in this answer.")
    created = serializers.DateTimeField()


class AccountTokenApi(APIView):
    """The caller's own API token: GET whether there is one, POST to replace it with a new
    one (the old key stops working), DELETE to revoke it."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses=TokenStateSerializer)
    def get(self, request: Request) -> Response:
        token = Token.objects.filter(user=request.user).first()
        return Response(
            TokenStateSerializer(
                {
                    "exists": token is not None,
                    "created": token.created if token else None,
                    "last4": token.key[-4:] if token else None,
                }
            ).data
        )

    @extend_schema(request=None, responses={201: NewTokenSerializer})
    def post(self, request: Request) -> Response:
        token = api_token_regenerate(user=request.user)
        response = Response(
            NewTokenSerializer({"key": token.key, "created": token.created}).data,
            status=status.HTTP_201_CREATED,
        )
        response["Cache-Control"] = "no-store"
        return response

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request) -> Response:
        api_token_revoke(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SchemaApi(SpectacularAPIView):
    """The OpenAPI schema (YAML, or JSON with ?format=json), for signed-in users only.

    A refusal is answered in the API's one JSON error shape: content negotiation picked
    the schema's YAML renderer before the permission check ran, and a client that is
    refused has no schema to read a YAML error by.
    """

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response
