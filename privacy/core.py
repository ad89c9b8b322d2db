"""The core's rows (leadflow: leads, events, transitions, merges) in an erasure or export.

One participant of privacy/participants.py, which runs it after every app's erasure (they
search their rows by the addresses and ids erased here) and before every app's export.

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
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Q

from leadflow.erased import ERASED
from leadflow.models import (
    PERSON_FIELDS,
    DuplicateCandidate,
    EngagementEvent,
    Lead,
    LeadExternalId,
    LeadMerge,
    StageTransition,
)
from privacy.person import Person, erased_email

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


# --- erase ---------------------------------------------------------------------------


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


def core_personal_data_erase(person: Person) -> Counter[str]:
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


# --- export --------------------------------------------------------------------------


def as_json(value: Any) -> Any:
    """Dates, decimals and UUIDs as strings: what the export file will hold."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _rows(queryset: Iterable[Any], fields: Iterable[str]) -> list[dict[str, Any]]:
    names = list(fields)
    return [{name: getattr(row, name) for name in names} for row in queryset]


def core_data_export(person: Person) -> dict[str, Any]:
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
                    *PERSON_FIELDS,
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
