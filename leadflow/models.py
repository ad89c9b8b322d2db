"""The core domain: companies, leads, their engagement and their journey through stages.

Only `leadflow.lifecycle` changes `Lead.stage`; everything else reads it.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from leadflow.japan import PREFECTURE_CHOICES, Region, region_for
from leadflow.normalize import (
    company_key,
    company_search_key,
    lead_search_key,
    name_key,
    normalize_email,
    phone_key,
)


class User(AbstractUser):
    """A LeadFlow user. Roles are Django groups (see `leadflow.roles`)."""

    def __str__(self) -> str:
        full = f"{self.last_name} {self.first_name}".strip()
        return full or self.username


class Stage(models.TextChoices):
    """The lead journey from the article, plus the two ways out of it."""

    ANONYMOUS = "anonymous", _("Anonymous")
    KNOWN = "known", _("Known lead")
    MQL = "mql", _("MQL")
    SQL = "sql", _("SQL")
    OPPORTUNITY = "opportunity", _("Opportunity")
    CUSTOMER = "customer", _("Customer")
    ADVOCATE = "advocate", _("Advocate")
    RECYCLED = "recycled", _("Recycled (nurture)")
    DISQUALIFIED = "disqualified", _("Disqualified")


class Industry(models.TextChoices):
    MANUFACTURING = "manufacturing", _("Manufacturing")
    IT = "it", _("IT and software")
    FINANCE = "finance", _("Finance and insurance")
    RETAIL = "retail", _("Retail and wholesale")
    CONSTRUCTION = "construction", _("Construction and real estate")
    HEALTHCARE = "healthcare", _("Healthcare")
    LOGISTICS = "logistics", _("Logistics")
    SERVICES = "services", _("Professional services")
    EDUCATION = "education", _("Education")
    PUBLIC = "public", _("Public sector")
    OTHER = "other", _("Other")


class RevenueBand(models.TextChoices):
    UNDER_100M = "under_100m", _("Under ¥100M")
    FROM_100M = "100m_1b", _("¥100M–¥1B")
    FROM_1B = "1b_10b", _("¥1B–¥10B")
    FROM_10B = "10b_100b", _("¥10B–¥100B")
    OVER_100B = "over_100b", _("Over ¥100B")


class Role(models.TextChoices):
    """How much say the person has in a purchase (意思決定者・影響者)."""

    EXECUTIVE = "executive", _("Executive")
    DIRECTOR = "director", _("Director / head of department")
    MANAGER = "manager", _("Manager")
    STAFF = "staff", _("Staff")
    OTHER = "other", _("Other")


class EventKind(models.TextChoices):
    PAGE_VIEW = "page_view", _("Page view")
    PRICING_PAGE_VIEW = "pricing_page_view", _("Pricing page view")
    DOCUMENT_DOWNLOAD = "document_download", _("Document download")
    CASE_STUDY_DOWNLOAD = "case_study_download", _("Case study download")
    SEMINAR_ATTENDANCE = "seminar_attendance", _("Seminar attendance")
    CONSULTATION = "consultation", _("Individual consultation")
    EMAIL_OPEN = "email_open", _("Email open")
    EMAIL_CLICK = "email_click", _("Email click")
    FORM_SUBMIT = "form_submit", _("Form submit")
    TRADE_SHOW_VISIT = "trade_show_visit", _("Trade-show visit (business card)")
    UNSUBSCRIBE = "unsubscribe", _("Unsubscribe")
    OTHER = "other", _("Other")


class Company(models.Model):
    name = models.CharField(_("name"), max_length=200)
    name_kana = models.CharField(_("name (kana)"), max_length=200, blank=True)
    domain = models.CharField(_("domain"), max_length=253, blank=True, db_index=True)
    employee_count = models.PositiveIntegerField(_("employees"), null=True, blank=True)
    revenue_band = models.CharField(
        _("annual revenue"), max_length=20, choices=RevenueBand.choices, blank=True
    )
    industry = models.CharField(_("industry"), max_length=30, choices=Industry.choices, blank=True)
    prefecture = models.CharField(
        _("prefecture"), max_length=10, choices=PREFECTURE_CHOICES, blank=True
    )
    # Stored (not only derived) so routing and set-based scoring can filter on it in SQL;
    # save() keeps it in step with the prefecture.
    region = models.CharField(_("region"), max_length=20, choices=Region.choices, blank=True)
    # The name without legal forms, width and case: what matching compares (save() sets it).
    match_key = models.CharField(
        _("match key"), max_length=200, blank=True, editable=False, db_index=True
    )
    # The rep who owns the account (set in the admin): a new MQL of the company goes to
    # them first (handoff routing, "account owner first").
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("account owner"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_companies",
        help_text=_("New MQLs of this company go to this rep first, when they are available."),
    )
    # Name and kana folded for search (leadflow.normalize.search_fold); save() sets it.
    search_key = models.CharField(max_length=410, blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("company")
        verbose_name_plural = _("companies")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        self.region = region_for(self.prefecture)
        self.match_key = company_key(self.name)
        self.search_key = company_search_key(self.name, self.name_kana)
        if kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = {
                *kwargs["update_fields"],
                "region",
                "match_key",
                "search_key",
            }
        super().save(*args, **kwargs)


# The person's own fields of a lead besides the e-mail (its key), in the order they are
# shown: what an upsert may set (leadflow.services.LEAD_FIELDS) and what a personal-data
# export gives back (privacy.core).
PERSON_FIELDS = (
    "last_name",
    "first_name",
    "last_name_kana",
    "first_name_kana",
    "department",
    "job_title",
    "role",
    "phone",
)

# The lead fields its search key is made of (leadflow.normalize.lead_search_key).
SEARCHED_LEAD_FIELDS = (
    "last_name",
    "first_name",
    "last_name_kana",
    "first_name_kana",
    "email",
    "phone",
)


class LeadQuerySet(models.QuerySet["Lead"]):
    def with_email(self, address: str) -> LeadQuerySet:
        """The lead with this address, through the case-insensitive unique index. A plain
        `email=` match cannot use that index and reads the whole table on PostgreSQL
        (5 ms at 20,000 leads, per webhook)."""
        return (
            self.alias(email_ci=Lower("email"))
            .filter(email_ci=address.strip().lower())
            .exclude(email="")
        )


class Lead(models.Model):
    # Blank only for anonymous leads (an MA tool's tracked visitor, known by its external id).
    email = models.EmailField(_("email"), max_length=254, blank=True)
    last_name = models.CharField(_("last name"), max_length=100, blank=True)
    first_name = models.CharField(_("first name"), max_length=100, blank=True)
    last_name_kana = models.CharField(_("last name (kana)"), max_length=100, blank=True)
    first_name_kana = models.CharField(_("first name (kana)"), max_length=100, blank=True)
    company = models.ForeignKey(
        Company,
        verbose_name=_("company"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="leads",
    )
    department = models.CharField(_("department"), max_length=200, blank=True)
    job_title = models.CharField(_("job title"), max_length=200, blank=True)
    role = models.CharField(_("role"), max_length=20, choices=Role.choices, blank=True)
    phone = models.CharField(_("phone"), max_length=40, blank=True)
    source = models.CharField(
        _("source"), max_length=100, blank=True, help_text=_("Where the lead came from.")
    )
    stage = models.CharField(
        _("stage"), max_length=20, choices=Stage.choices, default=Stage.KNOWN, editable=False
    )
    stage_changed_at = models.DateTimeField(_("stage changed"), default=timezone.now)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_leads",
    )
    attributes = models.JSONField(
        _("custom attributes"), default=dict, blank=True, help_text=_("Free-form fields.")
    )
    # Matching keys for duplicate detection (see leadflow.normalize); save() sets them.
    name_key = models.CharField(max_length=200, blank=True, editable=False)
    phone_key = models.CharField(max_length=20, blank=True, editable=False, db_index=True)
    # What the handoff lists search (name, kana, e-mail, phone; leadflow.normalize);
    # save() sets it, and the database copies it onto the lead's handoffs
    # (Handoff.search_key, handoff migration 0012), which is what is indexed.
    search_key = models.CharField(max_length=800, blank=True, editable=False)
    # Whether any handoff was ever made of the lead: the handoff lists' source filter
    # looks only at these (lead_handoff_source_idx, a tenth of the leads or less).
    # The database keeps it (triggers of handoff's migration 0008): set when a handoff
    # row points at the lead, and never cleared by a save of a copy loaded before.
    has_handoff = models.BooleanField(default=False, db_default=False, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = LeadQuerySet.as_manager()

    class Meta:
        verbose_name = _("lead")
        verbose_name_plural = _("leads")
        ordering = ["-created_at", "-id"]
        constraints = [
            # Services store emails lower-cased; the constraint guards every other path.
            models.UniqueConstraint(
                Lower("email"), condition=~models.Q(email=""), name="lead_email_ci_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["stage", "stage_changed_at"], name="lead_stage_idx"),
            models.Index(fields=["created_at"], name="lead_created_idx"),
            models.Index(fields=["name_key", "company"], name="lead_name_company_idx"),
            # The handoff lists' source filter, among the leads that have a handoff: the
            # ids come from the index alone (an index-only scan), no lead row is read.
            models.Index(
                fields=["source", "id"],
                condition=models.Q(has_handoff=True),
                name="lead_handoff_source_idx",
            ),
        ]

    def __str__(self) -> str:
        name = self.full_name
        if name and self.email:
            return f"{name} <{self.email}>"
        return name or self.email or f"#{self.pk}"

    def save(self, *args, **kwargs) -> None:
        fields = kwargs.get("update_fields")
        if fields is None or {"last_name", "first_name"} & set(fields):
            self.name_key = name_key(self.last_name, self.first_name)
            if fields is not None:
                kwargs["update_fields"] = {*fields, "name_key"}
        fields = kwargs.get("update_fields")
        if fields is None or "phone" in fields:
            self.phone_key = phone_key(self.phone)
            if fields is not None:
                kwargs["update_fields"] = {*fields, "phone_key"}
        fields = kwargs.get("update_fields")
        if fields is None or set(SEARCHED_LEAD_FIELDS) & set(fields):
            self.search_key = lead_search_key(
                **{name: getattr(self, name) for name in SEARCHED_LEAD_FIELDS}
            )
            if fields is not None:
                kwargs["update_fields"] = {*fields, "search_key"}
        super().save(*args, **kwargs)

    def clean(self) -> None:
        self.email = normalize_email(self.email)
        if not self.email and self.stage != Stage.ANONYMOUS:
            raise ValidationError({"email": _("Only an anonymous lead may have no e-mail.")})

    @property
    def full_name(self) -> str:
        # Japanese order: family name first.
        return f"{self.last_name} {self.first_name}".strip()

    @property
    def full_name_kana(self) -> str:
        """The reading (フリガナ) in the same order: a rep needs it to say the name on a call."""
        return f"{self.last_name_kana} {self.first_name_kana}".strip()


class LeadExternalId(models.Model):
    """The lead's id in a connected system (Mautic contact id, Salesforce Lead id, ...)."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="external_ids")
    system = models.CharField(_("system"), max_length=50)
    external_id = models.CharField(_("external id"), max_length=255)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("external id")
        verbose_name_plural = _("external ids")
        constraints = [
            models.UniqueConstraint(
                fields=["system", "external_id"], name="external_id_unique_per_system"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.system}:{self.external_id}"


class EngagementEvent(models.Model):
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(_("kind"), max_length=30, choices=EventKind.choices)
    occurred_at = models.DateTimeField(_("occurred at"))
    properties = models.JSONField(_("properties"), default=dict, blank=True)
    source = models.CharField(_("source"), max_length=100, blank=True)
    # The sender's own id for the event; with `source` it makes redelivery harmless.
    external_id = models.CharField(_("external event id"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("recorded"), auto_now_add=True)
    # When LeadFlow received the request (webhook, CSV upload) that carried the event:
    # `occurred_at` → `received_at` is the MA tool's own delay, `received_at` →
    # `created_at` LeadFlow's (speed to lead). Empty for events recorded otherwise.
    received_at = models.DateTimeField(_("received"), null=True, blank=True)

    class Meta:
        verbose_name = _("engagement event")
        verbose_name_plural = _("engagement events")
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "external_id"],
                condition=~models.Q(external_id=""),
                name="event_external_id_unique_per_source",
            ),
        ]
        indexes = [models.Index(fields=["lead", "occurred_at"], name="event_lead_time_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} @ {self.occurred_at:%Y-%m-%d %H:%M}"


class StageTransition(models.Model):
    """Audit row for every stage change, written in the same transaction as the change."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="transitions")
    from_stage = models.CharField(_("from"), max_length=20, choices=Stage.choices)
    to_stage = models.CharField(_("to"), max_length=20, choices=Stage.choices)
    occurred_at = models.DateTimeField(_("when"), default=timezone.now)
    # Who moved it: a person, or a named part of the system ("scoring", "sfa:salesforce").
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("by user"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_system = models.CharField(_("by system"), max_length=100, blank=True)
    reason = models.TextField(_("reason"), blank=True)
    context = models.JSONField(_("context"), default=dict, blank=True)

    class Meta:
        verbose_name = _("stage transition")
        verbose_name_plural = _("stage transitions")
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(actor_user__isnull=False, actor_system="")
                    | models.Q(actor_user__isnull=True) & ~models.Q(actor_system="")
                ),
                name="transition_has_exactly_one_actor",
            ),
        ]
        indexes = [
            models.Index(fields=["lead", "occurred_at"], name="transition_lead_time_idx"),
            models.Index(fields=["to_stage", "occurred_at"], name="transition_to_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.lead_id}: {self.get_from_stage_display()} → {self.get_to_stage_display()}"

    @property
    def actor_display(self) -> str:
        return str(self.actor_user) if self.actor_user_id else self.actor_system


class WaveKind(models.TextChoices):
    PUBLISH = "publish", _("Scoring model published")
    RESCORE = "rescore", _("Rescore")
    IMPORT = "import", _("Import")


class MqlWave(models.Model):
    """Many leads made MQLs at once, by one cause (a scoring model published, an import):
    who or what started it, how many it moved, how many reps got at once and how many
    waited in their team's queue (handoff holds a wave's MQLs above the teams' free
    capacity there, their first-contact clock not running until a rep gets them)."""

    kind = models.CharField(_("cause"), max_length=20, choices=WaveKind.choices)
    # What it belongs to, so each batch of the cause finds it: "rescore:<run id>".
    key = models.CharField(max_length=100, unique=True, editable=False)
    # What started it, in words: "Scoring model v4", "Import contacts.csv".
    label = models.CharField(_("started by"), max_length=200)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("by user"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    started_at = models.DateTimeField(_("started"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    mqls = models.PositiveIntegerField(_("MQLs"), default=0)
    assigned = models.PositiveIntegerField(_("assigned at once"), default=0)
    held = models.PositiveIntegerField(_("waiting in the queue"), default=0)

    class Meta:
        verbose_name = _("MQL wave")
        verbose_name_plural = _("MQL waves")
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return self.label


class DuplicateCandidate(models.Model):
    """Two leads that look like one person, with the evidence, for marketing to review.

    Never merged automatically: a wrong merge mixes two people's data.
    """

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        DISMISSED = "dismissed", _("Not the same person")

    # lead_a.pk < lead_b.pk, so one pair has one row whichever way it was found.
    lead_a = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="+")
    lead_b = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="+")
    evidence = models.JSONField(_("evidence"), default=list)
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.OPEN
    )
    detected_at = models.DateTimeField(_("detected"), auto_now_add=True)
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        verbose_name = _("duplicate candidate")
        verbose_name_plural = _("duplicate candidates")
        ordering = ["-detected_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["lead_a", "lead_b"], name="duplicate_pair_unique"),
            models.CheckConstraint(
                condition=models.Q(lead_a__lt=models.F("lead_b")), name="duplicate_pair_ordered"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.lead_a_id} ~ {self.lead_b_id}"


class LeadMerge(models.Model):
    """Audit record of two leads made one: who, when, and everything the merged-away lead
    was (its fields as they stood), so nothing about it is lost with its row."""

    kept = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="merges")
    merged_lead_id = models.BigIntegerField(_("merged lead id"))
    merged_email = models.CharField(_("merged e-mail"), max_length=254, blank=True)
    snapshot = models.JSONField(_("merged lead as it was"))
    moved = models.JSONField(_("rows moved"), default=dict)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor_system = models.CharField(max_length=100, blank=True)
    merged_at = models.DateTimeField(_("merged at"), default=timezone.now)

    class Meta:
        verbose_name = _("lead merge")
        verbose_name_plural = _("lead merges")
        ordering = ["-merged_at", "-id"]

    def __str__(self) -> str:
        return f"{self.merged_email or self.merged_lead_id} → {self.kept_id}"


class ConfigVersion(models.Model):
    """One row whose `version` changes with every write to the small configuration tables
    that each event reads (routing rules, SLA policies and calendars): database triggers
    on those tables set it to a new random number (see leadflow.config). Random, not +1,
    so a rolled-back change never leaves a number that a later change could reuse."""

    version = models.BigIntegerField()

    def __str__(self) -> str:
        return str(self.version)


class Heartbeat(models.Model):
    """When a periodic process last showed it is alive: one row per name ("beat"). In the
    database, not the cache: the local run's cache is per process, and web, worker and
    beat must all see the same tick."""

    name = models.CharField(_("name"), max_length=50, unique=True)
    beat_at = models.DateTimeField(_("last tick"))

    class Meta:
        verbose_name = _("heartbeat")
        verbose_name_plural = _("heartbeats")

    def __str__(self) -> str:
        return f"{self.name} {self.beat_at:%Y-%m-%d %H:%M:%S}"
