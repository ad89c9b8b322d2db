"""Who erases and exports what about a person, in which order: the one list to read.

A participant is a function of one app's rows; `person_erase` and `person_export` call
them in the order below. A new app that keeps personal data adds its functions here
(an erasure returns counts {"app.Model.field": rows touched}, never the data; an export
returns named JSON-able sections).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from handoff.privacy import handoff_personal_data_erase
from handoff.selectors import handoffs_export
from leadflow.models import Lead
from privacy.core import as_json, core_data_export, core_personal_data_erase
from privacy.integrations import integrations_data_export, integrations_personal_data_erase
from privacy.person import Person
from scoring.selectors import fit_snapshots_export, lead_scores_export
from scoring.services import fit_snapshot_erase

EXPORT_FORMAT = "leadflow-person-export/1"

Eraser = Callable[[Person], Mapping[str, int]]
Exporter = Callable[[Person], Mapping[str, Any]]

# Erasure, in this order: the apps first, since they search their rows by the addresses
# and ids the core is about to erase; the core last. Scores are kept through an erasure
# (numbers, no personal data); scoring's fit snapshots hold the name, e-mail and phone.
ERASERS: tuple[tuple[str, Eraser], ...] = (
    ("scoring", lambda person: fit_snapshot_erase(lead_ids=person.lead_ids)),
    ("handoff", lambda person: handoff_personal_data_erase(lead_ids=person.lead_ids)),
    ("integrations", lambda person: integrations_personal_data_erase(person=person)),
    ("leadflow", core_personal_data_erase),
)

# Export, in this order: the sections of the document as they appear in it.
EXPORTERS: tuple[tuple[str, Exporter], ...] = (
    ("leadflow", core_data_export),
    (
        "scoring",
        lambda person: {
            "scores": lead_scores_export(lead_ids=person.lead_ids),
            "fit_snapshots": fit_snapshots_export(lead_ids=person.lead_ids),
        },
    ),
    ("handoff", lambda person: {"handoffs": handoffs_export(lead_ids=person.lead_ids)}),
    ("integrations", lambda person: integrations_data_export(person=person)),
)


def person_erase(*, person: Person) -> dict[str, int]:
    """Remove the person's personal data everywhere, in one transaction; counts per place.

    A failure anywhere rolls everything back: half an erasure would be recorded as done.
    """
    counts: Counter[str] = Counter()
    with transaction.atomic():
        # Lock the lead first: an intake update racing the erasure waits, then sees it.
        list(Lead.objects.select_for_update().filter(pk__in=person.lead_ids))
        for _app, erase in ERASERS:
            counts.update(erase(person))
    return {key: counts[key] for key in sorted(counts)}


def person_export(*, person: Person) -> dict[str, Any]:
    """Everything LeadFlow holds about the person, as one JSON-able document."""
    document: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "generated_at": timezone.now(),
        "subject": {"lead_ids": list(person.lead_ids), "emails": list(person.emails)},
    }
    for app, export in EXPORTERS:
        for name, value in export(person).items():
            if name in document:
                raise RuntimeError(f"{app} exports a section named {name!r} twice")
            document[name] = value
    return as_json(document)
