from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Count
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from rest_framework.authtoken.admin import TokenAdmin as DrfTokenAdmin
from rest_framework.authtoken.models import TokenProxy

from leadflow.admin_inlines import ReadOnlyAdmin
from leadflow.errors import DomainError
from leadflow.forms import LeadForm
from leadflow.japan import join_words
from leadflow.lifecycle import lead_transition
from leadflow.merge import lead_merge, merge_survivor
from leadflow.models import (
    Company,
    DuplicateCandidate,
    EngagementEvent,
    Lead,
    LeadExternalId,
    LeadMerge,
    Stage,
    StageTransition,
    User,
)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "email", "last_name", "first_name", "roles", "is_active")
    list_filter = ("groups", "is_staff", "is_active")

    @admin.display(description=_("roles"))
    def roles(self, obj: User) -> str:
        return join_words(group.name for group in obj.groups.all())

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")


@admin.register(Company)
class CompanyAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "domain",
        "industry",
        "employee_count",
        "revenue_band",
        "prefecture",
        "region",
        "owner",
        "lead_count",
    )
    list_filter = ("industry", "region", "revenue_band", "prefecture")
    list_select_related = ("owner",)
    search_fields = ("name", "name_kana", "domain")
    readonly_fields = ("region", "created_at", "updated_at")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "owner":
            # Only people who can be handed an MQL: active members of a sales team.
            kwargs["queryset"] = (
                User.objects.filter(is_active=True, team_memberships__isnull=False)
                .distinct()
                .order_by("last_name", "first_name", "username")
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(lead_count=Count("leads"))

    @admin.display(description=_("leads"), ordering="lead_count")
    def lead_count(self, obj) -> int:
        return obj.lead_count


class ExternalIdInline(admin.TabularInline):
    model = LeadExternalId
    extra = 0
    fields = ("system", "external_id", "created_at")
    readonly_fields = ("created_at",)


class TransitionInline(admin.TabularInline):
    model = StageTransition
    extra = 0
    can_delete = False
    fields = ("occurred_at", "from_stage", "to_stage", "actor_user", "actor_system", "reason")
    readonly_fields = fields
    ordering = ("-occurred_at", "-id")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor_user")  # else one per row

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # only the lifecycle service writes transitions


class MoveStageForm(ActionForm):
    to_stage = forms.ChoiceField(
        label=_("to stage"), choices=[("", "---"), *Stage.choices], required=False
    )
    reason = forms.CharField(label=_("reason"), required=False)


@admin.register(Lead)
class LeadAdmin(admin.ModelAdmin):
    form = LeadForm
    list_display = (
        "email",
        "full_name",
        "company",
        "stage",
        "owner",
        "source",
        "created_at",
    )
    list_filter = ("stage", "source", "role", "company__industry", "company__region", "created_at")
    search_fields = (
        "email",
        "last_name",
        "first_name",
        "last_name_kana",
        "first_name_kana",
        "company__name",
        "phone",
    )
    list_select_related = ("company", "owner")
    autocomplete_fields = ("company",)
    raw_id_fields = ("owner",)
    readonly_fields = ("stage", "stage_changed_at", "created_at", "updated_at", "events_link")
    date_hierarchy = "created_at"
    inlines = (ExternalIdInline, TransitionInline)
    action_form = MoveStageForm
    actions = ("move_to_stage",)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "email",
                    ("last_name", "first_name"),
                    ("last_name_kana", "first_name_kana"),
                    "phone",
                )
            },
        ),
        (_("Company and role"), {"fields": ("company", "department", "job_title", "role")}),
        (_("Journey"), {"fields": ("stage", "stage_changed_at", "owner", "source", "events_link")}),
        (_("More"), {"fields": ("attributes", "created_at", "updated_at")}),
    )

    @admin.display(description=_("name"), ordering="last_name")
    def full_name(self, obj: Lead) -> str:
        return obj.full_name

    @admin.display(description=_("engagement events"))
    def events_link(self, obj: Lead) -> str:
        if not obj.pk:
            return "-"
        url = reverse("admin:leadflow_engagementevent_changelist") + f"?lead__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, _("Show the engagement timeline"))

    @admin.action(description=_("Move selected leads to a stage"), permissions=["change"])
    def move_to_stage(self, request, queryset) -> None:
        to_stage = request.POST.get("to_stage", "")
        reason = request.POST.get("reason", "")
        if not to_stage:
            self.message_user(request, _("Choose the stage to move to."), messages.ERROR)
            return
        moved = 0
        for lead in queryset.order_by("pk"):
            try:
                lead_transition(lead=lead, to_stage=to_stage, actor=request.user, reason=reason)
                moved += 1
            except DomainError as error:
                self.message_user(request, f"{lead.email}: {error.message}", messages.WARNING)
        if moved:
            self.message_user(
                request,
                ngettext("Moved %(n)d lead.", "Moved %(n)d leads.", moved) % {"n": moved},
                messages.SUCCESS,
            )


