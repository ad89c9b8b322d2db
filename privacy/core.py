"""One person's data, found, erased or exported (APPI / GDPR): the core's part and the hub.

`person_find` resolves an e-mail address or a lead id to a `Person`: the lead, every
address it was known by (merges included) and its external ids, which is what other apps
search their rows for. `person_erase` sends `person_erasing` so every app removes the
person from its rows, then erases the core's own data, all in one transaction, and
returns counts (never the data) for the record the `privacy` app keeps. `person_export`
collects the core's sections and every app's through `person_exporting`.

What erasure keeps, so dashboards still count: the lead row (id, stage, owner, company
link, source, role, timestamps), its stage transitions, events (kind and time), scores
and handoffs. What goes: names, kana, e-mail (replaced by `erased-<id>@erased.invalid`,
a reserved domain that can never receive mail and keeps the lead's e-mail unique), phone,
department, job title, custom attributes, external ids, free text written about the
person, query strings and form values in event properties, and merge snapshots.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from leadflow.errors import DomainError, NotFound
from leadflow.models import (
    DuplicateCandidate,
    EngagementEvent,
    Lead,
    LeadExternalId,
    LeadMerge,
    StageTransition,
)
from leadflow.normalize import normalize_email
from leadflow.signals import person_erasing, person_exporting

# What replaces free text that was about the person.
ERASED = "[erased]"
ERASED_EMAIL_DOMAIN = "erased.invalid"
EXPORT_FORMAT = "leadflow-person-export/1"

# Keys in JSON (raw payloads) whose value is a record's id: an external id only counts as
# a mention there, so a contact id of 77 does not match a score of 77 elsewhere.
ID_KEYS = frozenset(
    {"id", "vid", "objectId", "contact_id", "contactId", "leadId", "lead_id", "external_id"}
)

# Event properties kept through an erasure: what the person engaged with, not who they are
# or what they typed. URLs keep scheme, host and path; query strings (utm tags, e-mail
# tokens, pre-filled form fields) and fragments go. Everything else is dropped.
_EVENT_KEYS_KEPT = frozenset(
    {
        "form_id",
        "form_name",
        "form_alias",
        "email_id",
        "email_name",
        "campaign_id",
        "campaign",
        "channel",
        "old_status",
        "new_status",
        "status_code",
        "event",
        "asset",
        "document",
    }
)
_EVENT_URL_KEYS = frozenset({"url", "referer", "referrer", "page_url", "href", "link"})
# StageTransition.context keys that hold free text somebody wrote about the person.
_FREE_TEXT_CONTEXT_KEYS = ("rejection_comment", "lost_reason", "comment", "note")


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


# --- erase ---------------------------------------------------------------------------


def erased_email(lead_id: int) -> str:
    return f"erased-{lead_id}@{ERASED_EMAIL_DOMAIN}"


def strip_url(url: str, person: Person) -> str:
    """Scheme, host and path only (no query, fragment or user info); ERASED when the path
    itself names the person (/unsubscribe/yamada@example.jp)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ERASED
    if not parts.scheme or not parts.hostname:
        return ERASED if person.mentioned_in_text(url) or "?" in url else url
    netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
    stripped = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    return ERASED if person.mentioned_in_text(stripped) else stripped


def scrub_event_properties(properties: dict[str, Any], person: Person) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for key, value in properties.items():
        if key in _EVENT_URL_KEYS and isinstance(value, str):
            kept[key] = strip_url(value, person)
        elif key in _EVENT_KEYS_KEPT and (
            value is None
            or isinstance(value, bool | int | float)
            or (isinstance(value, str) and not person.mentioned_in_text(value))
        ):
            kept[key] = value
    return kept


def _erase_core(person: Person) -> Counter[str]:
    counts: Counter[str] = Counter()
    for lead in Lead.objects.select_for_update().filter(pk__in=person.lead_ids).order_by("pk"):
        lead.email = erased_email(lead.pk)
        for name in (
            "last_name",
            "first_name",
            "last_name_kana",
            "first_name_kana",
            "department",
            "job_title",
            "phone",
        ):
            setattr(lead, name, "")
        lead.attributes = {}
        lead.save()
        counts["leadflow.Lead"] += 1

    events = []
    for event in EngagementEvent.objects.filter(lead_id__in=person.lead_ids).exclude(properties={}):
        scrubbed = scrub_event_properties(event.properties or {}, person)
        if scrubbed != event.properties:
            event.properties = scrubbed
            events.append(event)
    EngagementEvent.objects.bulk_update(events, ["properties"], batch_size=500)
    counts["leadflow.EngagementEvent.properties"] += len(events)

    deleted, _by_model = LeadExternalId.objects.filter(lead_id__in=person.lead_ids).delete()
    counts["leadflow.LeadExternalId"] += deleted

    transitions = []
    for transition in StageTransition.objects.filter(lead_id__in=person.lead_ids):
        touched = False
        # A person's or an outside system's words cannot be told apart from a mention of
        # the lead; the system's own reasons (scoring, routing) are generated and stay.
        written_by_people = bool(transition.actor_user_id) or transition.actor_system.startswith(
            "sfa:"
        )
        if (
            transition.reason
            and transition.reason != ERASED
            and (written_by_people or person.mentioned_in_text(transition.reason))
        ):
            transition.reason = ERASED
            touched = True
        context = dict(transition.context or {})
        for key in _FREE_TEXT_CONTEXT_KEYS:
            if context.get(key) and context[key] != ERASED:
                context[key] = ERASED
                touched = True
        if touched:
            transition.context = context
            transitions.append(transition)
    StageTransition.objects.bulk_update(transitions, ["reason", "context"], batch_size=500)
    counts["leadflow.StageTransition.reason"] += len(transitions)

    merges = LeadMerge.objects.filter(
        Q(kept_id__in=person.lead_ids) | Q(merged_email__in=person.emails)
    ).exclude(merged_email="", snapshot__erased=True)
    merged = 0
    for record in merges:
        # Only what says when a lead existed; its fields were the person's data.
        record.snapshot = {
            "id": record.snapshot.get("id"),
            "created_at": record.snapshot.get("created_at"),
            "erased": True,
        }
        record.merged_email = ""
        record.save(update_fields=["snapshot", "merged_email"])
        merged += 1
    counts["leadflow.LeadMerge.snapshot"] += merged

    # Review suggestions built from the person's name and phone: gone with the data.
    deleted, _by_model = DuplicateCandidate.objects.filter(
        Q(lead_a_id__in=person.lead_ids) | Q(lead_b_id__in=person.lead_ids)
    ).delete()
    counts["leadflow.DuplicateCandidate"] += deleted
    return counts


