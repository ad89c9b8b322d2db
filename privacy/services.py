"""Erasing and exporting a person, with the record; privacy/participants.py does the work."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _

from leadflow.errors import DomainError
from leadflow.lifecycle import Actor
from leadflow.models import User
from leadflow.normalize import normalize_email
from privacy.models import ErasureRequest
from privacy.participants import person_erase, person_export
from privacy.person import ERASED_EMAIL_DOMAIN, person_find

logger = logging.getLogger(__name__)


def subject_digest(email: str) -> str:
    """Keyed with SECRET_KEY: a list of digests cannot be reversed by hashing a directory
    of addresses. (After a SECRET_KEY change, old digests no longer match.) The salt names
    the module this lived in before; it stays, or every recorded digest would stop matching."""
    address = normalize_email(email)
    if not address:
        return ""
    return salted_hmac("leadflow.privacy.erasure", address, algorithm="sha256").hexdigest()


def erasure_execute(
    *,
    requested_by: str,
    actor: User | str,
    email: str | None = None,
    lead_id: int | None = None,
    note: str = "",
    requested_at: datetime | None = None,
) -> ErasureRequest:
    """Erase everything personal about the person behind `email` or `lead_id`, and record
    it, in one transaction. Running it again for the same person is harmless."""
    requested_by = (requested_by or "").strip()
    if not requested_by:
        raise DomainError(
            _("Say who asked for the erasure (a ticket or reference, not the person's name)."),
            code="requested_by_missing",
            fields={"requested_by": [_("This field is required.")]},
        )
    who = Actor.of(actor)
    with transaction.atomic():
        person = person_find(email=email, lead_id=lead_id)
        primary = email or next(
            (a for a in person.emails if not a.endswith("@" + ERASED_EMAIL_DOMAIN)), ""
        )
        counts = person_erase(person=person)
        record = ErasureRequest.objects.create(
            subject_lead_id=person.lead_ids[0] if person.lead_ids else None,
            subject_digest=subject_digest(primary) if primary else "",
            requested_by=requested_by,
            executed_by=who.user,
            executed_by_system=who.system,
            counts=counts,
            note=note.strip(),
            **({"requested_at": requested_at} if requested_at else {}),
        )
    logger.info(
        "Erasure request %s executed for lead %s by %s: %d rows",
        record.pk,
        record.subject_lead_id,
        record.executed_by_display,
        record.rows_touched,
    )
    return record


def erasure_requests_for(*, email: str):
    """Erasures recorded for this address (answers "did you erase me?")."""
    return ErasureRequest.objects.filter(subject_digest=subject_digest(email))


def person_data_export(
    *, actor: User | str, email: str | None = None, lead_id: int | None = None
) -> dict[str, Any]:
    """Everything held about the person, as JSON-able data. Logged (who, which lead), since
    an export is itself a disclosure of personal data."""
    person = person_find(email=email, lead_id=lead_id)
    document = person_export(person=person)
    logger.info(
        "Personal data export of lead %s by %s",
        person.lead_ids[0] if person.lead_ids else None,
        Actor.of(actor),
    )
    return document
