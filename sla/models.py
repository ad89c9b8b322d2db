from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from handoff.plan_models import working_hours_clean

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


class RepWorkingHours(models.Model):
    """A rep's own working days and hours (sla.hours). Empty parts follow the default
    business calendar; its national holidays and closures apply to every rep. A rep
    without a row works the calendar's hours. Per rep, in one small table whose writes
    change the configuration version, so a routing plan can hold a copy of it."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("rep"),
        on_delete=models.CASCADE,
        related_name="working_hours",
    )
    weekdays = models.JSONField(
        _("working days"),
        default=list,
        blank=True,
        help_text=_("Weekday numbers, Monday = 0 … Sunday = 6. Empty: the calendar's days."),
    )
    starts_at = models.TimeField(
        _("starts at"), null=True, blank=True, help_text=_("Empty: the calendar's opening.")
    )
    ends_at = models.TimeField(
        _("ends at"), null=True, blank=True, help_text=_("Empty: the calendar's closing.")
    )

    class Meta:
        verbose_name = _("working hours")
        verbose_name_plural = _("working hours")

    def __str__(self) -> str:
        return str(self.user)

    def clean(self) -> None:
        working_hours_clean(self.weekdays, self.starts_at, self.ends_at)


# --- policies --------------------------------------------------------------------------


class TimerKind(models.TextChoices):
    FIRST_CONTACT = "first_contact", _("First contact")
    VERDICT = "verdict", _("SQL / not-SQL verdict")


class DurationUnit(models.TextChoices):
    HOURS = "hours", _("hours")
    DAYS = "days", _("days")


class TimerPolicy(models.Model):
    """One timed obligation of sales (article: 初回コンタクト 24時間以内, SQL/非SQL判定
    5営業日以内): how long, counted how, when to remind, what to do on a breach.

    Changes apply to handoffs created afterwards; running timers keep the due time they
    were started with (a rep's deadline does not move under their feet).
    """

    kind = models.CharField(_("obligation"), max_length=20, choices=TimerKind.choices, unique=True)
    is_active = models.BooleanField(
        _("active"), default=True, help_text=_("Off: new handoffs get no timer of this kind.")
    )
    amount = models.PositiveIntegerField(_("within"), validators=[MinValueValidator(1)])
    unit = models.CharField(_("unit"), max_length=10, choices=DurationUnit.choices)
    counts_business_time = models.BooleanField(
        _("count business time only"),
        default=False,
        help_text=_(
            "On: only business hours of the calendar count (days = business days, due at "
            "closing time of the last one). Off: calendar time, nights and weekends too."
        ),
    )
    calendar = models.ForeignKey(
        BusinessCalendar,
        verbose_name=_("business calendar"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        help_text=_("Empty: the default calendar."),
    )
    remind_at_percent = models.PositiveSmallIntegerField(
        _("remind the rep at (percent of the time)"),
        default=75,
        validators=[MaxValueValidator(99)],
        help_text=_("0 = no reminder."),
    )
    notify_manager = models.BooleanField(_("tell the team's managers on a breach"), default=True)
    reassign_on_breach = models.BooleanField(
        _("reassign through the routing on a breach"),
        default=False,
        help_text=_("The next rep of the team's round robin gets the handoff."),
    )

    class Meta:
        verbose_name = _("SLA timer policy")
        verbose_name_plural = _("SLA timer policies")
        ordering = ["kind"]

    def __str__(self) -> str:
        return str(self.get_kind_display())

    def clean(self) -> None:
        if self.unit == DurationUnit.DAYS and not self.counts_business_time and self.amount > 365:
            raise ValidationError({"amount": _("At most 365 days.")})


def default_required_fields() -> list[str]:
    return ["email", "last_name", "company", "phone", "job_title"]


# The lead fields marketing can require; "company" means a linked company.
REQUIRED_FIELD_CHOICES = (
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
)


class SlaSettings(models.Model):
    """The rest of the two-sided agreement, a singleton (pk=1) editable in the admin."""

    # Sales side
    min_attempts_not_reachable = models.PositiveSmallIntegerField(
        _("attempts before “not reachable”"),
        default=3,
        help_text=_(
            "Logged activities a handoff needs before it may be rejected as not reachable."
        ),
    )
    not_reachable_reason_code = models.SlugField(
        _("“not reachable” reason code"), max_length=50, default="not_reachable"
    )
    compliance_target_percent = models.PositiveSmallIntegerField(
        _("SLA compliance target (%)"), default=90, validators=[MaxValueValidator(100)]
    )
    # Marketing side
    monthly_mql_target = models.PositiveIntegerField(
        _("monthly MQL target (default)"),
        default=100,
        help_text=_("Used for months without their own target."),
    )
    required_fields = models.JSONField(
        _("required lead fields"),
        default=default_required_fields,
        help_text=_('Field names, e.g. ["email", "last_name", "company", "phone"].'),
    )
    completeness_target_percent = models.PositiveSmallIntegerField(
        _("required-field completeness target (%)"),
        default=95,
        validators=[MaxValueValidator(100)],
    )

    class Meta:
        verbose_name = _("SLA settings")
        verbose_name_plural = _("SLA settings")

    def __str__(self) -> str:
        return str(_("SLA settings"))

    def save(self, *args, **kwargs) -> None:
        self.pk = 1
        super().save(*args, **kwargs)

    def clean(self) -> None:
        fields = self.required_fields
        if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
            raise ValidationError({"required_fields": _("A list of field names.")})
        unknown = sorted(set(fields) - set(REQUIRED_FIELD_CHOICES))
        if unknown:
            raise ValidationError(
                {
                    "required_fields": ngettext(
                        "Unknown field: %(fields)s. Choose from %(choices)s.",
                        "Unknown fields: %(fields)s. Choose from %(choices)s.",
                        len(unknown),
                    )
                    % {"fields": ", ".join(unknown), "choices": ", ".join(REQUIRED_FIELD_CHOICES)}
                }
            )


class MqlTarget(models.Model):
    """Marketing's MQL target for one month (月間MQL創出数), overriding the default."""

    month = models.DateField(_("month"), unique=True, help_text=_("Any day of the month."))
    target = models.PositiveIntegerField(_("MQL target"))

    class Meta:
        verbose_name = _("monthly MQL target")
        verbose_name_plural = _("monthly MQL targets")
        ordering = ["-month"]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m}: {self.target}"

    def save(self, *args, **kwargs) -> None:
        self.month = self.month.replace(day=1)
        super().save(*args, **kwargs)


