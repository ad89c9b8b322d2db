from __future__ import annotations

from rest_framework import serializers

from leadflow.models import Company, EngagementEvent, Lead, StageTransition


class CompanySerializer(serializers.ModelSerializer):
    class Meta:
        model = Company
        fields = [
            "id",
            "name",
            "name_kana",
            "domain",
            "employee_count",
            "revenue_band",
            "industry",
            "prefecture",
            "region",
        ]


class LeadSerializer(serializers.ModelSerializer):
    # allow_null on what a lead may lack, so the schema says what the API answers.
    company = CompanySerializer(read_only=True, allow_null=True)
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    external_ids = serializers.SerializerMethodField()
    # The stored scores (as of the last scoring); /api/v1/leads/{id}/score/ explains them.
    fit_score = serializers.IntegerField(
        source="score.fit", read_only=True, default=None, allow_null=True
    )
    engagement_score = serializers.IntegerField(
        source="score.engagement", read_only=True, default=None, allow_null=True
    )

    class Meta:
        model = Lead
        fields = [
            "id",
            "email",
            "last_name",
            "first_name",
            "last_name_kana",
            "first_name_kana",
            "company",
            "department",
            "job_title",
            "role",
            "phone",
            "source",
            "stage",
            "stage_changed_at",
            "fit_score",
            "engagement_score",
            "owner",
            "attributes",
            "external_ids",
            "created_at",
            "updated_at",
        ]

    def get_external_ids(self, lead: Lead) -> dict[str, str]:
        return {link.system: link.external_id for link in lead.external_ids.all()}


class EngagementEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = EngagementEvent
        fields = ["id", "kind", "occurred_at", "properties", "source", "external_id"]


class StageTransitionSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_display", read_only=True)

    class Meta:
        model = StageTransition
        fields = ["id", "from_stage", "to_stage", "occurred_at", "actor", "reason", "context"]


class LeadDetailSerializer(LeadSerializer):
    events = serializers.SerializerMethodField()
    transitions = serializers.SerializerMethodField()

    class Meta(LeadSerializer.Meta):
        fields = [*LeadSerializer.Meta.fields, "events", "transitions"]

    # The newest 200 events: a lead's full history can be thousands of page views.
    def get_events(self, lead: Lead) -> list[dict]:
        events = lead.events.order_by("-occurred_at", "-id")[:200]
        return EngagementEventSerializer(events, many=True).data

    def get_transitions(self, lead: Lead) -> list[dict]:
        transitions = lead.transitions.select_related("actor_user").order_by("occurred_at", "id")
        return StageTransitionSerializer(transitions, many=True).data
