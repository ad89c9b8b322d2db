"""The handoff of one MQL to one sales rep, and what the rep does with it.

State changes go through the services (`handoff.routing`, `verdicts`, `activities` …);
this module only describes the rows.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from leadflow.models import Lead, StageTransition


class AfterHours(models.TextChoices):
    """What routing does with an MQL when no rep of the team is working now."""

    FIRST_TO_START = "first_to_start", _("Assign to the rep who starts first")
    WAIT_FOR_OPENING = "wait_for_opening", _("Keep in the queue until someone starts")


class Team(models.Model):
    """A sales team: the unit of routing. Managers see its queue; members take its leads."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    managers = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("managers"),
        related_name="managed_teams",
        blank=True,
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("reps"),
        through="TeamMembership",
        related_name="sales_teams",
        blank=True,
    )
    is_default = models.BooleanField(
        _("default team"),
        default=False,
        help_text=_("Takes the MQLs that no routing rule matches."),
    )
    account_owner_first = models.BooleanField(
        _("account owner first"),
        default=True,
        help_text=_(
            "An MQL of a company that already has an owner (set on the company, the rep of "
            "an open handoff or opportunity, or the owner of a customer) goes to that rep "
            "first when they are available; off = round robin only."
        ),
    )
    # Claim or pass on (handoff.claims). Per team, next to the routing switches above, so
    # a routing plan that copies a team copies these; writes change the config version.
    claim_required = models.BooleanField(
        _("claim required"),
        default=False,
        help_text=_(
            "A new assignment must be claimed (opened, acknowledged or worked) within the "
            "claim window, or it passes to the next available rep. Off: it stays with the rep."
        ),
    )
    claim_window_minutes = models.PositiveSmallIntegerField(
        _("claim window (minutes)"),
        default=15,
        validators=[MinValueValidator(1), MaxValueValidator(480)],
        help_text=_("Minutes of the rep's working time to claim a new assignment."),
    )
    claim_max_passes = models.PositiveSmallIntegerField(
        _("passes before the queue"),
        default=2,
        validators=[MaxValueValidator(20)],
        help_text=_(
            "After this many passes an unclaimed MQL goes to the team queue and the managers "
            "are told."
        ),
    )
    after_hours = models.CharField(
        _("MQLs outside working hours"),
        max_length=20,
        choices=AfterHours.choices,
        default=AfterHours.FIRST_TO_START,
    )
    # Counts every assignment in this team. Only written under the team's row lock, so it
    # orders assignments exactly even when the clock does not (two in the same instant).
    assignment_counter = models.PositiveBigIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("team")
        verbose_name_plural = _("teams")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=models.Q(is_default=True),
                name="team_one_default",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class TeamMembership(models.Model):
    """A rep in a team, with where they stand in the team's round robin."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    rep = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("rep"),
        on_delete=models.CASCADE,
        related_name="team_memberships",
    )
    is_active = models.BooleanField(
        _("takes new leads"),
        default=True,
        help_text=_("Off: stays in the team but gets no new handoffs."),
    )
    # The team's assignment_counter at this rep's last assignment (0 = never assigned).
    last_assignment_seq = models.PositiveBigIntegerField(default=0, editable=False)
    last_assigned_at = models.DateTimeField(
        _("last assigned"), null=True, blank=True, editable=False
    )
    created_at = models.DateTimeField(_("joined"), auto_now_add=True)

    class Meta:
        verbose_name = _("team member")
        verbose_name_plural = _("team members")
        ordering = ["team", "rep__username"]
        constraints = [
            models.UniqueConstraint(fields=["team", "rep"], name="membership_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.team}: {self.rep}"


class RepProfile(models.Model):
    """A rep's availability, shared by every team they are in. A rep without one is
    available with the default capacity (settings.HANDOFF_DEFAULT_CAPACITY)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("rep"),
        on_delete=models.CASCADE,
        related_name="rep_profile",
    )
    away = models.BooleanField(
        _("away"), default=False, help_text=_("On leave or out: gets no new handoffs.")
    )
    away_until = models.DateTimeField(
        _("away until"),
        null=True,
        blank=True,
        help_text=_("With “away” on: back automatically at this time. Empty: until switched off."),
    )
    max_open_handoffs = models.PositiveSmallIntegerField(
        _("capacity (open handoffs)"),
        default=20,
        validators=[MinValueValidator(1)],
        help_text=_("Gets no new handoffs while this many are open."),
    )

    class Meta:
        verbose_name = _("rep availability")
        verbose_name_plural = _("rep availability")

    def __str__(self) -> str:
        return str(self.user)

    def is_away(self, at: datetime | None = None) -> bool:
        if not self.away:
            return False
        return self.away_until is None or self.away_until > (at or timezone.now())