def person_erase(*, person: Person) -> dict[str, int]:
    """Remove the person's personal data everywhere, in one transaction; counts per place.

    Apps go first (they search their rows by the addresses and ids the core is about to
    erase), then the core. A failure anywhere rolls everything back: half an erasure
    would be recorded as done.
    """
    counts: Counter[str] = Counter()
    with transaction.atomic():
        # Lock the lead first: an intake update racing the erasure waits, then sees it.
        list(Lead.objects.select_for_update().filter(pk__in=person.lead_ids))
        for _receiver, result in person_erasing.send(sender=Person, person=person):
            counts.update(result or {})
        counts.update(_erase_core(person))
    return {key: counts[key] for key in sorted(counts)}


# --- export --------------------------------------------------------------------------


def as_json(value: Any) -> Any:
    """Dates, decimals and UUIDs as strings: what the export file will hold."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _rows(queryset: Iterable[Any], fields: Iterable[str]) -> list[dict[str, Any]]:
    names = list(fields)
    return [{name: getattr(row, name) for name in names} for row in queryset]


def _export_core(person: Person) -> dict[str, Any]:
    lead = Lead.objects.select_related("company", "owner").filter(pk__in=person.lead_ids).first()
    if lead is None:
        return {"lead": None, "company": None}
    company = lead.company
    return {
        "lead": {
            **_rows(
                [lead],
                [
                    "id",
                    "email",
                    "last_name",
                    "first_name",
                    "last_name_kana",
                    "first_name_kana",
                    "department",
                    "job_title",
                    "role",
                    "phone",
                    "source",
                    "stage",
                    "stage_changed_at",
                    "attributes",
                    "created_at",
                    "updated_at",
                ],
            )[0],
            "owner": lead.owner.get_username() if lead.owner else None,
        },
        "company": _rows(
            [company],
            ["id", "name", "name_kana", "domain", "employee_count", "industry", "prefecture"],
        )[0]
        if company
        else None,
        "external_ids": _rows(
            LeadExternalId.objects.filter(lead=lead).order_by("system"),
            ["system", "external_id", "created_at"],
        ),
        "events": _rows(
            EngagementEvent.objects.filter(lead=lead).order_by("occurred_at", "id"),
            ["id", "kind", "occurred_at", "properties", "source", "external_id", "created_at"],
        ),
        "transitions": [
            {**row, "actor": transition.actor_display}
            for transition, row in (
                (t, _rows([t], ["from_stage", "to_stage", "occurred_at", "reason", "context"])[0])
                for t in StageTransition.objects.filter(lead=lead)
                .select_related("actor_user")
                .order_by("occurred_at", "id")
            )
        ],
        "merges": _rows(
            LeadMerge.objects.filter(kept=lead).order_by("merged_at"),
            ["merged_lead_id", "merged_email", "snapshot", "merged_at"],
        ),
        "duplicate_candidates": _rows(
            DuplicateCandidate.objects.filter(Q(lead_a=lead) | Q(lead_b=lead)),
            ["lead_a_id", "lead_b_id", "evidence", "status", "detected_at"],
        ),
    }


def person_export(*, person: Person) -> dict[str, Any]:
    """Everything LeadFlow holds about the person, as one JSON-able document."""
    document: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "generated_at": timezone.now(),
        "subject": {"lead_ids": list(person.lead_ids), "emails": list(person.emails)},
        **_export_core(person),
    }
    for receiver, sections in person_exporting.send(sender=Person, person=person):
        if not isinstance(sections, dict):
            raise TypeError(f"{receiver!r} must return a dict of export sections")
        for name, value in sections.items():
            if name in document:
                raise RuntimeError(f"{receiver!r} exports a section named {name!r} twice")
            document[name] = value
    return as_json(document)
