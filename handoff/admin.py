from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from handoff import routing
from handoff.models import (
    Activity,
    Assignment,
    Handoff,
    HandoffClaim,
    HandoffPolicy,
    HandoffStatus,
    QueueNotice,
    RejectionReason,
    RepProfile,
    RoutingRule,
    Team,
    TeamMembership,
)
from leadflow.admin_inlines import ReadOnlyAdmin
from leadflow.japan import PREFECTURE_CHOICES, Region, join_words
from leadflow.models import Industry, MqlWave


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


# What a wave's MQLs are now, counted over its handoffs by one subquery each (on the wave
# foreign key's index), in the changelist's query for its page of rows: the page costs
# the same queries for 1 wave or 100, and the changelist's counts and date hierarchy stay
# plain queries over the waves (a join to the handoffs there would read every handoff of
# every wave, 64,000 for one publish). Held: waiting in the queue with the clock stopped
# (Handoff.clock_waits); released: left the hold when its lead raised its hand
# (handoff.waves).
_HELD = Q(status=HandoffStatus.OPEN, assigned_to__isnull=True, wave_released_at__isnull=True)
_WITH_REP = Q(assigned_to__isnull=False)
_RELEASED = Q(wave_released_at__isnull=False)


def _handoffs_counted(condition: Q | None = None) -> Coalesce:
    counted = (
        Handoff.objects.filter(condition or Q(), wave_id=OuterRef("pk"))
        .order_by()
        .values("wave_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted), 0)


@admin.register(MqlWave)
class MqlWaveAdmin(ReadOnlyAdmin):
    """Read-only for everyone, superusers too: a wave is written by a publish's rescore
    or a large import (scoring.services), never by hand, and its counts are its
    handoffs'. Here, not in leadflow's admin: what became of a wave's MQLs (held,
    with a rep) is handoff's to say. Nothing on it is secret; the user who started it
    shows as Django shows a read-only user, linked only for staff who may view users."""

    list_display = (
        "started_at",
        "kind",
        "label",
        "mql_count",
        "assigned",
        "with_rep_count",
        "held_count",
        "released_count",
        "finished_at",
    )
    list_display_links = ("started_at", "label")
    list_filter = ("kind", "started_at")
    date_hierarchy = "started_at"
    search_fields = ("label",)
    fields = (
        "kind",
        "label",
        "started_by",
        "started_at",
        "finished_at",
        "mql_count",
        "assigned",
        "with_rep_count",
        "held_count",
        "released_count",
        "handoffs_link",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("started_by")
            .annotate(
                mql_total=_handoffs_counted(),
                with_rep=_handoffs_counted(_WITH_REP),
                held_now=_handoffs_counted(_HELD),
                released=_handoffs_counted(_RELEASED),
            )
        )

    @admin.display(description=_("MQLs"), ordering="mql_total")
    def mql_count(self, obj: MqlWave) -> int:
        return obj.mql_total  # type: ignore[attr-defined]

    @admin.display(description=_("with a rep now"), ordering="with_rep")
    def with_rep_count(self, obj: MqlWave) -> int:
        return obj.with_rep  # type: ignore[attr-defined]

    @admin.display(description=_("still held in the queue"), ordering="held_now")
    def held_count(self, obj: MqlWave) -> int:
        return obj.held_now  # type: ignore[attr-defined]

    @admin.display(description=_("left on a hand-raise"), ordering="released")
    def released_count(self, obj: MqlWave) -> int:
        return obj.released  # type: ignore[attr-defined]

    @admin.display(description=_("handoffs"))
    def handoffs_link(self, obj: MqlWave) -> str:
        base = reverse("handoff:list")
        every = urlencode({"wave": obj.pk})
        held = urlencode({"wave": obj.pk, "status": HandoffStatus.OPEN, "queued": "true"})
        return format_html(
            '<a href="{}?{}">{}</a> · <a href="{}?{}">{}</a>',
            base,
            every,
            _("all its MQLs"),
            base,
            held,
            _("those still in the queue"),
        )


# The routing plan studio (draft → replay → publish) registers its own pages.
from handoff import plan_views  # noqa: E402, F401
