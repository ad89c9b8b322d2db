"""Handoff's part of erasing a person (APPI / GDPR): the free text sales wrote."""

from __future__ import annotations

from collections.abc import Iterable

from handoff.models import (
    Activity,
    Handoff,
)
from leadflow.privacy import ERASED


def handoff_personal_data_erase(*, lead_ids: Iterable[int]) -> dict[str, int]:
    """Free text sales wrote about the person (activity notes, rejection comments) is
    replaced by the erasure marker; the rows, outcomes and times stay for the KPIs."""
    ids = list(lead_ids)
    notes = (
        Activity.objects.filter(handoff__lead_id__in=ids)
        .exclude(note="")
        .exclude(note=ERASED)
        .update(note=ERASED)
    )
    comments = (
        Handoff.objects.filter(lead_id__in=ids)
        .exclude(rejection_comment="")
        .exclude(rejection_comment=ERASED)
        .update(rejection_comment=ERASED)
    )
    return {"handoff.Activity.note": notes, "handoff.Handoff.rejection_comment": comments}
