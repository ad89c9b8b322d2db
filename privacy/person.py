"""The person an erasure or export is about: found from an e-mail address or a lead id.

`person_find` resolves it to a `Person`: the lead, every address it was known by (merges
included) and its external ids, which is what each participant (privacy/participants.py)
searches its rows for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _

from leadflow.errors import DomainError, NotFound
from leadflow.models import Lead, LeadExternalId, LeadMerge
from leadflow.normalize import normalize_email

# An erased lead's e-mail: a reserved domain that can never receive mail, and keeps the
# lead's e-mail unique.
ERASED_EMAIL_DOMAIN = "erased.invalid"

# Keys in JSON (raw payloads) whose value is a record's id: an external id only counts as
# a mention there, so a contact id of 77 does not match a score of 77 elsewhere.
ID_KEYS = frozenset(
    {"id", "vid", "objectId", "contact_id", "contactId", "leadId", "lead_id", "external_id"}
)


def erased_email(lead_id: int) -> str:
    return f"erased-{lead_id}@{ERASED_EMAIL_DOMAIN}"


@dataclass(frozen=True)
class Person:
    """Everything by which one person's data can be found (all lower-case e-mails)."""

    lead_ids: tuple[int, ...]
    emails: tuple[str, ...]
    external_ids: tuple[tuple[str, str], ...] = ()
    phones: tuple[str, ...] = ()
    names: tuple[str, ...] = ()

    @property
    def external_id_values(self) -> frozenset[str]:
        return frozenset(value for _system, value in self.external_ids)

    def mentioned_in_text(self, text: str) -> bool:
        """The e-mail address, phone number or full name appears in `text`."""
        folded = text.casefold()
        return any(needle in folded for needle in (*self.emails, *self.phones, *self.names))

    def mentioned_in_json(self, value: Any, *, key: str = "") -> bool:
        """Anywhere in a JSON document: text that mentions the person, or an external id
        as the value of an id key."""
        if isinstance(value, dict):
            return any(self.mentioned_in_json(v, key=str(k)) for k, v in value.items())
        if isinstance(value, list):
            return any(self.mentioned_in_json(v, key=key) for v in value)
        if isinstance(value, bool) or value is None:
            return False
        if key in ID_KEYS and str(value) in self.external_id_values:
            return True
        return isinstance(value, str) and self.mentioned_in_text(value)


def _name_variants(lead: Lead) -> set[str]:
    variants = set()
    for last, first in (
        (lead.last_name, lead.first_name),
        (lead.last_name_kana, lead.first_name_kana),
    ):
        if last and first:
            variants |= {f"{last} {first}".casefold(), f"{last}{first}".casefold()}
    return variants


def person_find(*, email: str | None = None, lead_id: int | None = None) -> Person:
    """The person behind an e-mail address or a lead id.

    An address no lead has (any more) still makes a Person with no lead: raw payloads
    and messages may mention it even so. Addresses of leads merged into this one count
    as this person's too.
    """
    if (email is None) == (lead_id is None):
        message = _("Give either an e-mail address or a lead id.")
        # Neither field is wrong by itself: the API's key for a problem of the whole input.
        raise DomainError(message, code="invalid_subject", fields={"non_field_errors": [message]})
    lead: Lead | None
    emails: set[str] = set()
    if lead_id is not None:
        lead = Lead.objects.filter(pk=lead_id).first()
        if lead is None:
            raise NotFound(_("Lead %(id)s does not exist.") % {"id": lead_id})
    else:
        address = normalize_email(email or "")
        if "@" not in address:
            raise DomainError(
                _("“%(email)s” is not an e-mail address.") % {"email": email},
                code="invalid_subject",
                fields={"email": [_("Enter an e-mail address.")]},
            )
        emails.add(address)
        lead = Lead.objects.with_email(address).first()
        if lead is None:
            merged = LeadMerge.objects.filter(merged_email__iexact=address).first()
            lead = merged.kept if merged else None
    if lead is None:
        return Person(lead_ids=(), emails=tuple(sorted(emails)))
    emails.add(lead.email.lower())
    emails.update(
        address.lower()
        for address in LeadMerge.objects.filter(kept=lead).values_list("merged_email", flat=True)
    )
    emails = {e for e in emails if e and not e.endswith("@" + ERASED_EMAIL_DOMAIN)}
    phones = {p for p in (lead.phone.casefold(),) if len(p) >= 6}
    return Person(
        lead_ids=(lead.pk,),
        emails=tuple(sorted(emails)),
        external_ids=tuple(
            sorted(LeadExternalId.objects.filter(lead=lead).values_list("system", "external_id"))
        ),
        phones=tuple(sorted(phones)),
        names=tuple(sorted(_name_variants(lead))),
    )
