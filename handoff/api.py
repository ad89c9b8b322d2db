"""REST API for handoffs: the same access rules (selectors) and rules (services) as the
pages. Serializers only shape input; what is allowed is the services' to say, so a missing
rejection reason reads the same here as on the page."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from handoff import activities, availability, claims, routing, selectors, verdicts
from handoff.filters import HandoffApiFilter
from handoff.models import (
    Activity,
    ActivityKind,
    ActivityOutcome,
    Handoff,
    HandoffClaim,
)
from leadflow.api.fields import DateTimeField
from leadflow.errors import DomainError
from leadflow.models import User


class _UserSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="__str__", read_only=True)

    class Meta:
        model = User
        fields = ["id", "username", "name"]


class _LeadSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    name = serializers.CharField(source="full_name")
    stage = serializers.CharField()
    company = serializers.CharField(source="company.name", default=None, allow_null=True)


class HandoffSerializer(serializers.ModelSerializer):
    lead = _LeadSerializer(read_only=True)
    team = serializers.CharField(source="team.name", default=None, read_only=True, allow_null=True)
    team_id = serializers.IntegerField(read_only=True, allow_null=True)
    assigned_to = _UserSerializer(read_only=True, allow_null=True)
    bant = serializers.DictField(child=serializers.BooleanField(allow_null=True), read_only=True)
    rejection_reason = serializers.CharField(
        source="rejection_reason.code", default=None, read_only=True, allow_null=True
    )

    class Meta:
        model = Handoff
        fields = [
            "id",
            "lead",
            "team",
            "team_id",
            "assigned_to",
            "status",
            "created_at",
            "assigned_at",
            "first_contact_at",
            "decided_at",
            "bant",
            "rejection_reason",
            "rejection_comment",
        ]


class ActivitySerializer(serializers.ModelSerializer):
    by = _UserSerializer(read_only=True)

    class Meta:
        model = Activity
        fields = ["id", "kind", "outcome", "note", "by", "at"]


class ClaimSerializer(serializers.ModelSerializer):
    """A claim window (handoff.claims): who had to claim by when, and what happened."""

    rep = _UserSerializer(read_only=True)
    passed_to = _UserSerializer(read_only=True, allow_null=True)
    started_at = DateTimeField(read_only=True)
    due_at = DateTimeField(read_only=True)
    resolved_at = DateTimeField(read_only=True, allow_null=True)

    class Meta:
        model = HandoffClaim
        fields = [
            "id",
            "rep",
            "started_at",
            "due_at",
            "status",
            "claimed_via",
            "resolved_at",
            "passed_to",
            "reason",
        ]


class ActivityInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ActivityKind.choices)
    outcome = serializers.ChoiceField(choices=ActivityOutcome.choices)
    note = serializers.CharField(required=False, allow_blank=True, default="")
    at = DateTimeField(required=False, allow_null=True, default=None)


class BantInput(serializers.Serializer):
    # Each item named, so the schema says which there are; like any DRF serializer, other
    # keys are ignored (an unknown key was a 400 for a body the schema called valid). The
    # service says how many must be met. An item left out stays unknown.
    budget = serializers.BooleanField(required=False)
    authority = serializers.BooleanField(required=False)
    need = serializers.BooleanField(required=False)
    timeline = serializers.BooleanField(required=False)


class AcceptInput(serializers.Serializer):
    bant = BantInput()


class RejectInput(serializers.Serializer):
    # Optional here on purpose: the service says what is missing, in the same words as
    # the page's form.
    # A code, not a related field: which codes exist is a database row's to say, so an
    # unknown one is the service's refusal (422) with the missing parts, not a 400.
    reason = serializers.CharField(
        required=False,
        allow_null=True,
        default=None,
        help_text="A rejection reason's code (Admin → Rejection reasons), e.g. not_reachable.",
    )
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class ReassignInput(serializers.Serializer):
    rep = serializers.PrimaryKeyRelatedField(queryset=User.objects.all())
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class HandoffViewSet(viewsets.ReadOnlyModelViewSet):
    """Handoffs the caller may see: a rep their own, a manager their teams', marketing all."""

    serializer_class = HandoffSerializer
    # The pages' filters (handoff.filters), newest first unless ?sort= says otherwise.
    filterset_class = HandoffApiFilter
    # A rule across well-formed parameters (a range upside down, an unknown figure).
    error_statuses = {"list": (422,), "claims": (422,)}  # claims: nothing to claim

    def get_queryset(self) -> QuerySet[Handoff]:
        return selectors.handoffs_visible_to(user=self.request.user).select_related(
            "lead__company", "team", "assigned_to", "rejection_reason"
        )

    def _actable(self, *, manage: bool = False) -> Handoff:
        handoff = self.get_object()  # 404 when not visible: ids are not to be guessed
        allowed = selectors.can_manage if manage else selectors.can_act
        if not allowed(user=self.request.user, handoff=handoff):
            raise PermissionDenied("You can see this handoff but not act on it.")
        return handoff

    def _fresh(self, handoff: Handoff) -> Response:
        return Response(HandoffSerializer(self.get_queryset().get(pk=handoff.pk)).data)

    @extend_schema(request=AcceptInput, responses=HandoffSerializer)
    @action(detail=True, methods=["post"])
    def accept(self, request: Request, pk: str | None = None) -> Response:
        handoff = self._actable()
        data = AcceptInput(data=request.data)
        data.is_valid(raise_exception=True)
        verdicts.handoff_accept(
            handoff=handoff, actor=request.user, bant=data.validated_data["bant"]
        )
        return self._fresh(handoff)

    @extend_schema(request=RejectInput, responses=HandoffSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str | None = None) -> Response:
        handoff = self._actable()
        data = RejectInput(data=request.data)
        data.is_valid(raise_exception=True)
        verdicts.handoff_reject(
            handoff=handoff,
            actor=request.user,
            reason=data.validated_data["reason"],
            comment=data.validated_data["comment"],
        )
        return self._fresh(handoff)

    @extend_schema(request=ReassignInput, responses=HandoffSerializer)
    @action(detail=True, methods=["post"])
    def reassign(self, request: Request, pk: str | None = None) -> Response:
        handoff = self._actable(manage=True)
        data = ReassignInput(data=request.data)
        data.is_valid(raise_exception=True)
        routing.handoff_reassign(
            handoff=handoff,
            to_rep=data.validated_data["rep"],
            actor=request.user,
            reason=data.validated_data["reason"],
        )
        return self._fresh(handoff)

    @extend_schema(methods=["GET"], responses=ActivitySerializer(many=True))
    @extend_schema(methods=["POST"], request=ActivityInput, responses={201: ActivitySerializer})
    # Not paginated: a handoff has a handful of activities, answered as a plain list. Not
    # filtered either: the list's ?status=/?team= would otherwise apply to (and be
    # documented for) the one handoff addressed.
    @action(detail=True, methods=["get", "post"], pagination_class=None, filter_backends=[])
    def activities(self, request: Request, pk: str | None = None) -> Response:
        # DRF routes HEAD to the GET handler: it must read, not fall through to logging.
        if request.method in ("GET", "HEAD"):
            handoff = self.get_object()
            rows = Activity.objects.filter(handoff=handoff).select_related("by")
            return Response(ActivitySerializer(rows.order_by("-at", "-id"), many=True).data)
        handoff = self._actable()
        data = ActivityInput(data=request.data)
        data.is_valid(raise_exception=True)
        activity = activities.activity_log(
            handoff=handoff, actor=request.user, **data.validated_data
        )
        return Response(ActivitySerializer(activity).data, status=status.HTTP_201_CREATED)

    @extend_schema(methods=["GET"], responses=ClaimSerializer(many=True))
    @extend_schema(methods=["POST"], request=None, responses=ClaimSerializer)
    # Claim or pass on (#19): the windows, oldest first; POST claims the caller's pending one.
    @action(detail=True, methods=["get", "post"], pagination_class=None, filter_backends=[])
    def claims(self, request: Request, pk: str | None = None) -> Response:
        if request.method in ("GET", "HEAD"):
            handoff = self.get_object()
            rows = HandoffClaim.objects.filter(handoff=handoff).select_related("rep", "passed_to")
            return Response(ClaimSerializer(rows.order_by("started_at", "id"), many=True).data)
        handoff = self._actable()
        claim = claims.claim_acknowledge(handoff=handoff, actor=request.user)
        return Response(ClaimSerializer(claim).data)


