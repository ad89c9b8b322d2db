from __future__ import annotations

from typing import Any

from django import forms
from django.core.validators import ProhibitNullCharactersValidator

from leadflow.datetimes import datetime_problem
from leadflow.models import Lead
from leadflow.normalize import has_nul, normalize_email


class NormalizedEmailField(forms.EmailField):
    """Accepts what people paste (full-width, capitals, stray spaces) and stores it matched."""

    def to_python(self, value):
        return normalize_email(super().to_python(value) or "")


class DateTimeField(forms.DateTimeField):
    """Django's DateTimeField refusing offsets PostgreSQL cannot store: a posted
    "2026-12-01T10:00+20:00" is a form error, not a DataError. The year is left to the
    form's service, which names the bound it breaks ("must be before 2100")."""

    def to_python(self, value):
        moment = super().to_python(value)
        problem = moment and datetime_problem(moment, years=False)
        if problem:
            raise forms.ValidationError(problem, code="invalid")
        return moment


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
