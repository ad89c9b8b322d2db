"""Writes of the handoff timeline (speed to lead): one row per handoff, each instant set
once, when it first happens.

Every write is a conditional UPDATE (`... WHERE <instant> IS NULL`), so a redelivered
task, a second notification channel or a second view changes nothing: the first instant
stays. The figures built from these rows are in sla.kpis.speed_metrics, pre-summed per MQL
day: a write that changed a row marks its day for recomputation (`TimelineStaleDay`, in
the same transaction), the creation of a row is marked by the SLA app with the new handoff's.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from handoff.models import Handoff, HandoffTimeline, TimelineStaleDay
from leadflow.models import EngagementEvent, User

# An MQL counts as made by an MA event when the newest event of the lead was recorded
# this long before it at most: in the same intake transaction it is milliseconds; a model
# change or a manual edit that makes an MQL days after the last event is not a hop.
EVENT_CAUSE_WINDOW = timedelta(minutes=5)

INSTANTS = (
    "assigned_at",
    "notified_at",
    "opened_at",
    "first_contact_at",
    "decided_at",
    "sfa_delivered_at",
)


def timeline_event(*, handoff: Handoff) -> EngagementEvent | None:
    """The lead's newest event, which `timeline_start` needs: read before the routing (it
    does not change it), so not under the team's lock."""
    return (
        EngagementEvent.objects.filter(lead_id=handoff.lead_id)
        .order_by("-created_at", "-id")
        .only("occurred_at", "received_at", "created_at")
        .first()
    )


def timeline_start(
    *, handoff: Handoff, at: datetime, event: EngagementEvent | None
) -> HandoffTimeline:
    """The row of a new handoff, in the transaction that creates it, after its routing;
    `event` is `timeline_event`'s answer, read before it."""
    row = timeline_row(handoff=handoff, at=at, event=event)
    row.save(force_insert=True)
    return row


def timeline_row(
    *, handoff: Handoff, at: datetime, event: EngagementEvent | None
) -> HandoffTimeline:
    """timeline_start's row, unsaved (a bulk move inserts its batch's in one statement)."""
    # Recorded just before the MQL, in the same intake: a back-dated MQL (an import, the
    # demo) or one made by a model change long after the last event has no MA hops.
    caused = event is not None and at - EVENT_CAUSE_WINDOW <= event.created_at <= at
    return HandoffTimeline(
        handoff=handoff,
        mql_at=at,
        source=handoff.lead.source,
        event_occurred_at=event.occurred_at if caused and event else None,
        received_at=event.received_at if caused and event else None,
        processed_at=event.created_at if caused and event else None,
        assigned_at=handoff.assigned_at,  # routed just before, in this transaction
    )


def _changed(rows: Q, changed: int) -> bool:
    """After an UPDATE of the timelines `rows`: mark the MQL day of what it changed (the
    callers hold both in one transaction, `_atomic`)."""
    if changed:
        TimelineStaleDay.objects.bulk_create(
            TimelineStaleDay(day=timezone.localdate(mql_at))
            for mql_at in set(HandoffTimeline.objects.filter(rows).values_list("mql_at", flat=True))
        )
    return bool(changed)


def _atomic() -> transaction.Atomic:
    """The instant and its day's mark commit together; inside the caller's transaction
    (the usual case) without a savepoint, so no extra queries."""
    return transaction.atomic(savepoint=False)


def timeline_mark(*, handoff_id: int, instant: str, at: datetime) -> bool:
    """Record `instant` of the handoff if it has not happened yet; True when it was now."""
    if instant not in INSTANTS:
        raise ValueError(f"{instant} is not a timeline instant")
    with _atomic():
        changed = HandoffTimeline.objects.filter(
            handoff_id=handoff_id, **{f"{instant}__isnull": True}
        ).update(**{instant: at})
        return _changed(Q(handoff_id=handoff_id), changed)


def timeline_set_first_contact(*, handoff_id: int, at: datetime) -> bool:
    """The earliest activity is the first contact, as on the handoff: an activity logged
    later but dated earlier (a call written up afterwards) moves it back."""
    with _atomic():
        changed = (
            HandoffTimeline.objects.filter(handoff_id=handoff_id)
            .filter(Q(first_contact_at__isnull=True) | Q(first_contact_at__gt=at))
            .update(first_contact_at=at)
        )
        return _changed(Q(handoff_id=handoff_id), changed)


def handoff_mark_opened(*, handoff: Handoff, user: User, at: datetime) -> bool:
    """The rep who holds the handoff opened its page: the first time is the instant.
    A manager's or another rep's look is not the holder picking it up."""
    if handoff.assigned_to_id is None or handoff.assigned_to_id != user.pk:
        return False
    return timeline_mark(handoff_id=handoff.pk, instant="opened_at", at=at)


def timeline_mark_sfa_delivered(*, mql_transition_id: int, at: datetime) -> bool:
    """The MQL reached the SFA: the first destination's delivery is the instant."""
    with _atomic():
        changed = HandoffTimeline.objects.filter(
            handoff__mql_transition_id=mql_transition_id, sfa_delivered_at__isnull=True
        ).update(sfa_delivered_at=at)
        return _changed(Q(handoff__mql_transition_id=mql_transition_id), changed)
