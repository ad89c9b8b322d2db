"""Write-only secret fields for the admin (sources, destinations).

The change form never renders a stored secret, not even to a superuser: the input is
empty and the help text shows its last four characters ("••••••a1b2"). Left empty on
save, the secret is kept; typed in, it replaces the old one; "generate" makes a random
one, moves the current one to the previous-secret field (senders keep working while
they switch) and shows the new value once, in the message after saving. Staff who may
only view (the demo's manager and marketer) see the masked form alone.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils.functional import lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from integrations.secrets import secret_generate, secret_masked

CLEAR, GENERATE = "_clear", "_generate"


class SecretsForm(forms.ModelForm):
    """A ModelForm whose `secret_fields` are write-only. `rotations` maps a secret that
    may be generated to the field its current value moves to; each gets a declared
    BooleanField `<name>_generate`, each optional secret a `<name>_clear`."""

    secret_fields: tuple[str, ...] = ()
    rotations: dict[str, str] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.generated: dict[str, str] = {}
        for name in self.secret_fields:
            field = self.fields.get(name)
            if field is None:
                continue
            stored = getattr(self.instance, name, "") if self.instance.pk else ""
            field.widget = forms.PasswordInput(
                render_value=False, attrs={"autocomplete": "new-password"}
            )
            field.required = False  # empty keeps what is stored
            field.initial = None
            state = (
                gettext("Stored: %(masked)s. Leave empty to keep it.")
                % {"masked": secret_masked(stored)}
                if stored
                else gettext("Not set.")
            )
            field.help_text = f"{field.help_text} {state}".strip()

    def _secret(self, name: str) -> str:
        stored = getattr(self.instance, name, "") if self.instance.pk else ""
        typed = self.cleaned_data.get(name) or ""
        if self.cleaned_data.get(name + CLEAR):
            return ""
        return typed or stored

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name in self.secret_fields:
            if name in self.fields:
                cleaned[name] = self._secret(name)
        for name, previous in self.rotations.items():
            if not cleaned.get(name + GENERATE):
                continue
            if self.instance.pk and getattr(self.instance, name, ""):
                cleaned[previous] = getattr(self.instance, name)
            cleaned[name] = self.generated[name] = secret_generate()
        for name in self.secret_fields:
            # The model's own blank check skips a field the form did not require.
            required = not self._meta.model._meta.get_field(name).blank
            if name in self.fields and required and not cleaned.get(name):
                self.add_error(name, self.fields[name].error_messages["required"])
        return cleaned


def clear_field(label: Any) -> forms.BooleanField:
    # Lazy: a form class is built at import, before anyone's language is known.
    text = lazy(lambda: gettext("Clear the %(name)s") % {"name": label}, str)()
    return forms.BooleanField(required=False, label=text)


def generate_field() -> forms.BooleanField:
    return forms.BooleanField(
        required=False,
        label=_("Generate a new secret"),
        help_text=_(
            "A random secret replaces this one, which stays valid as the previous secret "
            "until you clear it. The new one is shown once, after saving."
        ),
    )


class SecretsAdmin(admin.ModelAdmin):
    """Admin for a model with a SecretsForm: view-only staff get the masked secrets and
    no controls; a generated secret is shown once after saving."""

    def _view_only(self, request: HttpRequest, obj: Any) -> bool:
        if obj is None:
            return not self.has_add_permission(request)
        return not self.has_change_permission(request, obj)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if not self._view_only(request, obj):
            return fieldsets
        secret_fields = self.form.secret_fields
        shown = []
        for title, options in fieldsets:
            fields = [
                f"{name}_masked" if name in secret_fields else name
                for name in options["fields"]
                if not (isinstance(name, str) and name.endswith((CLEAR, GENERATE)))
            ]
            shown.append((title, {**options, "fields": fields}))
        return shown

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        readonly = list(super().get_readonly_fields(request, obj))
        if self._view_only(request, obj):
            readonly += [f"{name}_masked" for name in self.form.secret_fields]
        return readonly

    form: type[SecretsForm]

    def __getattr__(self, name: str) -> Any:
        # "<secret>_masked": the read-only display of a secret, for the view-only page.
        field = name.removesuffix("_masked")
        if name.endswith("_masked") and field in self.form.secret_fields:

            def show(obj: Any) -> str:
                return secret_masked(getattr(obj, field, "")) or "-"

            show.short_description = self.model._meta.get_field(field).verbose_name  # type: ignore[attr-defined]
            return show
        raise AttributeError(name)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        for name, value in getattr(form, "generated", {}).items():
            label = obj._meta.get_field(name).verbose_name
            messages.warning(
                request,
                gettext("New %(label)s: %(value)s — copy it now, it is not shown again.")
                % {"label": label, "value": value},
            )
