"""Reads for the outbound side: what is due, who receives what, which lead is meant."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Exists, OuterRef, Q, QuerySet

from integrations.outbound.models import (
    OPEN_STATUSES,
    Destination,
    DestinationKind,
    MessageStatus,
    OutboxMessage,
)
from leadflow.models import Lead, LeadExternalId
from leadflow.normalize import normalize_email


def destinations_enabled() -> list[Destination]:
    # A handful of rows, read once per stage change; filtering events in Python keeps the
    # query the same on SQLite, which has no JSON containment lookup.
    return list(Destination.objects.filter(enabled=True).order_by("pk"))


def outbox_due(*, now: datetime) -> QuerySet[OutboxMessage]:
    """Messages a worker may take now, oldest first.

    Due means pending with its time come, or in flight with an expired lease (the worker
    that held it died). A message waits while an older one for the same lead and
    destination is still open, so each lead's messages arrive in the order they happened;
    a dead one no longer holds the others back. Disabled destinations keep their
    messages until they are enabled again.
    """
    older_open = OutboxMessage.objects.filter(
        destination_id=OuterRef("destination_id"),
        lead_id=OuterRef("lead_id"),
        id__lt=OuterRef("id"),
        status__in=OPEN_STATUSES,
    )
    return (
        OutboxMessage.objects.filter(
            Q(status=MessageStatus.PENDING, next_attempt_at__lte=now)
            | Q(status=MessageStatus.IN_FLIGHT, lease_expires_at__lt=now),
            destination__enabled=True,
        )
        .filter(~Exists(older_open))
        .order_by("next_attempt_at", "id")
    )


def external_id_for(*, lead_id: int, system: str) -> str | None:
    return (
        LeadExternalId.objects.filter(lead_id=lead_id, system=system)
        .order_by("-id")
        .values_list("external_id", flat=True)
        .first()
    )


def _systems_for(destination: Destination) -> list[str]:
    # The ids the connectors store for a lead; a generic webhook stores none.
    if destination.kind == DestinationKind.SALESFORCE:
        return ["salesforce", "salesforce_contact", "salesforce_opportunity"]
    if destination.kind == DestinationKind.HUBSPOT:
        return ["hubspot"]
    return []


def lead_for_feedback(*, destination: Destination, ref: str) -> Lead | None:
    """The lead an SFA means: by e-mail, by the id the SFA gave it, or by LeadFlow's id.

    Salesforce and webhook receivers know LeadFlow's id (we send it as the external id
    field / "lead.id"), so a plain number from them is tried as that last.
    """
    ref = ref.strip()
    if "@" in ref:
        return Lead.objects.with_email(normalize_email(ref)).first()
    systems = _systems_for(destination)
    if systems:
        link = (
            LeadExternalId.objects.select_related("lead")
            .filter(system__in=systems, external_id=ref)
            .order_by("-id")
            .first()
        )
        if link is not None:
            return link.lead
    if destination.kind != DestinationKind.HUBSPOT and ref.isdigit():
        return Lead.objects.filter(pk=int(ref)).first()
    return None


def outbox_status_counts() -> dict[str, int]:
    from django.db.models import Count

    rows = OutboxMessage.objects.values("status").annotate(n=Count("id")).order_by()
    return {row["status"]: row["n"] for row in rows}
