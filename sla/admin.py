from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from sla.kpis.days import SUMMED_SETTINGS, kpi_days_rebuild
from sla.models import (
    BusinessCalendar,
    CalendarClosure,
    MqlTarget,
    RepWorkingHours,
    SlaSettings,
    SlaTimer,
    TimerPolicy,
)


class ClosureInline(admin.TabularInline):
    model = CalendarClosure
    extra = 1


@admin.register(BusinessCalendar)
class BusinessCalendarAdmin(admin.ModelAdmin):
    list_display = ("name", "is_default", "timezone", "opens_at", "closes_at", "national_holidays")
    inlines = (ClosureInline,)
    fieldsets = (
        (None, {"fields": ("name", "is_default", "timezone", ("opens_at", "closes_at"))}),
        (
            None,
            {
                "fields": (
                    ("monday", "tuesday", "wednesday", "thursday", "friday"),
                    ("saturday", "sunday"),
                    "national_holidays",
                )
            },
        ),
    )


@admin.register(TimerPolicy)
class TimerPolicyAdmin(admin.ModelAdmin):
    list_display = (
        "kind",
        "is_active",
        "amount",
        "unit",
        "counts_business_time",
        "remind_at_percent",
        "notify_manager",
        "reassign_on_breach",
    )
    list_editable = ("is_active", "notify_manager", "reassign_on_breach")

    def has_delete_permission(self, request, obj=None) -> bool:
        # Timers point at their policy; switch a policy off instead of deleting it.
        return False


@admin.register(SlaSettings)
class SlaSettingsAdmin(admin.ModelAdmin):
    fieldsets = (
        (
            _("Sales"),
            {
                "fields": (
                    "min_attempts_not_reachable",
                    "not_reachable_reason_code",
                    "compliance_target_percent",
                )
            },
        ),
        (
            _("Marketing"),
            {"fields": ("monthly_mql_target", "required_fields", "completeness_target_percent")},
        ),
    )

    def has_add_permission(self, request) -> bool:
        return not SlaSettings.objects.exists()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        # The follow-up count, the not-reachable reason and the required fields are part
        # of the dashboard's per-day sums: recompute them all. The targets are read live.
        if change and SUMMED_SETTINGS & set(form.changed_data):
            kpi_days_rebuild()


@admin.register(MqlTarget)
class MqlTargetAdmin(admin.ModelAdmin):
    list_display = ("month", "target")


@admin.register(SlaTimer)
class SlaTimerAdmin(admin.ModelAdmin):
    """The timers as an audit trail: read-only, they change only through sla.services."""

    list_display = ("handoff", "kind", "status", "rep", "started_at", "due_at", "met_at")
    list_filter = ("kind", "status")
    list_select_related = ("handoff__lead", "rep")
    search_fields = ("handoff__lead__email", "handoff__lead__last_name")
    date_hierarchy = "due_at"
    raw_id_fields = ("handoff",)

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


WEEKDAY_CHOICES = [
    (0, _("Monday")),
    (1, _("Tuesday")),
    (2, _("Wednesday")),
    (3, _("Thursday")),
    (4, _("Friday")),
    (5, _("Saturday")),
    (6, _("Sunday")),
]


class RepWorkingHoursForm(forms.ModelForm):
    weekdays = forms.TypedMultipleChoiceField(
        label=_("working days"),
        choices=WEEKDAY_CHOICES,
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: the business calendar's days."),
    )

    class Meta:
        model = RepWorkingHours
        fields = ("user", "weekdays", "starts_at", "ends_at")


@admin.register(RepWorkingHours)
class RepWorkingHoursAdmin(admin.ModelAdmin):
    """Each rep's days and hours (sla.hours); holidays and closures come from the calendar."""

    form = RepWorkingHoursForm
    list_display = ("user", "weekdays", "starts_at", "ends_at")
    raw_id_fields = ("user",)
    search_fields = ("user__username", "user__last_name", "user__email")
