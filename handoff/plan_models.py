"""Routing plans: a draft copy of the routing configuration, replayed over past MQLs,
then published (handoff.plans, handoff.replay).

A plan holds its own copy of everything that decides who gets an MQL: the routing rules,
each team's switches (default team, account owner first, claim window, passes, after
hours), who is in which team and takes new leads, and each rep's capacity and working
hours. Editing a draft changes nothing live; publishing copies it onto the live tables in
one transaction. Imported by handoff.models, so the app registry sees these models.
"""

from __future__ import annotations

from datetime import time, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from handoff.models import AfterHours, RoutingRule, Team
from leadflow.errors import DomainError


class PlanStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    PUBLISHED = "published", _("Published")
    ARCHIVED = "archived", _("Archived")


class RoutingPlan(models.Model):
    name = models.CharField(_("name"), max_length=200)
    notes = models.TextField(_("notes"), blank=True, help_text=_("What changes and why."))
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=PlanStatus.choices,
        default=PlanStatus.DRAFT,
        editable=False,
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("published by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    published_at = models.DateTimeField(_("published"), null=True, blank=True, editable=False)
    archived_at = models.DateTimeField(_("archived"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("routing plan")
        verbose_name_plural = _("routing plans")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"],
                condition=models.Q(status="published"),
                name="routing_plan_one_published",
            ),
        ]
        permissions = [("publish_routingplan", _("Can publish a routing plan"))]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_status_display()})"

    @property
    def is_draft(self) -> bool:
        return self.status == PlanStatus.DRAFT


class _PlanPart(models.Model):
    """A row of a plan: editable only while the plan is a draft (a published plan is the
    record of what was applied)."""

    plan_id: int

    class Meta:
        abstract = True

    def save(self, *args, **kwargs) -> None:
        self._check_draft()
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        self._check_draft()
        return super().delete(*args, **kwargs)

    def _check_draft(self) -> None:
        status = RoutingPlan.objects.filter(pk=self.plan_id).values_list("status", flat=True)
        if status and status[0] != PlanStatus.DRAFT:
            raise DomainError(
                gettext("A published or archived routing plan cannot change."),
                code="plan_read_only",
            )


class PlanTeam(_PlanPart):
    """A team's routing switches in the plan (the live ones are on handoff.Team)."""

    plan = models.ForeignKey(RoutingPlan, on_delete=models.CASCADE, related_name="teams")
    team = models.ForeignKey(
        Team, verbose_name=_("team"), on_delete=models.CASCADE, related_name="+"
    )
    is_default = models.BooleanField(
        _("default team"),
        default=False,
        help_text=_("Takes the MQLs that no routing rule matches."),
    )
    account_owner_first = models.BooleanField(_("account owner first"), default=True)
    claim_required = models.BooleanField(_("claim required"), default=False)
    claim_window_minutes = models.PositiveSmallIntegerField(
        _("claim window (minutes)"),
        default=15,
        validators=[MinValueValidator(1), MaxValueValidator(480)],
    )
    claim_max_passes = models.PositiveSmallIntegerField(
        _("passes before the queue"), default=2, validators=[MaxValueValidator(20)]
    )
    after_hours = models.CharField(
        _("MQLs outside working hours"),
        max_length=20,
        choices=AfterHours.choices,
        default=AfterHours.FIRST_TO_START,
    )

    class Meta:
        verbose_name = _("team in the plan")
        verbose_name_plural = _("teams in the plan")
        ordering = ["team__name"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "team"], name="plan_team_unique"),
            models.UniqueConstraint(
                fields=["plan"], condition=models.Q(is_default=True), name="plan_one_default_team"
            ),
        ]

    def __str__(self) -> str:
        return str(self.team)


class PlanRule(_PlanPart):
    """A routing rule of the plan: the same conditions as handoff.RoutingRule."""

    plan = models.ForeignKey(RoutingPlan, on_delete=models.CASCADE, related_name="rules")
    name = models.CharField(_("name"), max_length=100)
    order = models.PositiveIntegerField(_("order"), default=100)
    is_active = models.BooleanField(_("active"), default=True)
    prefectures = models.JSONField(_("prefectures"), default=list, blank=True)
    regions = models.JSONField(_("regions"), default=list, blank=True)
    industries = models.JSONField(_("industries"), default=list, blank=True)
    min_employees = models.PositiveIntegerField(_("employees from"), null=True, blank=True)
    max_employees = models.PositiveIntegerField(_("employees up to"), null=True, blank=True)
    team = models.ForeignKey(
        Team, verbose_name=_("team"), on_delete=models.CASCADE, related_name="+"
    )

    # The fields a live rule has too: copied both ways, compared by the fingerprint.
    COPIED = (
        "name",
        "order",
        "is_active",
        "prefectures",
        "regions",
        "industries",
        "min_employees",
        "max_employees",
        "team_id",
    )

    class Meta:
        verbose_name = _("routing rule in the plan")
        verbose_name_plural = _("routing rules in the plan")
        ordering = ["order", "id"]

    def __str__(self) -> str:
        return f"{self.order}. {self.name} → {self.team}"

    def as_rule(self) -> RoutingRule:
        """The live rule this row becomes (unsaved): the replay matches leads with it, so
        a plan's rule matches exactly as the published one will."""
        return RoutingRule(**{field: getattr(self, field) for field in self.COPIED})


