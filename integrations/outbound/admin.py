"""Admin for destinations (mapping editable as JSON), the outbox with its dead letters and
replay, and the feedback the SFAs sent."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from integrations.admin_secrets import SecretsAdmin, SecretsForm, clear_field, generate_field
from integrations.mapping import destination_mapping_default
from integrations.outbound.models import (
    OPEN_STATUSES,
    Destination,
    FeedbackEvent,
    MessageStatus,
    OutboundEvent,
    OutboxMessage,
)
from integrations.outbound.outbox import outbox_replay, outbox_retry_now
from leadflow.japan import join_words


class PrettyJSONField(forms.JSONField):
    """Indented JSON in the textarea, Japanese shown as is (not \\uXXXX)."""

    def prepare_value(self, value: Any) -> str:
        if isinstance(value, str):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False)


def _https_urls(db_field: Any, **kwargs: Any) -> Any:
    # Vendor endpoints are https; say so now rather than by Django 6's changed default.
    if isinstance(db_field, models.URLField):
        kwargs["assume_scheme"] = "https"
    return db_field.formfield(**kwargs)


class DestinationForm(SecretsForm):
    secret_fields = (
        "signing_secret",
        "previous_signing_secret",
        "client_secret",
        "refresh_token",
        "api_token",
    )
    rotations = {"signing_secret": "previous_signing_secret"}
    signing_secret_generate = generate_field()
    previous_signing_secret_clear = clear_field(_("previous signing secret"))
    client_secret_clear = clear_field(_("client secret"))
    refresh_token_clear = clear_field(_("refresh token"))
    api_token_clear = clear_field(_("API token"))
    events = forms.MultipleChoiceField(
        label=_("events"),
        choices=OutboundEvent.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    field_mapping = PrettyJSONField(
        label=_("field mapping"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 24, "cols": 90, "class": "monospace"}),
    )

    class Meta:
        model = Destination
        formfield_callback = _https_urls
        fields = (
            "name",
            "slug",
            "kind",
            "enabled",
            "marketing_side",
            "events",
            "base_url",
            "timeout_seconds",
            "max_attempts",
            "signing_secret",
            "previous_signing_secret",
            "token_url",
            "client_id",
            "client_secret",
            "refresh_token",
            "api_version",
            "external_id_field",
            "api_token",
            "field_mapping",
        )

    def clean_field_mapping(self) -> Any:
        # An empty mapping means "the kind's default", filled in on save.
        return self.cleaned_data.get("field_mapping") or {}


@admin.register(Destination)
class DestinationAdmin(SecretsAdmin):
    form = DestinationForm
    list_display = ("name", "slug", "kind", "enabled", "marketing_side", "event_list", "pending")
    list_filter = ("kind", "enabled", "marketing_side")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("access_token_at", "last_limit_info", "default_mapping_help")
    fieldsets = (
        (None, {"fields": ("name", "slug", "kind", "enabled", "marketing_side", "events")}),
        (
            _("Connection"),
            {"fields": ("base_url", "timeout_seconds", "max_attempts", "last_limit_info")},
        ),
        (
            _("Webhook and feedback signing"),
            {
                "fields": (
                    "signing_secret",
                    "signing_secret_generate",
                    "previous_signing_secret",
                    "previous_signing_secret_clear",
                )
            },
        ),
        (
            _("Salesforce"),
            {
                "fields": (
                    "token_url",
                    "client_id",
                    "client_secret",
                    "client_secret_clear",
                    "refresh_token",
                    "refresh_token_clear",
                    "api_version",
                    "external_id_field",
                    "access_token_at",
                ),
                "classes": ("collapse",),
            },
        ),
        (
            _("HubSpot"),
            {"fields": ("api_token", "api_token_clear"), "classes": ("collapse",)},
        ),
        (_("Field mapping"), {"fields": ("field_mapping", "default_mapping_help")}),
    )

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if isinstance(db_field, models.URLField):
            kwargs["assume_scheme"] = "https"
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    @admin.display(description=_("events"))
    def event_list(self, obj: Destination) -> str:
        labels = dict(OutboundEvent.choices)
        return join_words(labels.get(event, event) for event in obj.events or [])

    def get_queryset(self, request: HttpRequest) -> QuerySet[Destination]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                pending_count=Count("messages", filter=Q(messages__status=MessageStatus.PENDING))
            )
        )

    @admin.display(description=_("pending"), ordering="pending_count")
    def pending(self, obj: Destination) -> int:
        return getattr(obj, "pending_count", 0)

    @admin.display(description=_("default mapping for this kind"))
    def default_mapping_help(self, obj: Destination | None) -> str:
        if obj is None or not obj.kind:
            return "—"
        text = json.dumps(destination_mapping_default(obj.kind), indent=2, ensure_ascii=False)
        return format_html('<pre class="scroll-short">{}</pre>', text)


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    # Status right after the id and short cells (the lead's name, one time column), so the
    # list fits a laptop screen without the status being cut off on the right.
    list_display = (
        "id",
        "status_cell",
        "event",
        "destination",
        "lead_name",
        "attempts",
        "next_or_delivered",
        "http_status",
        "error_excerpt",
    )
    list_filter = ("status", "event", "destination")
    search_fields = ("lead__email", "idempotency_key", "remote_id", "last_error")
    list_select_related = ("destination", "lead")
    date_hierarchy = "created_at"
    actions = ("replay_dead", "retry_pending_now")
    readonly_fields = [f.name for f in OutboxMessage._meta.fields] + ["payload_pretty"]
    exclude = ("payload",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Rows change only through delivery and the actions; the page is for reading.
        return False

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("integrations.replay_outboxmessage")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_fields(request, obj))
        if obj is None:
            return fields
        hidden = set()
        # A delivered or dead message is not tried again: no "next attempt" on it.
        if obj.status not in OPEN_STATUSES:
            hidden.add("next_attempt_at")
        if obj.status != MessageStatus.IN_FLIGHT:
            hidden |= {"lease_expires_at", "claim_token"}
        if obj.status != MessageStatus.DELIVERED:
            hidden.add("delivered_at")
        return [field for field in fields if field not in hidden]

    @admin.display(description=_("status"), ordering="status")
    def status_cell(self, obj: OutboxMessage) -> str:
        return format_html(
            '<span class="outbox-status outbox-status-{} nowrap">{}</span>',
            obj.status,
            obj.get_status_display(),
        )

    @admin.display(description=_("lead"), ordering="lead__id")
    def lead_name(self, obj: OutboxMessage) -> str:
        return format_html('<span class="nowrap">{}</span>', obj.lead.full_name or obj.lead.email)

    @admin.display(description=_("next attempt / delivered"))
    def next_or_delivered(self, obj: OutboxMessage) -> str:
        if obj.status in OPEN_STATUSES:
            when = obj.next_attempt_at
        elif obj.status == MessageStatus.DELIVERED and obj.delivered_at:
            when = obj.delivered_at
        else:
            return "—"  # dead: not tried again until someone replays it
        return format_html(
            '<span class="nowrap">{}</span>',
            date_format(timezone.localtime(when), "Y/m/d H:i"),
        )

    @admin.display(description="HTTP", ordering="response_status")
    def http_status(self, obj: OutboxMessage) -> str:
        return str(obj.response_status or "—")

    @admin.display(description=_("last error"))
    def error_excerpt(self, obj: OutboxMessage) -> str:
        return obj.last_error[:100]

    @admin.display(description=_("payload"))
    def payload_pretty(self, obj: OutboxMessage) -> str:
        text = json.dumps(obj.payload, indent=2, ensure_ascii=False)
        return format_html("<pre>{}</pre>", text)

    @admin.action(
        description=_("Replay selected dead messages (payload rebuilt from the current mapping)"),
        permissions=["replay"],
    )
    def replay_dead(self, request: HttpRequest, queryset: QuerySet[OutboxMessage]) -> None:
        ids = list(queryset.filter(status=MessageStatus.DEAD).values_list("id", flat=True))
        count = outbox_replay(message_ids=ids, actor=str(request.user))
        skipped = queryset.count() - count
        self.message_user(
            request,
            ngettext("%(n)d message queued again.", "%(n)d messages queued again.", count)
            % {"n": count},
            messages.SUCCESS,
        )
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "%(n)d selected message was not dead and was left alone.",
                    "%(n)d selected messages were not dead and were left alone.",
                    skipped,
                )
                % {"n": skipped},
                messages.WARNING,
            )

    @admin.action(description=_("Retry selected waiting messages now"), permissions=["replay"])
    def retry_pending_now(self, request: HttpRequest, queryset: QuerySet[OutboxMessage]) -> None:
        ids = list(queryset.values_list("id", flat=True))
        count = outbox_retry_now(message_ids=ids)
        self.message_user(
            request,
            ngettext(
                "%(n)d message will be retried now.", "%(n)d messages will be retried now.", count
            )
            % {"n": count},
            messages.SUCCESS,
        )


@admin.register(FeedbackEvent)
class FeedbackEventAdmin(admin.ModelAdmin):
    list_display = (
        "occurred_at",
        "destination",
        "lead",
        "outcome",
        "result",
        "from_stage",
        "to_stage",
        "reason",
    )
    list_filter = ("outcome", "result", "destination")
    search_fields = ("lead__email", "event_id", "reason")
    list_select_related = ("destination", "lead")
    readonly_fields = [f.name for f in FeedbackEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