# --- timers ----------------------------------------------------------------------------


class TimerStatus(models.TextChoices):
    PENDING = "pending", _("Running")
    MET = "met", _("Met")
    BREACHED = "breached", _("Breached")


class SlaTimer(models.Model):
    """One deadline of one handoff. Started when the handoff is created (at the MQL), met by
    the event that satisfies it, marked breached by the sweep once due.

    On time means `met_at <= due_at`; a breached timer that is met later keeps its status
    and gets `met_at` (late). Reassignment does not restart the clock (see sla.services).
    """

    handoff = models.ForeignKey(
        "handoff.Handoff", on_delete=models.CASCADE, related_name="sla_timers"
    )
    kind = models.CharField(_("obligation"), max_length=20, choices=TimerKind.choices)
    policy = models.ForeignKey(
        TimerPolicy, on_delete=models.SET_NULL, null=True, blank=True, related_name="timers"
    )
    status = models.CharField(
        _("status"), max_length=20, choices=TimerStatus.choices, default=TimerStatus.PENDING
    )
    counts_business_time = models.BooleanField(_("business time"), default=False)
    started_at = models.DateTimeField(_("started"))
    due_at = models.DateTimeField(_("due"))
    remind_at = models.DateTimeField(_("reminder due"), null=True, blank=True)
    reminded_at = models.DateTimeField(_("reminded"), null=True, blank=True)
    met_at = models.DateTimeField(_("met"), null=True, blank=True)
    breached_at = models.DateTimeField(_("breach recorded"), null=True, blank=True)
    escalated_at = models.DateTimeField(_("escalated"), null=True, blank=True)
    # Attribution: the rep who holds the timer (follows reassignments while it runs, frozen
    # once it is met or breached) and since when, so a rep who got a lead late is seen so.
    rep = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("rep"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="sla_timers",
    )
    rep_since = models.DateTimeField(_("rep since"), null=True, blank=True)
    reminder_email_sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    escalation_email_sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    escalation_webhook_sent_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("SLA timer")
        verbose_name_plural = _("SLA timers")
        ordering = ["due_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["handoff", "kind"], name="sla_timer_one_per_kind"),
        ]
        indexes = [
            # The sweep's claim: pending timers by due time, and nothing else in the index.
            models.Index(
                fields=["due_at"],
                condition=models.Q(status="pending"),
                name="sla_timer_pending_due_idx",
            ),
            models.Index(
                fields=["remind_at"],
                condition=models.Q(status="pending", reminded_at__isnull=True),
                name="sla_timer_remind_idx",
            ),
            models.Index(
                fields=["breached_at"],
                condition=models.Q(status="breached", escalated_at__isnull=True),
                name="sla_timer_unescalated_idx",
            ),
            models.Index(fields=["rep", "kind"], name="sla_timer_rep_kind_idx"),
            # The inbox's poll: breaches after the moment the page was opened.
            models.Index(
                fields=["breached_at"],
                condition=models.Q(breached_at__isnull=False),
                name="sla_timer_breached_idx",
            ),
            # The dashboard's overdue list: unmet timers, most overdue first (breached ones
            # are no longer "pending", so the sweep's index does not serve it).
            models.Index(
                fields=["due_at", "id"],
                condition=models.Q(met_at__isnull=True),
                name="sla_timer_unmet_due_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.handoff_id} {self.kind} → {self.due_at:%Y-%m-%d %H:%M}"

    @property
    def on_time(self) -> bool | None:
        """True/False once known; None while it runs and is not yet due."""
        if self.met_at is not None:
            return self.met_at <= self.due_at
        if self.status == TimerStatus.BREACHED:
            return False
        return None


class DigestDelivery(models.Model):
    """One weekly digest to one manager: the unique row is the claim that sends it once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    week_start = models.DateField(_("week of"))
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)

    class Meta:
        verbose_name = _("weekly digest")
        verbose_name_plural = _("weekly digests")
        constraints = [
            models.UniqueConstraint(fields=["user", "week_start"], name="sla_digest_once"),
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.week_start}"


# --- the dashboard's read model --------------------------------------------------------
#
# The KPIs are sums over the MQLs of a date range. Summing 100,000 handoffs and their
# timers on every page view costs seconds, so `sla.kpis.days` keeps them pre-summed per day:
# one row per MQL day × team × rep × lead source (× rejection reason / timer kind). A day
# is recomputed whole when something of one of its MQLs changes (`KpiStaleDay`), by a beat
# task every minute; the dashboard reads only these rows. Foreign keys carry no database
# constraint: the rows are derived, a deleted team or rep must not block anything, and
# the next recomputation drops what no longer exists.


def _derived_fk(to: str, verbose_name: Any) -> models.ForeignKey:
    return models.ForeignKey(
        to,
        verbose_name=verbose_name,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )


class TeamDay(models.Model):
    """What every per-day row has: the MQL day (TIME_ZONE) and the team it sums."""

    day = models.DateField(_("MQL day"))
    team = _derived_fk("handoff.Team", _("team"))

    class Meta:
        abstract = True


class KpiHandoffDay(TeamDay):
    """The MQLs handed off on one day (TIME_ZONE), of one team, rep, source and rejection
    reason, and what became of them as of the last recomputation."""

    rep = _derived_fk(settings.AUTH_USER_MODEL, _("rep"))
    source = models.CharField(_("source"), max_length=100, blank=True)
    rejection_reason = _derived_fk("handoff.RejectionReason", _("rejection reason"))
    mqls = models.PositiveIntegerField(default=0)
    sqls = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    open = models.PositiveIntegerField(default=0)
    contacted = models.PositiveIntegerField(default=0)
    # Sum of (first logged activity − MQL) over `contacted`: the average is exact.
    first_contact_total = models.DurationField(default=dt.timedelta)
    won = models.PositiveIntegerField(default=0)
    rejected_with_reason = models.PositiveIntegerField(default=0)
    not_reachable = models.PositiveIntegerField(default=0)
    not_reachable_followed_up = models.PositiveIntegerField(default=0)
    by_policy = models.PositiveIntegerField(default=0)
    complete = models.PositiveIntegerField(default=0)
    sla_known = models.PositiveIntegerField(default=0)
    sla_compliant = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("KPI day (handoffs)")
        verbose_name_plural = _("KPI days (handoffs)")
        indexes = [models.Index(fields=["day", "team"], name="sla_kpihandoff_day_idx")]

    def __str__(self) -> str:
        return f"{self.day} team={self.team_id} rep={self.rep_id} {self.source}"


class KpiTimerDay(TeamDay):
    """The SLA timers started on one day, of one team, rep (the timer's), source and
    obligation, counted as of the last recomputation."""

    rep = _derived_fk(settings.AUTH_USER_MODEL, _("rep"))
    source = models.CharField(_("source"), max_length=100, blank=True)
    kind = models.CharField(_("obligation"), max_length=20, choices=TimerKind.choices)
    known = models.PositiveIntegerField(default=0)
    on_time = models.PositiveIntegerField(default=0)
    late = models.PositiveIntegerField(default=0)
    running = models.PositiveIntegerField(default=0)
    inherited = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("KPI day (timers)")
        verbose_name_plural = _("KPI days (timers)")
        indexes = [models.Index(fields=["day", "team"], name="sla_kpitimer_day_idx")]

    def __str__(self) -> str:
        return f"{self.day} team={self.team_id} rep={self.rep_id} {self.kind}"


class KpiStaleDay(models.Model):
    """ "Recompute this MQL day": appended in the transaction of the change, removed by the
    recomputation that read it. Append-only rows (no upsert on a per-day row) so that 50
    MQLs a second do not queue behind one hot row lock."""

    day = models.DateField(_("MQL day"), db_index=True)
    marked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("stale KPI day")
        verbose_name_plural = _("stale KPI days")

    def __str__(self) -> str:
        return str(self.day)


class KpiState(models.Model):
    """One row: when the KPI days were last recomputed (shown on the dashboard)."""

    refreshed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("KPI state")

    def __str__(self) -> str:
        return f"KPIs as of {self.refreshed_at}"


# Speed to lead, pre-summed per MQL day by the same recomputation (sla.kpis.speed_days): the
# hop durations as log-spaced histograms (each bucket with its shortest and longest
# duration, so a quantile read from it is within the bucket's bounds), and the
# first-contact delay outcomes. Two hop tables, by team × source and by team × rep: one
# table by team × rep × source would hold a row for almost every MQL of a quiet day.


class HopHistogramDay(TeamDay):
    """One bucket of one hop's durations over the MQLs of one day (or week) and team; the
    two tables add the source or the rep."""

    # 1: the MQLs of `day`; 7: the sum of the rows of the ISO week that begins on `day` (a
    # Monday), which a range holding the whole week reads instead of its seven days.
    days = models.PositiveSmallIntegerField(_("days"), default=1)
    hop = models.CharField(_("hop"), max_length=20)
    bucket = models.PositiveSmallIntegerField(_("bucket"))
    n = models.PositiveIntegerField(default=0)
    shortest = models.FloatField(_("shortest (s)"))
    longest = models.FloatField(_("longest (s)"))

    class Meta:
        abstract = True


class SpeedHopDay(HopHistogramDay):
    """One bucket of one hop's durations, over the MQLs of one day, team and source."""

    source = models.CharField(_("source"), max_length=100, blank=True)

    class Meta:
        verbose_name = _("speed-to-lead day (hops by source)")
        verbose_name_plural = _("speed-to-lead days (hops by source)")
        # By day and then day or week: a range reads the day rows of some days and
        # the week rows of others, and the recomputation deletes by day.
        indexes = [models.Index(fields=["day", "days", "team"], name="sla_speedhop_days_idx")]

    def __str__(self) -> str:
        return f"{self.day} team={self.team_id} {self.source} {self.hop}[{self.bucket}]"


class SpeedRepHopDay(HopHistogramDay):
    """One bucket of one hop's durations, over the MQLs of one day, team and rep."""

    rep = _derived_fk(settings.AUTH_USER_MODEL, _("rep"))

    class Meta:
        verbose_name = _("speed-to-lead day (hops by rep)")
        verbose_name_plural = _("speed-to-lead days (hops by rep)")
        # By day and then day or week: a range reads the day rows of some days and
        # the week rows of others, and the recomputation deletes by day.
        indexes = [models.Index(fields=["day", "days", "team"], name="sla_speedrephop_days_idx")]

    def __str__(self) -> str:
        return f"{self.day} team={self.team_id} rep={self.rep_id} {self.hop}[{self.bucket}]"


class SpeedDelayDay(TeamDay):
    """The MQLs of one day and team in one first-contact delay bucket, and their outcomes
    as of the last recomputation."""

    delay = models.CharField(_("first-contact delay"), max_length=10)
    mqls = models.PositiveIntegerField(default=0)
    decided = models.PositiveIntegerField(default=0)
    accepted = models.PositiveIntegerField(default=0)
    won = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("speed-to-lead day (delays)")
        verbose_name_plural = _("speed-to-lead days (delays)")
        indexes = [models.Index(fields=["day", "team"], name="sla_speeddelay_day_idx")]

    def __str__(self) -> str:
        return f"{self.day} team={self.team_id} {self.delay}"


class SpeedArrivalHour(TeamDay):
    """How many MQLs one team received in one local hour of one day (the forecast's
    same-weekday-and-hour history)."""

    hour = models.PositiveSmallIntegerField(_("hour"))
    mqls = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("speed-to-lead hour (arrivals)")
        verbose_name_plural = _("speed-to-lead hours (arrivals)")
        indexes = [models.Index(fields=["day", "team"], name="sla_speedarrival_day_idx")]

    def __str__(self) -> str:
        return f"{self.day} {self.hour}:00 team={self.team_id}"