class RoutingRule(models.Model):
    """Territory routing: the first active rule (by order) whose conditions all hold picks
    the team. An empty condition matches everything."""

    name = models.CharField(_("name"), max_length=100)
    order = models.PositiveIntegerField(_("order"), default=100, db_index=True)
    is_active = models.BooleanField(_("active"), default=True)
    prefectures = models.JSONField(_("prefectures"), default=list, blank=True)
    regions = models.JSONField(_("regions"), default=list, blank=True)
    industries = models.JSONField(_("industries"), default=list, blank=True)
    min_employees = models.PositiveIntegerField(_("employees from"), null=True, blank=True)
    max_employees = models.PositiveIntegerField(_("employees up to"), null=True, blank=True)
    team = models.ForeignKey(
        Team, verbose_name=_("team"), on_delete=models.PROTECT, related_name="routing_rules"
    )

    class Meta:
        verbose_name = _("routing rule")
        verbose_name_plural = _("routing rules")
        ordering = ["order", "id"]

    def __str__(self) -> str:
        return f"{self.order}. {self.name} → {self.team}"

    def matches(self, lead: Lead) -> bool:
        company = lead.company
        if company is None:
            return self.matches_company("", "", "", None)
        return self.matches_company(
            company.prefecture, company.region, company.industry, company.employee_count
        )

    def matches_company(
        self, prefecture: str, region: str, industry: str, employees: int | None
    ) -> bool:
        """The rule on the lead's company's fields alone (all a rule tests)."""
        if self.prefectures and prefecture not in self.prefectures:
            return False
        if self.regions and region not in self.regions:
            return False
        if self.industries and industry not in self.industries:
            return False
        if self.min_employees is not None or self.max_employees is not None:
            if employees is None:
                return False
            if self.min_employees is not None and employees < self.min_employees:
                return False
            if self.max_employees is not None and employees > self.max_employees:
                return False
        return True


class HandoffPolicy(models.Model):
    """Singleton (pk=1) that sales and marketing agree on, editable in the admin."""

    bant_min_yes = models.PositiveSmallIntegerField(
        _("BANT answers needed for SQL"),
        default=2,
        validators=[MinValueValidator(1), MaxValueValidator(4)],
        help_text=_("How many of budget, authority, need and timeline must be yes (article: 2)."),
    )

    class Meta:
        verbose_name = _("handoff policy")
        verbose_name_plural = _("handoff policy")

    def __str__(self) -> str:
        return str(_("Handoff policy"))

    def save(self, *args, **kwargs) -> None:
        self.pk = 1
        super().save(*args, **kwargs)


class RejectionReason(models.Model):
    """Why sales did not take a lead. Kept for marketing's reports, so codes are stable."""

    code = models.SlugField(_("code"), max_length=50, unique=True)
    label_ja = models.CharField(_("label (Japanese)"), max_length=100)
    label_en = models.CharField(_("label (English)"), max_length=100)
    order = models.PositiveSmallIntegerField(_("order"), default=100)
    is_active = models.BooleanField(_("offered"), default=True)

    class Meta:
        verbose_name = _("rejection reason")
        verbose_name_plural = _("rejection reasons")
        ordering = ["order", "id"]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        language = (translation.get_language() or settings.LANGUAGE_CODE).split("-")[0]
        return self.label_ja if language == "ja" else self.label_en


class HandoffStatus(models.TextChoices):
    OPEN = "open", _("Open")
    ACCEPTED = "accepted", _("Accepted (SQL)")
    REJECTED = "rejected", _("Rejected")


BANT_KEYS = ("budget", "authority", "need", "timeline")


