"""Forms of the inbox pages. They only shape input: the rules (BANT minimum, reason and
comment required, ...) are the services', and their errors are put back on these forms."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from handoff.models import BANT_KEYS, ActivityKind, ActivityOutcome, RejectionReason
from leadflow.errors import DomainError
from leadflow.forms import DateTimeField


def add_domain_error(form: forms.Form, error: DomainError) -> None:
    """Show a service's refusal on the form: on the fields it names, else on the form."""
    shown: list[str] = []
    for name, messages in (error.fields or {}).items():
        for message in messages:
            form.add_error(name if name in form.fields else None, message)
            shown.append(str(message))
    if error.message not in shown:
        form.add_error(None, error.message)


class _PageForm(forms.Form):
    """Several of these forms share one page: ids get the form's prefix, names stay plain."""

    id_prefix = ""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("auto_id", f"{self.id_prefix}_%s")
        super().__init__(*args, **kwargs)


class ActivityForm(_PageForm):
    id_prefix = "activity"
    kind = forms.ChoiceField(label=_("Kind"), choices=ActivityKind.choices)
    outcome = forms.ChoiceField(label=_("Outcome"), choices=ActivityOutcome.choices)
    note = forms.CharField(
        label=_("Note"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )


class AcceptForm(_PageForm):
    id_prefix = "accept"
    budget = forms.BooleanField(label=_("Budget: there is a budget for this"), required=False)
    authority = forms.BooleanField(
        label=_("Authority: we talk to a decision maker or their influencer"), required=False
    )
    need = forms.BooleanField(label=_("Need: they have a problem we solve"), required=False)
    timeline = forms.BooleanField(
        label=_("Timeline: they plan to decide within a known time"), required=False
    )

    def bant(self) -> dict[str, bool]:
        return {key: bool(self.cleaned_data.get(key)) for key in BANT_KEYS}


class RejectionReasonField(forms.ModelChoiceField):
    def label_from_instance(self, obj: RejectionReason) -> str:
        return obj.label


class RejectForm(_PageForm):
    id_prefix = "reject"
    # Not required here on purpose: the service decides, so pages and API say the same.
    reason = RejectionReasonField(
        label=_("Reason"),
        queryset=RejectionReason.objects.filter(is_active=True),
        required=False,
        empty_label=_("— choose —"),
    )
    comment = forms.CharField(
        label=_("Comment for marketing"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class RepField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return str(obj)


class ReassignForm(_PageForm):
    id_prefix = "reassign"
    rep = RepField(label=_("Rep"), queryset=None, empty_label=_("— choose —"))
    reason = forms.CharField(label=_("Reason"), required=False)

    def __init__(self, *args, candidates, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        rep = self.fields["rep"]
        assert isinstance(rep, forms.ModelChoiceField)
        rep.queryset = candidates


class StageForm(_PageForm):
    id_prefix = "stage"
    OPPORTUNITY = "opportunity"
    WON = "won"
    LOST = "lost"
    to = forms.ChoiceField(
        label=_("Outcome"),
        choices=[
            (OPPORTUNITY, _("Opportunity (deal in the pipeline)")),
            (WON, _("Won (customer)")),
            (LOST, _("Lost (back to nurture)")),
        ],
    )
    reason = forms.CharField(label=_("Reason / note"), required=False)


class AwayForm(_PageForm):
    """The rep's own "away now until …". A time without a zone is read as the site's
    (TIME_ZONE, Asia/Tokyo): what the rep's clock on the wall says."""

    id_prefix = "availability"
    # Named as the model field and the API's, so a service's field error lands here.
    away_until = DateTimeField(
        label=_("Until (optional)"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text=_("Empty: until you say you are back."),
    )