@admin.register(EngagementEvent)
class EngagementEventAdmin(admin.ModelAdmin):
    list_display = ("occurred_at", "kind", "lead", "source", "external_id")
    list_filter = ("kind", "source", "occurred_at")
    search_fields = ("lead__email", "external_id")
    list_select_related = ("lead",)
    raw_id_fields = ("lead",)
    date_hierarchy = "occurred_at"


@admin.register(StageTransition)
class StageTransitionAdmin(ReadOnlyAdmin):
    # The audit log is append-only and written by the lifecycle service alone.
    list_display = ("occurred_at", "lead", "from_stage", "to_stage", "actor_display", "reason")
    list_filter = ("to_stage", "from_stage", "actor_system", "occurred_at")
    search_fields = ("lead__email", "reason")
    list_select_related = ("lead", "actor_user")
    date_hierarchy = "occurred_at"

    @admin.display(description=_("by"))
    def actor_display(self, obj: StageTransition) -> str:
        return obj.actor_display


@admin.register(LeadMerge)
class LeadMergeAdmin(ReadOnlyAdmin):
    list_display = ("merged_at", "kept", "merged_email", "merged_lead_id", "actor_user")
    search_fields = ("merged_email", "kept__email")
    list_select_related = ("kept", "actor_user")
    readonly_fields = [f.name for f in LeadMerge._meta.fields]


@admin.register(LeadExternalId)
class LeadExternalIdAdmin(admin.ModelAdmin):
    list_display = ("system", "external_id", "lead", "created_at")
    list_filter = ("system",)
    search_fields = ("external_id", "lead__email")
    raw_id_fields = ("lead",)


admin.site.site_header = _("LeadFlow administration")
admin.site.site_title = _("LeadFlow")


@admin.register(DuplicateCandidate)
class DuplicateCandidateAdmin(admin.ModelAdmin):
    list_display = ("detected_at", "lead_a", "lead_b", "evidence_summary", "status")
    list_filter = ("status",)
    search_fields = ("lead_a__email", "lead_b__email")
    list_select_related = ("lead_a", "lead_b")
    readonly_fields = ("lead_a", "lead_b", "evidence", "detected_at", "resolved_at", "resolved_by")
    actions = ("merge", "dismiss")

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description=_("Merge each pair into one lead"), permissions=["change"])
    def merge(self, request, queryset) -> None:
        merged = 0
        for candidate in queryset.filter(status=DuplicateCandidate.Status.OPEN).select_related(
            "lead_a", "lead_b"
        ):
            keep, other = merge_survivor(candidate.lead_a, candidate.lead_b)
            try:
                lead_merge(keep=keep, merge=other, actor=request.user)
                merged += 1
            except DomainError as error:
                self.message_user(request, f"{candidate}: {error.message}", messages.WARNING)
        if merged:
            self.message_user(
                request,
                ngettext("Merged %(n)d pair.", "Merged %(n)d pairs.", merged) % {"n": merged},
            )

    @admin.display(description=_("evidence"))
    def evidence_summary(self, obj: DuplicateCandidate) -> str:
        return ", ".join(f"{item['kind']}: {item['value']}" for item in obj.evidence)

    @admin.action(description=_("Not the same person"), permissions=["change"])
    def dismiss(self, request, queryset) -> None:
        from django.utils import timezone

        count = queryset.filter(status=DuplicateCandidate.Status.OPEN).update(
            status=DuplicateCandidate.Status.DISMISSED,
            resolved_at=timezone.now(),
            resolved_by=request.user,
        )
        self.message_user(
            request,
            ngettext("Dismissed %(n)d pair.", "Dismissed %(n)d pairs.", count) % {"n": count},
        )


# API tokens: DRF's admin lists every full key, i.e. every user's credential on one
# screen. Ours shows only the last characters; revoking is deleting the row (the key
# stops working at once), adding one creates a fresh key for a user.
admin.site.unregister(TokenProxy)


@admin.register(TokenProxy)
class ApiTokenAdmin(DrfTokenAdmin):
    list_display = ("key_ending", "user", "created")

    @admin.display(description=_("key"))
    def key_ending(self, obj: TokenProxy) -> str:
        return f"…{obj.key[-4:]}"