class AvailabilitySerializer(serializers.Serializer):
    away = serializers.BooleanField(help_text="Away now: gets no new handoffs.")
    away_until = serializers.DateTimeField(
        allow_null=True, help_text="Back by the clock at this time; null: until set back."
    )


class AvailabilityChangeSerializer(AvailabilitySerializer):
    assigned_from_queue = serializers.ListField(
        child=serializers.IntegerField(),
        help_text="Handoffs the team queues gave the caller on coming back (ids).",
    )


class AvailabilityInput(serializers.Serializer):
    away = serializers.BooleanField()
    # A time without an offset is read in the site's zone (TIME_ZONE, Asia/Tokyo).
    away_until = DateTimeField(required=False, allow_null=True, default=None)


class MyAvailabilityApi(APIView):
    """The caller's own availability (reps only): GET it, PUT away (optionally until a time)
    or back. Coming back hands the caller's teams' queued handoffs out at once."""

    def _availability(self, request: Request) -> selectors.Availability:
        current = selectors.availability_for(user=request.user)
        if not current.is_rep:
            raise PermissionDenied(
                _("You are not a rep in any team: there is no availability to set.")
            )
        return current

    @staticmethod
    def _state(current: selectors.Availability) -> dict:
        return {"away": current.away, "away_until": current.until}

    @extend_schema(responses=AvailabilitySerializer)
    def get(self, request: Request) -> Response:
        return Response(AvailabilitySerializer(self._state(self._availability(request))).data)

    @extend_schema(request=AvailabilityInput, responses=AvailabilityChangeSerializer)
    def put(self, request: Request) -> Response:
        self._availability(request)
        data = AvailabilityInput(data=request.data)
        data.is_valid(raise_exception=True)
        assigned: list[int] = []
        if not data.validated_data["away"] and data.validated_data["away_until"] is not None:
            # Each field valid, the pair not: a rule the schema cannot state (422), in the
            # code the service uses for an away_until it refuses.
            message = _("Only with away: true; leave it out to come back.")
            raise DomainError(message, code="invalid_away_until", fields={"away_until": [message]})
        if data.validated_data["away"]:
            availability.rep_set_away(
                rep=request.user, actor=request.user, until=data.validated_data["away_until"]
            )
        else:
            comeback = availability.rep_set_back(rep=request.user, actor=request.user)
            assigned = [handoff.pk for handoff in comeback.assigned]
        return Response(
            AvailabilityChangeSerializer(
                {
                    # As it is after the change.
                    **self._state(selectors.availability_for(user=request.user)),
                    "assigned_from_queue": assigned,
                }
            ).data
        )
