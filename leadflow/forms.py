from __future__ import annotations

from typing import Any

from django import forms
from django.core.validators import ProhibitNullCharactersValidator

from leadflow.models import Lead
from leadflow.normalize import has_nul, normalize_email


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
        if has_nul(value):
            raise forms.ValidationError(
                ProhibitNullCharactersValidator.message, code="null_characters_not_allowed"
            )
        return value
