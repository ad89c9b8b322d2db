from __future__ import annotations

from typing import Any

from django import forms
from django.core.validators import ProhibitNullCharactersValidator

from leadflow.models import Lead
from leadflow.normalize import normalize_email


class NormalizedEmailField(forms.EmailField):
    """Accepts what people paste (full-width, capitals, stray spaces) and stores it matched."""

    def to_python(self, value):
        return normalize_email(super().to_python(value) or "")


class LeadForm(forms.ModelForm):
    email = NormalizedEmailField(required=False)

    class Meta:
        model = Lead
        fields = [
            "email",
            "last_name",
            "first_name",
            "last_name_kana",
            "first_name_kana",
            "phone",
            "company",
            "department",
            "job_title",
            "role",
            "owner",
            "source",
            "attributes",
        ]

    def clean_attributes(self) -> Any:
        # PostgreSQL's jsonb cannot store \u0000: saving such attributes was a 500.
        value = self.cleaned_data.get("attributes")
        if _has_nul(value):
            raise forms.ValidationError(
                ProhibitNullCharactersValidator.message, code="null_characters_not_allowed"
            )
        return value


def _has_nul(value: Any) -> bool:
    """Whether a JSON value holds a NUL character in any string or key."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    return False
