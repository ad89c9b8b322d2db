from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from handoff import routing
from handoff.models import (
    Activity,
    Assignment,
    Handoff,
    HandoffClaim,
    HandoffPolicy,
    QueueNotice,
    RejectionReason,
    RepProfile,
    RoutingRule,
    Team,
    TeamMembership,
)
from leadflow.japan import PREFECTURE_CHOICES, Region, join_words
from leadflow.models import Industry


class TeamMembershipInline(admin.TabularInline):
    model = TeamMembership
    extra = 1
    fields = ("rep", "is_active", "last_assigned_at")
    readonly_fields = ("last_assigned_at",)
    raw_id_fields = ("rep",)


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "is_default",
        "account_owner_first",
        "claim_required",
        "claim_window_minutes",
        "member_count",
    )
    filter_horizontal = ("managers",)
    inlines = (TeamMembershipInline,)
    actions = ("assign_queued",)

    @admin.display(description=_("reps"))
    def member_count(self, obj: Team) -> int:
        return obj.memberships.count()

    @admin.action(description=_("Assign queued handoffs to reps who have room"))
    def assign_queued(self, request, queryset) -> None:
        total = 0
        for team in queryset.order_by("pk"):
            total += len(routing.handoff_assign_from_queue(team=team, actor=request.user))
        self.message_user(
            request,
            ngettext("%(n)d queued handoff assigned.", "%(n)d queued handoffs assigned.", total)
            % {"n": total},
            messages.SUCCESS,
        )


@admin.register(RepProfile)
class RepProfileAdmin(admin.ModelAdmin):
    list_display = ("user", "away", "away_until", "max_open_handoffs")
    list_filter = ("away",)
    list_editable = ("away", "away_until", "max_open_handoffs")
    raw_id_fields = ("user",)
    search_fields = ("user__username", "user__last_name", "user__email")


class RoutingRuleForm(forms.ModelForm):
    # The JSON list fields edited as checkboxes: an empty selection matches everything.
    prefectures = forms.MultipleChoiceField(
        label=_("prefectures"),
        choices=PREFECTURE_CHOICES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    regions = forms.MultipleChoiceField(
        label=_("regions"),
        choices=Region.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    industries = forms.MultipleChoiceField(
        label=_("industries"),
        choices=Industry.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = RoutingRule
        fields = [
            "name",
            "order",
            "is_active",
            "team",
            "regions",
            "prefectures",
            "industries",
            "min_employees",
            "max_employees",
        ]

    def clean(self):
        cleaned = super().clean() or {}
        low, high = cleaned.get("min_employees"), cleaned.get("max_employees")
        if low is not None and high is not None and low > high:
            self.add_error("max_employees", _("Must not be below “employees from”."))
        return cleaned


@admin.register(RoutingRule)
class RoutingRuleAdmin(admin.ModelAdmin):
    form = RoutingRuleForm
    list_display = (
        "order",
        "name",
        "team",
        "is_active",
        "region_list",
        "prefecture_list",
        "industry_list",
        "min_employees",
        "max_employees",
    )
    list_display_links = ("name",)
    list_editable = ("order", "is_active")
    list_filter = ("is_active", "team")

    # The lists are stored as codes (kanto, manufacturing): the list shows their labels.
    @admin.display(description=_("regions"))
    def region_list(self, obj: RoutingRule) -> str:
        labels = dict(Region.choices)
        return join_words(labels.get(code, code) for code in obj.regions) or "—"

    @admin.display(description=_("prefectures"))
    def prefecture_list(self, obj: RoutingRule) -> str:
        return join_words(obj.prefectures) or "—"

    @admin.display(description=_("industries"))
    def industry_list(self, obj: RoutingRule) -> str:
        labels = dict(Industry.choices)
        return join_words(labels.get(code, code) for code in obj.industries) or "—"


@admin.register(HandoffPolicy)
class HandoffPolicyAdmin(admin.ModelAdmin):
    list_display = ("__str__", "bant_min_yes")

    def has_add_permission(self, request) -> bool:
        return not HandoffPolicy.objects.exists()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(RejectionReason)
class RejectionReasonAdmin(admin.ModelAdmin):
    list_display = ("order", "code", "label_ja", "label_en", "is_active")
    list_display_links = ("code",)
    list_editable = ("order", "is_active")

    def has_delete_permission(self, request, obj=None) -> bool:
        # Reports group by these codes; switch one off instead of deleting it.
        return False


class _HistoryInline(admin.TabularInline):
    """A handoff's record (assignments, notices, activities): shown, never edited here."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class AssignmentInline(_HistoryInline):
    model = Assignment
    fields = ("assigned_at", "rep", "previous_rep", "via", "by", "reason", "email_sent_at")

    def get_queryset(self, request):
        # The users each row shows, in the same query (else three per assignment).
        return super().get_queryset(request).select_related("rep", "previous_rep", "by")


class QueueNoticeInline(_HistoryInline):
    # Whether the managers were told that this MQL waited in the queue, and when.
    model = QueueNotice
    fields = ("created_at", "email_sent_at", "slack_sent_at")


class ClaimInline(_HistoryInline):
    # Claim or pass on (#19): who had to claim it by when, and what happened.
    model = HandoffClaim
    fk_name = "handoff"
    fields = ("started_at", "rep", "due_at", "status", "claimed_via", "resolved_at", "passed_to")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("rep", "passed_to")


class ActivityInline(_HistoryInline):
    model = Activity
    fields = ("at", "kind", "outcome", "by", "note")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("by")  # else one per activity


@admin.register(Handoff)
class HandoffAdmin(admin.ModelAdmin):
    """Read-mostly: verdicts and assignments go through the services (inbox, API)."""

    list_display = (
        "id",
        "lead",
        "team",
        "assigned_to",
        "status",
        "created_at",
        "assigned_at",
        "first_contact_at",
        "decided_at",
    )
    list_filter = ("status", "team", "rejection_reason", "created_at")
    search_fields = ("lead__email", "lead__last_name", "lead__company__name")
    list_select_related = ("lead", "team", "assigned_to")
    date_hierarchy = "created_at"
    inlines = (AssignmentInline, ClaimInline, QueueNoticeInline, ActivityInline)
    readonly_fields = [f.name for f in Handoff._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Activity)
class ActivityAdmin(admin.ModelAdmin):
    list_display = ("at", "kind", "outcome", "handoff", "by")
    list_filter = ("kind", "outcome", "at")
    list_select_related = ("handoff__lead", "by")
    readonly_fields = ("handoff", "kind", "outcome", "note", "by", "at", "created_at")

    def has_add_permission(self, request) -> bool:
        return False


# The routing plan studio (draft → replay → publish) registers its own pages.
from handoff import plan_views  # noqa: E402, F401