class Handoff(models.Model):
    """One MQL handed to sales. `assigned_to` empty while open = waiting in the team queue."""

    lead = models.ForeignKey(
        Lead, verbose_name=_("lead"), on_delete=models.CASCADE, related_name="handoffs"
    )
    # The MQL transition that caused it: makes creation idempotent and ties reports to it.
    mql_transition = models.OneToOneField(
        StageTransition, on_delete=models.PROTECT, related_name="handoff", editable=False
    )
    team = models.ForeignKey(
        Team,
        verbose_name=_("team"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="handoffs",
    )
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("rep"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="handoffs",
    )
    status = models.CharField(
        _("status"), max_length=20, choices=HandoffStatus.choices, default=HandoffStatus.OPEN
    )
    # The wave of MQLs it came with (a publish, an import), if any (handoff.bulk).
    wave = models.ForeignKey(
        "leadflow.MqlWave",
        verbose_name=_("wave"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="handoffs",
    )
    # When it left its wave's hold, its lead having raised its hand while it waited
    # (handoff.waves): from then on it is an ordinary MQL, its clocks running. The wave
    # stays, as the record of what made it an MQL.
    wave_released_at = models.DateTimeField(
        _("left its wave"), null=True, blank=True, editable=False
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    assigned_at = models.DateTimeField(_("assigned"), null=True, blank=True)
    first_contact_at = models.DateTimeField(_("first contact"), null=True, blank=True)
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("decided by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    bant_budget = models.BooleanField(_("budget"), null=True, blank=True)
    bant_authority = models.BooleanField(_("authority"), null=True, blank=True)
    bant_need = models.BooleanField(_("need"), null=True, blank=True)
    bant_timeline = models.BooleanField(_("timeline"), null=True, blank=True)
    rejection_reason = models.ForeignKey(
        RejectionReason,
        verbose_name=_("rejection reason"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="handoffs",
    )
    rejection_comment = models.TextField(_("rejection comment"), blank=True)
    # The next SLA deadline not yet met and its obligation (empty: none running). Stored
    # so the lists sort "most urgent first" on an index instead of a subquery per row;
    # sla.services writes it wherever a timer starts or is met (handoff_next_due_refresh).
    next_due_at = models.DateTimeField(_("next deadline"), null=True, blank=True, editable=False)
    next_due_kind = models.CharField(
        max_length=20, blank=True, default="", db_default="", editable=False
    )
    # What the lists search: the lead's search key and its company's, one space
    # between. The database writes it (triggers of
    # migration 0012, on the handoff, the lead and the company), so every path that
    # renames a lead or a company, or moves a handoff, keeps it; PostgreSQL indexes it
    # with trigrams (handoff_search_trgm_idx). A value set here is recomputed on save.
    search_key = models.TextField(blank=True, default="", db_default="", editable=False)

    class Meta:
        verbose_name = _("handoff")
        verbose_name_plural = _("handoffs")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["lead"],
                condition=models.Q(status="open"),
                name="handoff_one_open_per_lead",
            ),
        ]
        indexes = [
            models.Index(fields=["assigned_to", "status"], name="handoff_rep_status_idx"),
            models.Index(fields=["team", "status"], name="handoff_team_status_idx"),
            models.Index(fields=["created_at"], name="handoff_created_idx"),
            # The dashboard's median time to first contact reads only this index
            # (PostgreSQL: an index-only scan; elsewhere a plain partial index).
            models.Index(
                fields=["created_at"],
                include=["first_contact_at", "team"],
                condition=models.Q(first_contact_at__isnull=False),
                name="handoff_contacted_idx",
            ),
            # "Most urgent first" (handoff.selectors.URGENCY_ORDER), whatever the filters:
            # the list reads the first page off it, and pages by offset along it.
            models.Index(
                fields=["next_due_at", "assigned_at", "created_at", "id"],
                name="handoff_urgency_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.lead}"

    @property
    def is_open(self) -> bool:
        return self.status == HandoffStatus.OPEN

    @property
    def is_queued(self) -> bool:
        return self.status == HandoffStatus.OPEN and self.assigned_to_id is None

    @property
    def clock_waits(self) -> bool:
        """A wave's MQL that waits in the queue: its SLA clocks start when a rep gets it
        (handoff.bulk), or when its lead raises its hand (handoff.waves); any other
        MQL's start at the MQL."""
        return (
            self.wave_id is not None
            and self.wave_released_at is None
            and self.assigned_to_id is None
        )

    @property
    def bant(self) -> dict[str, bool | None]:
        return {key: getattr(self, f"bant_{key}") for key in BANT_KEYS}


class AssignmentVia(models.TextChoices):
    ROUTING = "routing", _("Routing (new MQL)")
    QUEUE = "queue", _("From the team queue")
    MANUAL = "manual", _("By a manager")
    ACCOUNT_OWNER = "account_owner", _("Account owner")
    PASSED = "passed", _("Passed on (not claimed in time)")


class Assignment(models.Model):
    """Every time a handoff gets a rep: the audit of who had it, and the notification state
    (one notification per assignment, however often the task runs)."""

    handoff = models.ForeignKey(Handoff, on_delete=models.CASCADE, related_name="assignments")
    rep = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("rep"), on_delete=models.PROTECT, related_name="+"
    )
    previous_rep = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("previous rep"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    via = models.CharField(_("how"), max_length=20, choices=AssignmentVia.choices)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    reason = models.TextField(_("reason"), blank=True)
    assigned_at = models.DateTimeField(_("assigned"), default=timezone.now)
    email_sent_at = models.DateTimeField(_("e-mail sent"), null=True, blank=True)
    slack_sent_at = models.DateTimeField(_("Slack message sent"), null=True, blank=True)

    class Meta:
        verbose_name = _("assignment")
        verbose_name_plural = _("assignments")
        ordering = ["assigned_at", "id"]

    def __str__(self) -> str:
        return f"{self.handoff_id} → {self.rep}"


class ActivityKind(models.TextChoices):
    CALL = "call", _("Call")
    EMAIL = "email", _("E-mail")
    MEETING = "meeting", _("Meeting")
    OTHER = "other", _("Other")


class ActivityOutcome(models.TextChoices):
    REACHED = "reached", _("Reached the person")
    NO_ANSWER = "no_answer", _("No answer")
    LEFT_MESSAGE = "left_message", _("Left a message")
    REPLIED = "replied", _("Got a reply")
    MEETING_SET = "meeting_set", _("Meeting arranged")
    NOT_INTERESTED = "not_interested", _("Not interested")
    OTHER = "other", _("Other")


class Activity(models.Model):
    """A touch by sales (call, e-mail, meeting, other). The first one is the first contact."""

    handoff = models.ForeignKey(Handoff, on_delete=models.CASCADE, related_name="activities")
    kind = models.CharField(_("kind"), max_length=20, choices=ActivityKind.choices)
    outcome = models.CharField(_("outcome"), max_length=20, choices=ActivityOutcome.choices)
    note = models.TextField(_("note"), blank=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("by"),
        on_delete=models.PROTECT,
        related_name="handoff_activities",
    )
    at = models.DateTimeField(_("when"), default=timezone.now)
    created_at = models.DateTimeField(_("recorded"), auto_now_add=True)

    class Meta:
        verbose_name = _("activity")
        verbose_name_plural = _("activities")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["handoff", "at"], name="activity_handoff_at_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.get_outcome_display()})"


class QueueNotice(models.Model):
    """An MQL that nobody in its team could take when it came in (everyone away or at
    capacity): the team's managers are told once. The row is written in the same
    transaction as the queued handoff; the send state makes the notification idempotent
    (a retried task sends nothing already sent)."""

    handoff = models.OneToOneField(
        Handoff,
        verbose_name=_("handoff"),
        on_delete=models.CASCADE,
        related_name="queue_notice",
    )
    created_at = models.DateTimeField(_("queued"), default=timezone.now)
    email_sent_at = models.DateTimeField(_("e-mail sent"), null=True, blank=True)
    slack_sent_at = models.DateTimeField(_("Slack message sent"), null=True, blank=True)

    class Meta:
        verbose_name = _("queue notice")
        verbose_name_plural = _("queue notices")
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.handoff_id} queued"


class HandoffTimeline(models.Model):
    """The instants of one handoff's way from the prospect's action to sales' verdict
    (speed to lead), each written once, when it first happens, by the service that makes
    it happen (handoff.timeline). Stored rather than recomputed from the rows it copies
    (events, assignments, outbox messages) so that the speed-to-lead figures read one
    narrow table by `mql_at`, and a later edit or redelivery cannot move a past instant.
    """

    handoff = models.OneToOneField(
        Handoff, on_delete=models.CASCADE, primary_key=True, related_name="timeline"
    )
    # The MQL instant (= Handoff.created_at) again, so range scans need no join.
    mql_at = models.DateTimeField(_("MQL"))
    # The lead's source when it became MQL (Lead.source can be edited later).
    source = models.CharField(_("source"), max_length=100, blank=True)
    # The engagement event that made the lead MQL, when an MA event did (not a model
    # change or an edit): when it happened at the MA tool, reached LeadFlow, was recorded.
    event_occurred_at = models.DateTimeField(_("event at the MA tool"), null=True, blank=True)
    received_at = models.DateTimeField(_("received by LeadFlow"), null=True, blank=True)
    processed_at = models.DateTimeField(_("processed"), null=True, blank=True)
    assigned_at = models.DateTimeField(_("first assigned"), null=True, blank=True)
    notified_at = models.DateTimeField(_("rep notified"), null=True, blank=True)
    opened_at = models.DateTimeField(_("opened by the rep"), null=True, blank=True)
    first_contact_at = models.DateTimeField(_("first contact"), null=True, blank=True)
    decided_at = models.DateTimeField(_("verdict"), null=True, blank=True)
    sfa_delivered_at = models.DateTimeField(_("delivered to the SFA"), null=True, blank=True)

    class Meta:
        verbose_name = _("handoff timeline")
        verbose_name_plural = _("handoff timelines")
        indexes = [models.Index(fields=["mql_at"], name="handoff_timeline_mql_idx")]

    def __str__(self) -> str:
        return f"{self.handoff_id} @ {self.mql_at:%Y-%m-%d %H:%M}"


class TimelineStaleDay(models.Model):
    """ "The timelines of this MQL day changed": appended by handoff.timeline when it
    writes an instant that no other change of the handoff announces (the rep notified, the
    first view, the SFA delivery), read and removed by the SLA app's per-day recomputation
    of the speed-to-lead figures (sla.kpis.days), as its own marks are. Append-only, like
    those: no hot row to lock."""

    day = models.DateField(_("MQL day"), db_index=True)
    marked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("changed timeline day")
        verbose_name_plural = _("changed timeline days")

    def __str__(self) -> str:
        return str(self.day)


class ClaimStatus(models.TextChoices):
    PENDING = "pending", _("Waiting to be claimed")
    CLAIMED = "claimed", _("Claimed")
    PASSED = "passed", _("Passed to the next rep")
    QUEUED = "queued", _("Sent to the team queue")
    SUPERSEDED = "superseded", _("Moved or decided first")


class ClaimVia(models.TextChoices):
    OPENED = "opened", _("Opened the handoff")
    ACKNOWLEDGED = "acknowledged", _("Acknowledged in the inbox")
    ACTIVITY = "activity", _("Logged an activity")


class HandoffClaim(models.Model):
    """The claim window of one assignment (handoff.claims): who had to claim it by when,
    and what happened — claimed (how, when), passed on (to whom, why), sent to the queue,
    or overtaken by a reassignment or a verdict. Only teams that require claims get rows."""

    handoff = models.ForeignKey(Handoff, on_delete=models.CASCADE, related_name="claims")
    assignment = models.OneToOneField(
        Assignment, on_delete=models.CASCADE, related_name="claim", editable=False
    )
    rep = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("rep"), on_delete=models.PROTECT, related_name="+"
    )
    started_at = models.DateTimeField(_("assigned"))
    due_at = models.DateTimeField(_("claim by"))
    status = models.CharField(
        _("status"), max_length=20, choices=ClaimStatus.choices, default=ClaimStatus.PENDING
    )
    claimed_via = models.CharField(
        _("claimed by"), max_length=20, choices=ClaimVia.choices, blank=True
    )
    resolved_at = models.DateTimeField(_("when"), null=True, blank=True)
    passed_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("passed to"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    reason = models.TextField(_("why"), blank=True)

    class Meta:
        verbose_name = _("claim")
        verbose_name_plural = _("claims")
        ordering = ["started_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["handoff"],
                condition=models.Q(status="pending"),
                name="handoff_claim_one_pending",
            ),
        ]
        indexes = [
            # The sweep reads only the windows still waiting, by due time.
            models.Index(
                fields=["due_at"],
                condition=models.Q(status="pending"),
                name="handoff_claim_pending_due_idx",
            ),
            models.Index(fields=["rep", "status"], name="handoff_claim_rep_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.handoff_id} {self.rep} {self.status}"


# Routing plans (drafts of the configuration above, replayed, then published): their own
# module, imported here so that the app registry sees them.
from handoff.plan_models import (  # noqa: E402, F401
    PlanMember,
    PlanRep,
    PlanRule,
    PlanStatus,
    PlanTeam,
    ReplayRun,
    ReplayStatus,
    RoutingPlan,
)
