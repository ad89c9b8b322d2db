"""Privacy API (admins only): record-and-execute erasures, list them, export a person.

Only users with the privacy permissions (superusers; nobody's role has them) get in:
an export is the person's whole file, an erasure cannot be undone.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from leadflow.api.filters import FilterSet, id_filter
from privacy import services
from privacy.models import ErasureRequest


class _HasPerm(permissions.BasePermission):
    perm_for_method: dict[str, str] = {}

    def has_permission(self, request, view) -> bool:
        perm = self.perm_for_method.get(request.method or "")
        return bool(request.user and perm and request.user.has_perm(perm))


class CanErase(_HasPerm):
    perm_for_method = {
        "GET": "privacy.view_erasurerequest",
        "HEAD": "privacy.view_erasurerequest",
        "OPTIONS": "privacy.view_erasurerequest",
        "POST": "privacy.add_erasurerequest",
    }


class CanExport(_HasPerm):
    perm_for_method = {"GET": "privacy.export_person", "HEAD": "privacy.export_person"}


class ErasureRequestSerializer(serializers.ModelSerializer):
    executed_by = serializers.CharField(source="executed_by_display", read_only=True)

    class Meta:
        model = ErasureRequest
        fields = [
            "id",
            "subject_lead_id",
            "requested_by",
            "requested_at",
            "executed_by",
            "executed_at",
            "counts",
            "note",
        ]
        read_only_fields = fields


class ErasureInput(serializers.Serializer):
    email = serializers.EmailField(required=False)
    lead_id = serializers.IntegerField(required=False, min_value=1)
    requested_by = serializers.CharField(max_length=200)
    note = serializers.CharField(required=False, allow_blank=True, default="")
    # "Either email or lead_id" is a rule between two fields the schema cannot state: the
    # service refuses it (invalid_subject, a 422), as it does for the commands.


class ErasureFilter(FilterSet):
    # An id as the schema types it: ?subject_lead_id=0.5 was taken as 0 (no filter).
    subject_lead_id = id_filter("subject_lead_id")

    class Meta:
        model = ErasureRequest
        fields = ["subject_lead_id"]


class ErasureRequestViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Erasure requests: POST erases a person at once and returns the record (counts of
    rows touched per place, no personal data); GET lists the records."""

    permission_classes = [permissions.IsAuthenticated, CanErase]
    error_statuses = {"create": (404,)}  # a lead_id no lead has
    serializer_class = ErasureRequestSerializer
    queryset = ErasureRequest.objects.select_related("executed_by").order_by("-executed_at", "-id")
    filterset_class = ErasureFilter

    @extend_schema(request=ErasureInput, responses={201: ErasureRequestSerializer})
    def create(self, request: Request, *args, **kwargs) -> Response:
        data = ErasureInput(data=request.data)
        data.is_valid(raise_exception=True)
        record = services.erasure_execute(actor=request.user, **data.validated_data)
        return Response(ErasureRequestSerializer(record).data, status=status.HTTP_201_CREATED)


class PersonExportApi(APIView):
    """Everything LeadFlow holds about one person, by ?email= or ?lead_id=."""

    permission_classes = [permissions.IsAuthenticated, CanExport]
    # No such lead (404); neither or both of email and lead_id (422).
    error_statuses = {"get": (404, 422)}

    @extend_schema(
        parameters=[
            OpenApiParameter("email", OpenApiTypes.EMAIL, required=False),
            OpenApiParameter("lead_id", {"type": "integer", "minimum": 1}, required=False),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response:
        query = _ExportQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        document = services.person_data_export(actor=request.user, **query.validated_data)
        response = Response(document)
        response["Cache-Control"] = "no-store"
        return response


class _ExportQuery(serializers.Serializer):
    email = serializers.EmailField(required=False)
    lead_id = serializers.IntegerField(required=False, min_value=1)
    # "Either email or lead_id": the service's refusal (422), as for ErasureInput.
