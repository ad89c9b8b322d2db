from django.contrib import admin

from sla.models import BusinessCalendar, CalendarClosure


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
