from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models.fields.json import KT
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from integrations.admin_secrets import SecretsAdmin, SecretsForm, clear_field, generate_field
from integrations.csv_import import target_label
from integrations.csv_previews import csv_preview_keep, csv_preview_take
from integrations.models import InboundEvent, InboundStatus, LeadImport, Source
from integrations.secrets import headers_redacted
from integrations.services import inbound_event_reprocess, leads_import_csv
from leadflow.admin_inlines import ReadOnlyAdmin
from leadflow.fits import printable
from leadflow.models import User

MAX_CSV_BYTES = 20 * 1024 * 1024
SUMMARY_KEYS = ("applied", "failed", "skipped")


class CsvImportForm(forms.Form):
    file = forms.FileField(label=_("CSV file"))
    source = forms.CharField(
        label=_("Lead source"), initial="csv", max_length=100, help_text=_("Stored on new leads.")
    )
    event = forms.CharField(
        label=_("Trade show / event"),
        required=False,
        max_length=100,
        help_text=_("Business cards from an event: records a visit on every lead."),
    )
    dry_run = forms.BooleanField(
        label=_("Dry run (check only, write nothing)"), required=False, initial=True
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_CSV_BYTES:
            raise forms.ValidationError(_("The file is larger than 20 MB; split it."))
        return upload


class SourceForm(SecretsForm):
    secret_fields = ("secret", "previous_secret")
    rotations = {"secret": "previous_secret"}
    secret_generate = generate_field()
    previous_secret_clear = clear_field(_("previous secret"))

    class Meta:
        model = Source
        fields = "__all__"


@admin.register(Source)
class SourceAdmin(SecretsAdmin):
    form = SourceForm
    list_display = ("slug", "name", "kind", "enabled", "rate_limit_per_minute", "intake_url_text")
    list_filter = ("kind", "enabled")
    search_fields = ("slug", "name")
    readonly_fields = ("intake_url_text", "created_at", "updated_at", "inbound_link")
    change_list_template = "admin/integrations/source/change_list.html"
    fieldsets = (
        (None, {"fields": ("kind", "slug", "name", "enabled", "intake_url_text", "inbound_link")}),
        (
            _("Authenticity"),
            {
                "fields": (
                    "secret",
                    "secret_generate",
                    "previous_secret",
                    "previous_secret_clear",
                )
            },
        ),
        (_("Mapping and limits"), {"fields": ("mapping", "rate_limit_per_minute", "id_system")}),
        (None, {"fields": ("created_at", "updated_at")}),
    )

    @admin.display(description=_("intake URL"))
    def intake_url_text(self, obj: Source) -> str:
        return obj.intake_url if obj.slug else "-"

    @admin.display(description=_("inbound events"))
    def inbound_link(self, obj: Source) -> str:
        if not obj.pk:
            return "-"
        url = reverse("admin:integrations_inboundevent_changelist") + f"?source__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, _("Show what this source sent"))

    def get_urls(self):
        return [
            path(
                "import-csv/",
                self.admin_site.admin_view(self.import_csv_view),
                name="integrations_import_csv",
            ),
            *super().get_urls(),
        ]

    def import_csv_view(self, request: HttpRequest) -> HttpResponse:
        if not (
            request.user.has_perm("leadflow.add_lead")
            and request.user.has_perm("leadflow.change_lead")
        ):
            raise PermissionDenied
        user = request.user if isinstance(request.user, User) else None  # who the wave is by
        report = None
        confirm_token = ""
        filename = ""
        form = CsvImportForm()
        if request.method == "POST" and "confirm" in request.POST:
            # "Import these rows" under a dry run: import the very file that was checked,
            # with the source and event it was checked with.
            preview = csv_preview_take(
                user_id=request.user.pk, token=request.POST.get("confirm", "")
            )
            if preview is None:
                messages.error(
                    request,
                    _("This preview has expired or was imported already. Choose the file again."),
                )
            else:
                filename = preview.filename
                report = leads_import_csv(
                    data=preview.data,
                    source=preview.source,
                    dry_run=False,
                    event=preview.event,
                    started_by=user,
                )
        elif request.method == "POST":
            form = CsvImportForm(request.POST, request.FILES)
            if form.is_valid():
                upload = form.cleaned_data["file"]
                data = upload.read()
                filename = upload.name or ""
                report = leads_import_csv(
                    data=data,
                    source=form.cleaned_data["source"],
                    dry_run=form.cleaned_data["dry_run"],
                    event=form.cleaned_data["event"],
                    started_by=user,
                )
                if report.dry_run and report.created + report.updated:
                    confirm_token = csv_preview_keep(
                        user_id=request.user.pk,
                        data=data,
                        source=form.cleaned_data["source"],
                        event=form.cleaned_data["event"],
                        filename=filename,
                    )
        if report is not None and report.lead_import_id is not None:
            messages.info(
                request,
                _(
                    "The leads of this import that qualify are made MQLs and handed on to "
                    "sales in the background, as one wave; they reach the queue within a "
                    "few minutes."
                ),
            )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Import leads from CSV"),
            "form": form,
            "report": report,
            "filename": filename,
            "columns": (
                [(header, target_label(target)) for header, target in report.columns.items()]
                if report
                else []
            ),
            "importable": report.created + report.updated if report else 0,
            "confirm_token": confirm_token,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/integrations/import_leads.html", context)


@admin.register(LeadImport)
class LeadImportAdmin(ReadOnlyAdmin):
    """Large CSV imports and their hand-off, to look at: written by the import and its
    task only."""

    list_display = (
        "started_at",
        "source",
        "started_by",
        "rows",
        "finished_at",
        "handed_off_at",
        "mqls",
    )
    list_filter = ("source",)
    date_hierarchy = "started_at"


@admin.register(InboundEvent)
class InboundEventAdmin(admin.ModelAdmin):
    list_display = ("id", "received_at", "source", "status", "short_reason", "summary")
    list_filter = ("status", "source", "received_at")
    search_fields = ("=id", "dedup_key", "reason", "body")
    list_select_related = ("source",)
    date_hierarchy = "received_at"
    actions = ("reprocess",)
    fields = (
        "source",
        "received_at",
        "status",
        "reason",
        "duplicate_of",
        "attempts",
        "items_total",
        "items_done",
        "claimed_by",
        "lease_until",
        "processed_at",
        "dedup_key",
        "result_pretty",
        "headers_pretty",
        "body_pretty",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        match = request.resolver_match
        if match is not None and match.url_name and match.url_name.endswith("_changelist"):
            # A list page must not load up to 100 bodies of a megabyte each. The item
            # counts come from the result in the same query: deferred and read per row,
            # it was one more query for every row of the page.
            queryset = queryset.defer("body", "headers", "result").annotate(
                **{f"items_{key}": KT(f"result__{key}") for key in SUMMARY_KEYS}
            )
        return queryset

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def has_reprocess_permission(self, request) -> bool:
        return request.user.has_perm("integrations.reprocess_inboundevent")

    @admin.display(description=_("reason"))
    def short_reason(self, obj: InboundEvent) -> str:
        return obj.reason[:120] + ("…" if len(obj.reason) > 120 else "")

    @admin.display(description=_("items"))
    def summary(self, obj: InboundEvent) -> str:
        if obj.status in (InboundStatus.RECEIVED, InboundStatus.DUPLICATE):
            return "-"
        # The list page's annotation (None: no such key); summary is shown nowhere else.
        counts = {key: getattr(obj, f"items_{key}") or 0 for key in SUMMARY_KEYS}
        return _("%(applied)s applied, %(failed)s failed, %(skipped)s skipped") % counts

    @admin.display(description=_("result"))
    def result_pretty(self, obj: InboundEvent) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.result, ensure_ascii=False, indent=2))

    @admin.display(description=_("headers"))
    def headers_pretty(self, obj: InboundEvent) -> str:
        # Signatures and tokens masked: Marketo's X-LeadFlow-Token is the source's secret.
        headers = headers_redacted(obj.headers)
        return format_html("<pre>{}</pre>", json.dumps(headers, ensure_ascii=False, indent=2))

    @admin.display(description=_("body"))
    def body_pretty(self, obj: InboundEvent) -> str:
        try:
            # A lone surrogate ("\\ud800") parses but cannot be sent as UTF-8: shown as U+FFFD.
            shown = printable(json.dumps(json.loads(obj.body), ensure_ascii=False, indent=2))
        except ValueError:
            shown = obj.body
        raw_url = reverse("admin:integrations_inboundevent_raw", args=[obj.pk])
        return format_html(
            '<p><a href="{}">{}</a></p><pre class="scroll-tall">{}</pre>',
            raw_url,
            _("Raw body, exactly as received"),
            shown,
        )

    def get_urls(self):
        return [
            path(
                "<int:pk>/raw/",
                self.admin_site.admin_view(self.raw_body_view),
                name="integrations_inboundevent_raw",
            ),
            *super().get_urls(),
        ]

    def raw_body_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        event = get_object_or_404(InboundEvent, pk=pk)
        response = HttpResponse(event.body, content_type="text/plain; charset=utf-8")
        response["Content-Disposition"] = f'inline; filename="inbound-{event.pk}.json"'
        return response

    @admin.action(description=_("Re-process selected failed events"), permissions=["reprocess"])
    def reprocess(self, request, queryset) -> None:
        queued = 0
        for pk in queryset.filter(status=InboundStatus.FAILED).values_list("pk", flat=True):
            queued += int(inbound_event_reprocess(inbound_event_id=pk))
        skipped = queryset.count() - queued
        if queued:
            self.message_user(
                request,
                ngettext(
                    "Queued %(n)d event for processing.",
                    "Queued %(n)d events for processing.",
                    queued,
                )
                % {"n": queued},
                messages.SUCCESS,
            )
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "%(n)d event was not failed and was left alone.",
                    "%(n)d events were not failed and were left alone.",
                    skipped,
                )
                % {"n": skipped},
                messages.WARNING,
            )


import integrations.outbound.admin  # noqa: E402, F401 - registers the outbound admin
