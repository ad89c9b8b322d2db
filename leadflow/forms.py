from __future__ import annotations

from django import forms

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
