from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

WEEKDAY_FIELDS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class BusinessCalendar(models.Model):
    """Business hours, working weekdays, Japanese holidays and closures, editable in the admin.

    One calendar is the default; SLA policies that count business time use it.
    """

    name = models.CharField(_("name"), max_length=100, unique=True)
    is_default = models.BooleanField(_("default calendar"), default=False)
    timezone = models.CharField(_("time zone"), max_length=50, default="Asia/Tokyo")
    opens_at = models.TimeField(_("opens at"), default="09:00")
    closes_at = models.TimeField(_("closes at"), default="18:00")
    monday = models.BooleanField(_("Monday"), default=True)
    tuesday = models.BooleanField(_("Tuesday"), default=True)
    wednesday = models.BooleanField(_("Wednesday"), default=True)
    thursday = models.BooleanField(_("Thursday"), default=True)
    friday = models.BooleanField(_("Friday"), default=True)
    saturday = models.BooleanField(_("Saturday"), default=False)
    sunday = models.BooleanField(_("Sunday"), default=False)
    national_holidays = models.BooleanField(
        _("Japanese national holidays are days off"), default=True
    )

    class Meta:
        verbose_name = _("business calendar")
        verbose_name_plural = _("business calendars")
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=models.Q(is_default=True),
                name="one_default_calendar",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationError({"timezone": _("Unknown time zone.")}) from None
        if self.opens_at and self.closes_at and self.closes_at <= self.opens_at:
            raise ValidationError({"closes_at": _("Business hours must close after they open.")})
        if not any(getattr(self, name) for name in WEEKDAY_FIELDS):
            raise ValidationError(_("Choose at least one working weekday."))


class CalendarClosure(models.Model):
    """Days the company is closed (e.g. 年末年始 12/29–1/3 every year, or a one-off move)."""

    calendar = models.ForeignKey(
        BusinessCalendar, on_delete=models.CASCADE, related_name="closures"
    )
    name = models.CharField(_("name"), max_length=100)
    start_date = models.DateField(_("first day"))
    end_date = models.DateField(_("last day"))
    every_year = models.BooleanField(
        _("every year"), default=False, help_text=_("Repeat on the same days each year.")
    )

    class Meta:
        verbose_name = _("closure")
        verbose_name_plural = _("closures")
        ordering = ["start_date"]

    def __str__(self) -> str:
        return f"{self.name} ({self.start_date:%m/%d}–{self.end_date:%m/%d})"

    def clean(self) -> None:
        # A yearly closure may wrap the new year (12/29 – 1/3), so only one-offs are checked.
        if (
            not self.every_year
            and self.start_date
            and self.end_date
            and self.end_date < self.start_date
        ):
            raise ValidationError({"end_date": _("The last day is before the first day.")})
