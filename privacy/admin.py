"""Admin: the erasure records, a form to erase a person, a form to export one, and two
actions on the lead list that lead there. Only for users with the privacy permissions
(superusers, unless granted): no role has them."""

from __future__ import annotations

import json
from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from leadflow.admin_inlines import ReadOnlyAdmin
from leadflow.errors import DomainError
from leadflow.models import Lead, User
from privacy import services
from privacy.models import ErasureRequest


class _SubjectForm(forms.Form):
    email = forms.EmailField(label=_("E-mail address"), required=False)
    lead_id = forms.IntegerField(label=_("or lead id"), required=False, min_value=1)

    def clean(self) -> dict:
        data = super().clean() or {}
        if bool(data.get("email")) == bool(data.get("lead_id")):
            raise forms.ValidationError(_("Give either an e-mail address or a lead id."))
        return data

    def subject(self) -> dict:
        data = self.cleaned_data
        return {"email": data["email"]} if data.get("email") else {"lead_id": data["lead_id"]}


class ErasureForm(_SubjectForm):
    requested_by = forms.CharField(
        label=_("Requested by"),
        max_length=200,
        help_text=ErasureRequest._meta.get_field("requested_by").help_text,
    )
    note = forms.CharField(label=_("Note"), required=False, widget=forms.Textarea({"rows": 2}))
    confirm = forms.BooleanField(
        label=_("I understand that this removes the person's data for good."), required=True
    )


def export_response(document: dict, name: str) -> HttpResponse:
    response = HttpResponse(
        json.dumps(document, cls=DjangoJSONEncoder, ensure_ascii=False, indent=2),
        content_type="application/json; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="{name}.json"'
    response["Cache-Control"] = "no-store"
    return response


@admin.register(ErasureRequest)
class ErasureRequestAdmin(ReadOnlyAdmin):
    # The record is the audit trail: made only by executing an erasure, never edited.
    list_display = (
        "id",
        "subject_lead_id",
        "requested_by",
        "requested_at",
        "executed_by_display",
        "executed_at",
        "rows_touched",
    )
    list_filter = ("executed_at",)
    search_fields = ("=subject_lead_id", "requested_by")
    readonly_fields = (
        "subject_lead_id",
        "subject_digest",
        "requested_by",
        "requested_at",
        "executed_by",
        "executed_by_system",
        "executed_at",
        "counts",
        "note",
    )
    change_list_template = "admin/privacy/erasurerequest/change_list.html"

    @admin.display(description=_("executed by"))
    def executed_by_display(self, obj: ErasureRequest) -> str:
        return obj.executed_by_display

    @admin.display(description=_("rows touched"))
    def rows_touched(self, obj: ErasureRequest) -> int:
        return obj.rows_touched

    def get_urls(self):
        return [
            path("erase/", self.admin_site.admin_view(self.erase_view), name="privacy_erase"),
            path("export/", self.admin_site.admin_view(self.export_view), name="privacy_export"),
            *super().get_urls(),
        ]

    def _page(self, request: HttpRequest, form: forms.Form, title: Any, submit: Any):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": title,
            "form": form,
            "submit": submit,
        }
        return TemplateResponse(request, "admin/privacy/erasurerequest/form.html", context)

    def erase_view(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm("privacy.add_erasurerequest"):
            raise PermissionDenied
        initial = {"lead_id": request.GET.get("lead_id")} if request.GET.get("lead_id") else {}
        form = ErasureForm(request.POST or None, initial=initial)
        if request.method == "POST" and form.is_valid():
            try:
                record = services.erasure_execute(
                    actor=cast(User, request.user),
                    requested_by=form.cleaned_data["requested_by"],
                    note=form.cleaned_data["note"],
                    **form.subject(),
                )
            except DomainError as error:
                form.add_error(None, error.message)
            else:
                self.message_user(
                    request,
                    _("Erased: %(n)d row(s) touched; recorded as erasure request #%(id)d.")
                    % {"n": record.rows_touched, "id": record.pk},
                    messages.SUCCESS,
                )
                return redirect(reverse("admin:privacy_erasurerequest_change", args=[record.pk]))
        return self._page(request, form, _("Erase a person's data"), _("Erase"))

    def export_view(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm("privacy.export_person"):
            raise PermissionDenied
        initial = {"lead_id": request.GET.get("lead_id")} if request.GET.get("lead_id") else {}
        form = _SubjectForm(request.POST or None, initial=initial)
        if request.method == "POST" and form.is_valid():
            try:
                document = services.person_data_export(
                    actor=cast(User, request.user), **form.subject()
                )
            except DomainError as error:
                form.add_error(None, error.message)
            else:
                stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
                lead = document.get("lead") or {}
                return export_response(document, f"person-{lead.get('id', 'none')}-{stamp}")
        return self._page(request, form, _("Export a person's data"), _("Download JSON"))


# --- actions on the lead list ----------------------------------------------------------
# Added to the lead admin from here, so the core does not import this app. Each takes one
# lead to the erase form (which asks for the requester and a confirmation) or downloads
# its export at once.


def _single(modeladmin, request, queryset) -> Lead | None:
    if queryset.count() != 1:
        modeladmin.message_user(request, _("Select exactly one lead."), messages.WARNING)
        return None
    return queryset.first()


@admin.action(description=_("Erase personal data (asks to confirm)…"), permissions=["erase"])
def erase_personal_data(modeladmin, request, queryset):
    lead = _single(modeladmin, request, queryset)
    if lead is None:
        return None
    return redirect(f"{reverse('admin:privacy_erase')}?lead_id={lead.pk}")


@admin.action(description=_("Export personal data (JSON)"), permissions=["export"])
def export_personal_data(modeladmin, request, queryset):
    lead = _single(modeladmin, request, queryset)
    if lead is None:
        return None
    document = services.person_data_export(actor=cast(User, request.user), lead_id=lead.pk)
    return export_response(document, f"person-{lead.pk}")


_lead_admin = admin.site.get_model_admin(Lead)
_lead_admin.actions = [*(_lead_admin.actions or ()), erase_personal_data, export_personal_data]
_lead_admin.has_erase_permission = (  # type: ignore[attr-defined]
    lambda request: request.user.has_perm("privacy.add_erasurerequest")
)
_lead_admin.has_export_permission = (  # type: ignore[attr-defined]
    lambda request: request.user.has_perm("privacy.export_person")
)
