"""Outbound side of the integrations: where leads go, what is on its way, what came back.

A `Destination` is one connected system (an SFA, or a marketing tool that takes recycled
leads back). Every message to it is an `OutboxMessage` row written in the same
transaction as the stage change that caused it, so a change that rolls back sends
nothing and a change that commits is never forgotten. `FeedbackEvent` records what the
SFA reported back (opportunity, won, lost, disqualified) for the dashboards.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from leadflow.models import Lead, StageTransition

__all__ = [
    "OPEN_STATUSES",
    "Destination",
    "DestinationKind",
    "FeedbackEvent",
    "FeedbackOutcome",
    "FeedbackResult",
    "MessageStatus",
    "OutboundEvent",
    "OutboxMessage",
]


class DestinationKind(models.TextChoices):
    WEBHOOK = "webhook", _("Generic webhook")
    SALESFORCE = "salesforce", _("Salesforce")
    HUBSPOT = "hubspot", _("HubSpot")


class OutboundEvent(models.TextChoices):
    MQL_CREATED = "mql_created", _("MQL created")
    ACCEPTED = "accepted", _("Accepted by sales (SQL)")
    REJECTED = "rejected", _("Rejected by sales")
    RECYCLED = "recycled", _("Recycled to marketing")
    WON = "won", _("Won")
    LOST = "lost", _("Lost")


class MessageStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    IN_FLIGHT = "in_flight", _("In flight")
    DELIVERED = "delivered", _("Delivered")
    DEAD = "dead", _("Dead (needs attention)")


# Statuses of a message that still has to go out; a later message for the same lead and
# destination waits while an older one is in one of these.
OPEN_STATUSES = (MessageStatus.PENDING, MessageStatus.IN_FLIGHT)

SFA_EVENTS = [
    OutboundEvent.MQL_CREATED,
    OutboundEvent.ACCEPTED,
    OutboundEvent.REJECTED,
    OutboundEvent.WON,
    OutboundEvent.LOST,
]


def default_events() -> list[str]:
    return [str(event) for event in SFA_EVENTS]


class Destination(models.Model):
    """One connected system that receives outbox messages (and may report outcomes back)."""

    kind = models.CharField(_("kind"), max_length=20, choices=DestinationKind.choices)
    slug = models.SlugField(
        _("slug"),
        max_length=50,
        unique=True,
        help_text=_("Used in the feedback URL: /api/v1/feedback/<slug>/."),
    )
    name = models.CharField(_("name"), max_length=100)
    enabled = models.BooleanField(_("enabled"), default=True)
    marketing_side = models.BooleanField(
        _("marketing side"),
        default=False,
        help_text=_(
            "A marketing tool that takes rejected and lost leads back for nurture; "
            "only such destinations may receive “recycled” messages."
        ),
    )
    events = models.JSONField(
        _("events"),
        default=default_events,
        blank=True,
        help_text=_("Which events this destination receives."),
    )
    field_mapping = models.JSONField(
        _("field mapping"),
        default=dict,
        blank=True,
        help_text=_(
            "Per target object, target field → source. A source is a path such as "
            "“lead.last_name”, “company.name”, “scores.fit”, “transition.reason”, or "
            '{"path": ..., "map": {...}, "default": ...}, or {"value": "constant"}. '
            "Left empty, the kind's default mapping is filled in."
        ),
    )

    # Where to call. Always configurable so tests and staging point at local servers.
    base_url = models.URLField(
        _("URL"),
        max_length=500,
        blank=True,
        help_text=_(
            "Webhook: the URL to POST to. Salesforce: the instance URL "
            "(https://<domain>.my.salesforce.com). HubSpot: the API base URL."
        ),
    )
    timeout_seconds = models.FloatField(_("timeout (seconds)"), default=10.0)
    max_attempts = models.PositiveIntegerField(
        _("maximum attempts"),
        default=16,
        help_text=_("After this many failed attempts a message is dead (needs a replay)."),
    )

    # Webhook and feedback: the shared secret(s) of the X-LeadFlow-Signature scheme.
    signing_secret = models.CharField(_("signing secret"), max_length=200, blank=True)
    previous_signing_secret = models.CharField(
        _("previous signing secret"),
        max_length=200,
        blank=True,
        help_text=_("Still accepted on feedback while the SFA switches to the new secret."),
    )

    # Salesforce OAuth (client credentials, or a refresh token from a connected app).
    token_url = models.URLField(
        _("OAuth token URL"),
        max_length=500,
        blank=True,
        help_text=_("Salesforce: https://<domain>.my.salesforce.com/services/oauth2/token"),
    )
    client_id = models.CharField(_("client id"), max_length=255, blank=True)
    client_secret = models.CharField(_("client secret"), max_length=255, blank=True)
    refresh_token = models.CharField(
        _("refresh token"),
        max_length=500,
        blank=True,
        help_text=_("If set, the refresh-token grant is used; otherwise client credentials."),
    )
    api_version = models.CharField(_("API version"), max_length=10, default="60.0", blank=True)
    external_id_field = models.CharField(
        _("external id field"),
        max_length=80,
        default="LeadFlow_Id__c",
        blank=True,
        help_text=_("Salesforce Lead field (marked External ID) that holds the LeadFlow id."),
    )
    # HubSpot private-app token.
    api_token = models.CharField(_("API token"), max_length=255, blank=True)

    # Cached by the connector; written outside any long transaction.
    access_token = models.CharField(_("cached access token"), max_length=1000, blank=True)
    access_token_at = models.DateTimeField(_("token fetched"), null=True, blank=True)
    last_limit_info = models.CharField(
        _("last API limit info"),
        max_length=200,
        blank=True,
        help_text=_("Salesforce Sforce-Limit-Info of the last answer, e.g. api-usage=8370/15000."),
    )

    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("destination")
        verbose_name_plural = _("destinations")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        from integrations.mapping import destination_mapping_default

        if not self.field_mapping and self.kind:
            self.field_mapping = destination_mapping_default(self.kind)
        if self.kind == DestinationKind.HUBSPOT and not self.base_url:
            self.base_url = "https://api.hubapi.com"
        super().save(*args, **kwargs)

    def clean(self) -> None:
        from integrations.mapping import destination_mapping_problem

        errors: dict[str, Any] = {}
        if not isinstance(self.events, list) or any(
            event not in OutboundEvent.values for event in self.events
        ):
            errors["events"] = _("Choose events from: %(events)s.") % {
                "events": ", ".join(OutboundEvent.values)
            }
        elif OutboundEvent.RECYCLED in self.events and not self.marketing_side:
            errors["events"] = _("Only a marketing-side destination receives “recycled” messages.")
        problem = destination_mapping_problem(self.field_mapping)
        if problem:
            errors["field_mapping"] = problem
        if self.kind == DestinationKind.WEBHOOK and not self.signing_secret:
            errors["signing_secret"] = _("A webhook destination needs a signing secret.")
        if self.kind in (DestinationKind.WEBHOOK, DestinationKind.SALESFORCE) and not self.base_url:
            errors["base_url"] = _("This kind of destination needs a URL.")
        if self.kind == DestinationKind.SALESFORCE:
            if not self.token_url:
                errors["token_url"] = _("Salesforce needs its OAuth token URL.")
            if not self.client_id:
                errors["client_id"] = _("Salesforce needs the connected app's client id.")
            if not self.external_id_field:
                errors["external_id_field"] = _("Salesforce needs an external id field.")
        if self.kind == DestinationKind.HUBSPOT and not self.api_token:
            errors["api_token"] = _("HubSpot needs a private-app token.")
        if self.timeout_seconds is not None and not 0 < self.timeout_seconds <= 120:
            errors["timeout_seconds"] = _("Use a timeout between 0 and 120 seconds.")
        if self.max_attempts is not None and self.max_attempts < 1:
            errors["max_attempts"] = _("At least one attempt.")
        if errors:
            raise ValidationError(errors)

    @property
    def feedback_secrets(self) -> list[str]:
        return [self.signing_secret, self.previous_signing_secret]

    def receives(self, event: str) -> bool:
        return self.enabled and event in (self.events or [])


class OutboxMessage(models.Model):
    """One message to one destination, written with the stage change that caused it."""

    destination = models.ForeignKey(
        Destination,
        verbose_name=_("destination"),
        on_delete=models.CASCADE,
        related_name="messages",
    )
    lead = models.ForeignKey(
        Lead, verbose_name=_("lead"), on_delete=models.CASCADE, related_name="outbox_messages"
    )
    transition = models.ForeignKey(
        StageTransition,
        verbose_name=_("stage transition"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    event = models.CharField(_("event"), max_length=20, choices=OutboundEvent.choices)
    payload = models.JSONField(_("payload"), default=dict)
    # "<event>:<transition id>": a stage change enqueues each event once per destination,
    # and a receiver that sees the key twice knows it is a redelivery.
    idempotency_key = models.CharField(_("idempotency key"), max_length=200)
    status = models.CharField(
        _("status"), max_length=20, choices=MessageStatus.choices, default=MessageStatus.PENDING
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), default=timezone.now)
    # A claim is a lease: a worker killed mid-call leaves the row in flight, and once the
    # lease has expired another worker takes it again. The token tells a slow worker
    # that its claim was taken over, so it does not overwrite the newer result.
    lease_expires_at = models.DateTimeField(_("lease expires"), null=True, blank=True)
    claim_token = models.UUIDField(_("claim token"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    response_status = models.PositiveIntegerField(_("response status"), null=True, blank=True)
    response_body = models.TextField(_("response (excerpt)"), blank=True)
    remote_id = models.CharField(_("remote id"), max_length=255, blank=True)
    info = models.JSONField(_("delivery details"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("outbox message")
        verbose_name_plural = _("outbox messages")
        ordering = ["-id"]
        permissions = [("replay_outboxmessage", _("Can replay dead outbox messages"))]
        constraints = [
            models.UniqueConstraint(
                fields=["destination", "idempotency_key"],
                name="outbox_idempotency_key_unique_per_destination",
            ),
        ]
        indexes = [
            # The claim query scans only what is waiting; delivered rows pile up forever.
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status=MessageStatus.PENDING),
                name="outbox_pending_due_idx",
            ),
            models.Index(
                fields=["lease_expires_at"],
                condition=models.Q(status=MessageStatus.IN_FLIGHT),
                name="outbox_in_flight_lease_idx",
            ),
            # "Is an older message for this lead and destination still open?"
            models.Index(
                fields=["destination", "lead", "id"],
                condition=models.Q(status__in=OPEN_STATUSES),
                name="outbox_open_per_lead_idx",
            ),
            models.Index(fields=["status", "created_at"], name="outbox_status_created_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_event_display()} ({self.get_status_display()})"


class FeedbackOutcome(models.TextChoices):
    OPPORTUNITY_CREATED = "opportunity_created", _("Opportunity created")
    WON = "won", _("Won")
    LOST = "lost", _("Lost")
    DISQUALIFIED = "disqualified", _("Disqualified")


class FeedbackResult(models.TextChoices):
    APPLIED = "applied", _("Applied")
    UNCHANGED = "unchanged", _("Already in that stage")


class FeedbackEvent(models.Model):
    """An outcome reported by an SFA, as applied to the lead (one row per sender event id)."""

    destination = models.ForeignKey(
        Destination,
        verbose_name=_("destination"),
        on_delete=models.PROTECT,
        related_name="feedback_events",
    )
    event_id = models.CharField(_("event id"), max_length=255)
    lead = models.ForeignKey(
        Lead, verbose_name=_("lead"), on_delete=models.CASCADE, related_name="feedback_events"
    )
    outcome = models.CharField(_("outcome"), max_length=30, choices=FeedbackOutcome.choices)
    reason = models.TextField(_("reason"), blank=True)
    occurred_at = models.DateTimeField(_("occurred at"))
    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    result = models.CharField(_("result"), max_length=20, choices=FeedbackResult.choices)
    from_stage = models.CharField(_("from"), max_length=20)
    to_stage = models.CharField(_("to"), max_length=20)
    payload = models.JSONField(_("payload"), default=dict)

    class Meta:
        verbose_name = _("SFA feedback event")
        verbose_name_plural = _("SFA feedback events")
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["destination", "event_id"], name="feedback_event_id_unique_per_destination"
            ),
        ]
        indexes = [
            models.Index(fields=["outcome", "occurred_at"], name="feedback_outcome_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_outcome_display()} · {self.lead_id}"
