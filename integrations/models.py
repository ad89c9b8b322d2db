"""Inbound sources and the raw inbox of what they sent.

A `Source` is one sending system (a Mautic instance, a HubSpot app, a Marketo webhook, a
Zapier zap). Everything it posts is stored as an `InboundEvent` before it is answered,
so nothing a sender was told we accepted can be lost; a Celery task then turns it into
leads and engagement events.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from integrations.mapping import source_mapping_default, source_mapping_problems


class SourceKind(models.TextChoices):
    GENERIC = "generic", _("Generic JSON (Zapier, Make, custom)")
    MAUTIC = "mautic", _("Mautic")
    HUBSPOT = "hubspot", _("HubSpot")
    MARKETO = "marketo", _("Marketo")


class Source(models.Model):
    kind = models.CharField(_("kind"), max_length=20, choices=SourceKind.choices)
    slug = models.SlugField(
        _("slug"), max_length=50, unique=True, help_text=_("The last part of the intake URL.")
    )
    name = models.CharField(_("name"), max_length=100, blank=True)
    enabled = models.BooleanField(_("enabled"), default=True)
    # Two secrets may be valid at once so a sender can be switched to a new secret without
    # a window in which its deliveries are refused. HMAC needs the secret itself, so it is
    # stored as given (like any API credential in the database).
    secret = models.CharField(
        _("secret"),
        max_length=255,
        help_text=_(
            "Mautic: the webhook secret. HubSpot: the app's client secret. Marketo: the value "
            "of the X-LeadFlow-Token header. Generic: the HMAC key."
        ),
    )
    previous_secret = models.CharField(
        _("previous secret"),
        max_length=255,
        blank=True,
        help_text=_("Still accepted while senders move to the new secret; clear it afterwards."),
    )
    mapping = models.JSONField(
        _("mapping"),
        default=dict,
        blank=True,
        help_text=_(
            "How the sender's fields become lead fields. Left empty, the defaults for the "
            "kind are filled in. See docs/intake.md."
        ),
    )
    rate_limit_per_minute = models.PositiveIntegerField(
        _("rate limit per minute"),
        default=3000,
        help_text=_("Requests per minute before answering 429; 0 means no limit."),
    )
    id_system = models.CharField(
        _("id system"),
        max_length=50,
        blank=True,
        help_text=_(
            "Name under which the sender's contact ids are kept on leads. Empty: the kind "
            "(set it when two sources of one kind number their contacts separately)."
        ),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("inbound source")
        verbose_name_plural = _("inbound sources")
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name or self.slug

    def save(self, *args, **kwargs) -> None:
        if not self.mapping and self.kind:
            self.mapping = source_mapping_default(self.kind)
        super().save(*args, **kwargs)
        from integrations.selectors import forget_sources

        forget_sources()

    def delete(self, *args, **kwargs):
        result = super().delete(*args, **kwargs)
        from integrations.selectors import forget_sources

        forget_sources()
        return result

    def clean(self) -> None:
        if not self.mapping and self.kind:
            self.mapping = source_mapping_default(self.kind)
        problems = source_mapping_problems(self.mapping)
        if problems:
            raise ValidationError({"mapping": problems})

    @property
    def external_id_system(self) -> str:
        return self.id_system or self.kind

    @property
    def secrets(self) -> list[str]:
        return [s for s in (self.secret, self.previous_secret) if s]

    @property
    def intake_url(self) -> str:
        path = reverse("integrations:intake", kwargs={"slug": self.slug})
        return settings.PUBLIC_BASE_URL.rstrip("/") + path


class InboundStatus(models.TextChoices):
    RECEIVED = "received", _("Received")
    PROCESSED = "processed", _("Processed")
    FAILED = "failed", _("Failed")
    DUPLICATE = "duplicate", _("Duplicate")


class InboundEvent(models.Model):
    """One request a source made, exactly as it arrived, and what became of it."""

    source = models.ForeignKey(
        Source, verbose_name=_("source"), on_delete=models.PROTECT, related_name="inbound_events"
    )
    received_at = models.DateTimeField(_("received"), default=timezone.now)
    # The body is JSON, which is UTF-8 text by definition; bodies that are not are refused
    # with a 400 before anything is stored, so `body.encode()` gives back the exact bytes.
    body = models.TextField(_("body"))
    headers = models.JSONField(_("headers"), default=dict, blank=True)
    # The sender's delivery identity: its event ids, or the body's hash when it sends none.
    # Unique per source among non-duplicates (see constraint), so a redelivery racing the
    # original cannot be stored as a second event to process.
    dedup_key = models.CharField(_("deduplication key"), max_length=200)
    status = models.CharField(
        _("status"), max_length=20, choices=InboundStatus.choices, default=InboundStatus.RECEIVED
    )
    reason = models.TextField(_("reason"), blank=True)
    duplicate_of = models.ForeignKey(
        "self",
        verbose_name=_("duplicate of"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="duplicates",
    )
    result = models.JSONField(_("result"), default=dict, blank=True)
    attempts = models.PositiveIntegerField(_("processing attempts"), default=0)
    processed_at = models.DateTimeField(_("processed"), null=True, blank=True)
    # When a processing task was last handed to the broker. Empty while received means it
    # never was (the broker was down): the requeue sweep takes those within a minute.
    enqueued_at = models.DateTimeField(_("queued"), null=True, blank=True)
    # When the raw body and headers were replaced by a marker (an erasure request, or the
    # retention period ran out); the row stays for counts and deduplication.
    redacted_at = models.DateTimeField(_("payload removed"), null=True, blank=True)
    # Processing goes in chunks, each its own transaction (see integrations.services):
    # `items_done` is the cursor committed with each chunk, so a retry, a redelivered
    # task or a re-process continues after the last committed chunk. The worker that runs
    # the chunks holds a lease between them: another task for the same event steps aside
    # until `lease_until` (a worker that died between chunks is taken over after it).
    items_total = models.PositiveIntegerField(_("items"), null=True, blank=True)
    items_done = models.PositiveIntegerField(_("items done"), default=0)
    claimed_by = models.CharField(_("processed by"), max_length=100, blank=True)
    lease_until = models.DateTimeField(_("lease until"), null=True, blank=True)

    class Meta:
        verbose_name = _("inbound event")
        verbose_name_plural = _("inbound events")
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "dedup_key"],
                condition=~models.Q(status="duplicate"),
                name="inbound_event_dedup_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "received_at"], name="inbound_status_time_idx"),
        ]
        permissions = [("reprocess_inboundevent", _("Can re-process inbound events"))]

    def __str__(self) -> str:
        # Shown as the admin page title and breadcrumb: the status in the reader's language.
        return f"#{self.pk} {self.get_status_display()}"


class ItemOutcome(models.TextChoices):
    APPLIED = "applied", _("Applied")
    SKIPPED = "skipped", _("Skipped")
    FAILED = "failed", _("Item error")


class InboundItemResult(models.Model):
    """What became of one item of an inbound event, written in the chunk that applied it.

    One row per item and (event, index) unique: an item is applied at most once however
    often the event is processed, and a re-process after a mapping fix retries only the
    items that failed (their rows are removed), never the applied ones."""

    inbound_event = models.ForeignKey(
        InboundEvent,
        verbose_name=_("inbound event"),
        on_delete=models.CASCADE,
        related_name="item_results",
    )
    index = models.PositiveIntegerField(_("position"))
    label = models.CharField(_("item"), max_length=200)
    outcome = models.CharField(_("outcome"), max_length=10, choices=ItemOutcome.choices)
    # The sender's field a refused value came from ("lead.last_name"), empty when the
    # item as a whole was refused (no e-mail and no known id).
    field = models.CharField(_("field"), max_length=200, blank=True)
    reason = models.TextField(_("reason"), blank=True)
    lead = models.ForeignKey(
        "leadflow.Lead",
        verbose_name=_("lead"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    event_created = models.BooleanField(_("new engagement event"), default=False)

    class Meta:
        verbose_name = _("inbound item result")
        verbose_name_plural = _("inbound item results")
        ordering = ["inbound_event", "index"]
        constraints = [
            models.UniqueConstraint(
                fields=["inbound_event", "index"], name="inbound_item_result_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label} {self.get_outcome_display()}"


# Outbound delivery (destinations, the outbox, SFA feedback) lives in its own subpackage;
# importing it here registers its models with this app.
from integrations.outbound.models import (  # noqa: E402
    Destination,
    DestinationKind,
    FeedbackEvent,
    FeedbackOutcome,
    FeedbackResult,
    MessageStatus,
    OutboundEvent,
    OutboxMessage,
)

__all__ = [
    "Destination",
    "DestinationKind",
    "FeedbackEvent",
    "FeedbackOutcome",
    "FeedbackResult",
    "InboundEvent",
    "InboundItemResult",
    "InboundStatus",
    "ItemOutcome",
    "MessageStatus",
    "OutboundEvent",
    "OutboxMessage",
    "Source",
    "SourceKind",
]


class LeadImport(models.Model):
    """A large CSV import (scoring.services.IMPORT_WAVE_MIN rows or more): its rows are
    scored without the MQL policy, and the leads they touched are handed on together by a
    task once it is over (integrations.services.lead_import_hand_off). Kept so that an
    import that stopped half-way (an error, a web worker killed at its timeout) still hands
    on the rows it committed."""

    source = models.CharField(_("source"), max_length=100)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("by user"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    started_at = models.DateTimeField(_("started"), default=timezone.now)
    rows = models.PositiveIntegerField(_("rows read"), default=0)
    # When the import last showed it is alive (every few seconds while rows commit): one
    # silent for IMPORT_STALL_SECONDS has stopped, and its committed rows are handed on.
    progressed_at = models.DateTimeField(default=timezone.now)
    # The last row was read, or the import stopped with an error.
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    handed_off_at = models.DateTimeField(_("handed on"), null=True, blank=True)
    hand_off_runs = models.PositiveSmallIntegerField(default=0)
    mqls = models.PositiveIntegerField(_("MQLs"), default=0)

    class Meta:
        verbose_name = _("lead import")
        verbose_name_plural = _("lead imports")

    def __str__(self) -> str:
        return f"{self.source} {self.started_at:%Y-%m-%d %H:%M}"


class ImportedLead(models.Model):
    """A lead a large import's committed row touched, written in that row's transaction;
    `pending` until the import's hand-off has applied the MQL policy to it."""

    lead_import = models.ForeignKey(LeadImport, on_delete=models.CASCADE, related_name="leads")
    lead = models.ForeignKey("leadflow.Lead", on_delete=models.CASCADE, related_name="+")
    pending = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["lead_import", "lead"], name="imported_lead_once")
        ]

    def __str__(self) -> str:
        return f"{self.lead_import_id}:{self.lead_id}"