class PlanMember(_PlanPart):
    """A rep in a team of the plan."""

    plan = models.ForeignKey(RoutingPlan, on_delete=models.CASCADE, related_name="members")
    team = models.ForeignKey(
        Team, verbose_name=_("team"), on_delete=models.CASCADE, related_name="+"
    )
    rep = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("rep"), on_delete=models.CASCADE, related_name="+"
    )
    is_active = models.BooleanField(
        _("takes new leads"),
        default=True,
        help_text=_("Off: stays in the team but gets no new handoffs."),
    )

    class Meta:
        verbose_name = _("team member in the plan")
        verbose_name_plural = _("team members in the plan")
        ordering = ["team__name", "rep__username"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "team", "rep"], name="plan_member_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.team}: {self.rep}"


class PlanRep(_PlanPart):
    """A rep's capacity and working hours in the plan (live: handoff.RepProfile and
    sla.RepWorkingHours; empty hours follow the business calendar)."""

    plan = models.ForeignKey(RoutingPlan, on_delete=models.CASCADE, related_name="reps")
    rep = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("rep"), on_delete=models.CASCADE, related_name="+"
    )
    max_open_handoffs = models.PositiveSmallIntegerField(
        _("capacity (open handoffs)"), default=20, validators=[MinValueValidator(1)]
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
        verbose_name = _("rep in the plan")
        verbose_name_plural = _("reps in the plan")
        ordering = ["rep__username"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "rep"], name="plan_rep_unique"),
        ]

    def __str__(self) -> str:
        return str(self.rep)

    def clean(self) -> None:
        working_hours_clean(self.weekdays, self.starts_at, self.ends_at)


def working_hours_clean(weekdays: object, starts_at: time | None, ends_at: time | None) -> None:
    """A rep's own days and hours make sense (a plan's, and sla.RepWorkingHours)."""
    if not isinstance(weekdays, list) or any(
        not isinstance(day, int) or isinstance(day, bool) or not 0 <= day <= 6 for day in weekdays
    ):
        raise ValidationError({"weekdays": _("Use weekday numbers from 0 (Monday) to 6.")})
    if len(set(weekdays)) != len(weekdays):
        raise ValidationError({"weekdays": _("A weekday is listed twice.")})
    if starts_at and ends_at and ends_at <= starts_at:
        raise ValidationError({"ends_at": _("Working hours must end after they start.")})


class ReplayStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")


class ReplayRun(models.Model):
    """One replay of a draft over the MQLs of the weeks before `until` (handoff.replay).

    `fingerprint` digests the plan's content and the number of weeks: the stored result
    stands for the draft while the draft's fingerprint is this one; an edit makes the
    page start another. The result (per rep, replayed beside actual) is in `result`."""

    plan = models.ForeignKey(
        RoutingPlan, on_delete=models.CASCADE, related_name="replays", verbose_name=_("plan")
    )
    fingerprint = models.CharField(_("fingerprint"), max_length=64)
    weeks = models.PositiveSmallIntegerField(
        _("weeks"), default=4, validators=[MinValueValidator(1), MaxValueValidator(26)]
    )
    since = models.DateTimeField(_("MQLs from"))
    until = models.DateTimeField(_("MQLs up to"))
    status = models.CharField(
        _("status"), max_length=20, choices=ReplayStatus.choices, default=ReplayStatus.QUEUED
    )
    total = models.PositiveIntegerField(_("MQLs"), default=0)
    done = models.PositiveIntegerField(_("MQLs replayed"), default=0)
    result = models.JSONField(_("result"), default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("started by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("replay run")
        verbose_name_plural = _("replay runs")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return gettext("Replay #%(id)s of %(plan)s") % {"id": self.pk, "plan": self.plan_id}

    @property
    def is_active(self) -> bool:
        return self.status in (ReplayStatus.QUEUED, ReplayStatus.RUNNING)

    @property
    def is_stuck(self) -> bool:
        """Queued or running for longer than a task may run: its task was lost (a worker
        killed, the time limit hit), so a new replay may be started instead."""
        if not self.is_active:
            return False
        since = self.started_at or self.created_at
        limit = timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
        return since < timezone.now() - limit

    @property
    def percent(self) -> int:
        if self.status == ReplayStatus.DONE:
            return 100
        if not self.total:
            return 0
        # Never 100 before the result is written: the page would offer it too soon.
        return min(99, (100 * self.done) // self.total)
