"""GET /api/v1/leads/{id}/score/: a lead's current score with its explanation."""

from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from leadflow.errors import NotFound
from leadflow.selectors import lead_list_for
from scoring.models import LeadScore
from scoring.selectors import lead_score_explain


class CanViewScores(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.has_perm("scoring.view_leadscore"))


class FitLineSerializer(serializers.Serializer):
    rule = serializers.IntegerField(source="rule_id", allow_null=True)
    label = serializers.CharField()
    category = serializers.CharField()
    points = serializers.IntegerField()


class EngagementLineSerializer(serializers.Serializer):
    rule = serializers.IntegerField(source="rule_id")
    label = serializers.CharField()
    count = serializers.IntegerField()
    points_each = serializers.IntegerField()
    raw = serializers.IntegerField()
    capped = serializers.IntegerField()
    decayed = serializers.IntegerField()
    points = serializers.IntegerField()


class ModelRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    version = serializers.IntegerField()
    name = serializers.CharField()


class FitSerializer(serializers.Serializer):
    score = serializers.IntegerField()
    threshold = serializers.IntegerField()
    breakdown = FitLineSerializer(many=True)


class EngagementSerializer(serializers.Serializer):
    score = serializers.IntegerField()
    threshold = serializers.IntegerField()
    breakdown = EngagementLineSerializer(many=True)


class LeadScoreSerializer(serializers.Serializer):
    lead = serializers.IntegerField()
    model = ModelRefSerializer()
    as_of = serializers.DateTimeField()
    computed_at = serializers.DateTimeField()
    fit = FitSerializer()
    engagement = EngagementSerializer()
    hand_raised_at = serializers.DateTimeField(allow_null=True)
    meets_mql_policy = serializers.BooleanField()


class LeadScoreApi(APIView):
    """The lead's fit and engagement under the model version that scored it, as of now
    (engagement decays), each with a breakdown by rule that sums exactly to the score."""

    permission_classes = [permissions.IsAuthenticated, CanViewScores]

    @extend_schema(responses=LeadScoreSerializer)
    def get(self, request: Request, lead_id: int) -> Response:
        # Only leads the caller may see (a rep: their own): another rep's lead is as
        # unknown here as on the lead API, so ids cannot be probed for scores.
        if not lead_list_for(request.user).filter(pk=lead_id).exists():
            raise NotFound(_("Lead %(id)s does not exist.") % {"id": lead_id})
        score = LeadScore.objects.filter(lead_id=lead_id, model__isnull=False).first()
        if score is None:
            raise NotFound(_("Lead %(id)s has not been scored yet.") % {"id": lead_id})
        explanation = lead_score_explain(score=score, at=timezone.now())
        model = explanation.model
        data = {
            "lead": lead_id,
            "model": {"id": model.id, "version": model.version, "name": model.name},
            "as_of": explanation.as_of,
            "computed_at": explanation.computed_at,
            "fit": {
                "score": explanation.fit,
                "threshold": model.fit_threshold,
                "breakdown": explanation.fit_lines,
            },
            "engagement": {
                "score": explanation.engagement,
                "threshold": model.engagement_threshold,
                "breakdown": explanation.engagement_lines,
            },
            "hand_raised_at": explanation.hand_raised_at,
            "meets_mql_policy": explanation.meets_thresholds or explanation.raised_hand,
        }
        return Response(LeadScoreSerializer(data).data)
