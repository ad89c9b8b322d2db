"""A wave's held MQL whose lead raises its hand: it is not held back any more.

A wave (handoff.bulk) holds the MQLs above the teams' free capacity in their team's queue
with their SLA clocks stopped (`Handoff.clock_waits`). A person who then asks for contact
(the scoring model's hand-raiser event with fit ≥ its minimum, the test the per-event
scoring applies: `scoring.services.lead_score_changes` → HAND_RAISED) is never held
back: the handoff leaves the hold (`Handoff.wave_released_at`; the wave stays on it, as
what made it an MQL), its SLA timers start at the hand-raise (HANDOFF_RELEASED), and it
is routed by the single path's own decisions (account owner, round robin, capacity,
working hours), as if it had become an MQL then. When nobody has room it stays queued as
any MQL queued one by one does: its clock running, the managers told.

After the event's commit, not in its transaction: the event's transaction holds the lead
(intake's `lead_upsert` locks it), and the queue's drain holds a team and its queued
handoffs, then writes their leads (`routing._assign` makes the rep the owner); routing
here, under the team's lock, would close that cycle. So the event only finds the held
handoff (one read, no lock) and sends `release_from_wave_task` once it commits; the
release takes team → handoff as every reassignment does, and does nothing when the
handoff is not held any more: a second hand-raise, a drain or a manager came first.

A release sent after the commit can be lost (the broker down at that moment, a worker
killed before it ran): the beat's SLA sweep backs it up (`held_hand_raisers_release`),
releasing each held handoff whose lead's score says it raised its hand after the MQL.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet, Subquery
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from handoff import locks, routing, selectors
from handoff.models import Handoff, HandoffStatus
from leadflow import reactions
from leadflow.models import EngagementEvent, Lead
from leadflow.transactions import enqueue_on_commit
from scoring.models import LeadScore
from scoring.services import published_model

logger = logging.getLogger(__name__)


def _held(queryset: QuerySet[Handoff]) -> QuerySet[Handoff]:
    """The handoffs of `queryset` held in a wave: open, nobody's, not released."""
    return queryset.filter(
        status=HandoffStatus.OPEN,
        assigned_to__isnull=True,
        wave__isnull=False,
        wave_released_at__isnull=True,
    )


def handoff_hand_raised(*, lead: Lead, event: EngagementEvent) -> int | None:
    """HAND_RAISED, in the event's transaction: the id of the lead's handoff held in a
    wave, whose release (`handoff_release_from_wave`) is sent after the commit; None,
    and nothing sent, for a lead whose MQL is not held."""
    held = _held(Handoff.objects.filter(lead_id=lead.pk)).values_list("pk", flat=True).first()
    if held is None:
        return None
    from handoff.tasks import release_from_wave_task

    enqueue_on_commit(release_from_wave_task, held, event.pk)
    return held


def handoff_release_from_wave(*, handoff_id: int, event_id: int) -> Handoff | None:
    """Take a held handoff out of its wave's hold, its lead having raised its hand
    (`event_id`), and route it as a new MQL. Returns the handoff, with its rep or still
    queued; None when it is not held any more (or is gone), having changed nothing.

    Its clocks start when LeadFlow recorded the hand-raise (the event's `created_at`: an
    MQL made by an event starts its clock at the MQL, in the same processing), not when
    the event says it happened at the MA tool, which may be hours before it arrived."""
    event = EngagementEvent.objects.filter(pk=event_id).only("kind", "created_at").first()
    now = timezone.now()
    raised_at = event.created_at if event is not None else now
    with transaction.atomic(durable=True):
        # The routing is read first, without locks, as handoff_create_for_mql reads it,
        # and checked again under the team's lock (choose_for_new_mql).
        found = (
            _held(Handoff.objects.filter(pk=handoff_id))
            .select_related("lead__company", "wave")
            .first()
        )
        if found is None:
            return None
        lead = found.lead
        routed = selectors.routing_team_for(lead=lead)
        owner = routing._account_owner_membership(lead=lead, routed=routed, at=now)
        # One team lock, as for a new MQL: the owner's team, else the one the rules give
        # now, else the one the wave queued it in.
        team_id = owner[0].team_id if owner else (routed.pk if routed else found.team_id)
        team, handoff = locks.team_then_handoff(handoff_id, team_id)
        if not (handoff.is_open and handoff.clock_waits):
            return None  # a rep got it, or it was decided, while we waited for the locks
        handoff.wave_released_at = raised_at
        if team is not None:
            handoff.team = team  # the locked row, for the assignment below
        handoff.save(update_fields=["wave_released_at", "team"])
        reactions.run(reactions.HANDOFF_RELEASED, handoff=handoff, at=raised_at)
        choice = routing.choose_for_new_mql(team=team, owner=owner, at=now)
        if team is not None and choice.membership is not None:
            routing._assign(
                handoff=handoff,
                team=team,
                membership=choice.membership,
                via=choice.via,
                reason=_release_reason(
                    event=event, wave=found.wave.label if found.wave else "", also=choice.reason
                ),
                at=now,
            )
        elif not choice.waits_for_opening:
            routing.queue_notice(handoff=handoff, team=team, at=now)
    logger.info("Handoff %s left its wave: its lead raised its hand", handoff_id)
    return handoff


# Held handoffs the beat's backstop looks at per run (sla.tasks.sweep_task).
RELEASE_SWEEP_BATCH = 100


def held_hand_raisers_release(*, batch_size: int = RELEASE_SWEEP_BATCH) -> list[int]:
    """The beat's backstop for HAND_RAISED's release (sent after the event's commit, so
    it can be lost): each handoff still held in a wave whose lead has a hand-raiser event
    recorded after the handoff was made (whenever the MA tool says it happened: tools
    sync hours late, and the event path releases on any new raise), at the fit the
    published model asks of a hand-raiser, is released now. Oldest first, `batch_size` a
    run; returns the ids released. The score's `hand_raised_at` comes first: for the held
    leads that never raised a hand, nothing to do is one primary-key probe each."""
    model = published_model()
    if model is None or not model.hand_raiser_kind:
        return []
    may_have_raised = LeadScore.objects.filter(
        pk=OuterRef("lead_id"),
        model_id=model.id,
        fit__gte=model.hand_raiser_min_fit,
        hand_raised_at__isnull=False,
    )
    newest_raise_since = (
        EngagementEvent.objects.filter(
            lead_id=OuterRef("lead_id"),
            kind=model.hand_raiser_kind,
            created_at__gt=OuterRef("created_at"),
        )
        .order_by("-created_at", "-pk")
        .values("pk")[:1]
    )
    due = list(
        _held(Handoff.objects.filter(Exists(may_have_raised)))
        .annotate(raise_id=Subquery(newest_raise_since))
        .filter(raise_id__isnull=False)
        .order_by("created_at", "pk")
        .values_list("pk", "raise_id")[:batch_size]
    )
    released = []
    for handoff_id, event_id in due:
        if handoff_release_from_wave(handoff_id=handoff_id, event_id=event_id) is not None:
            released.append(handoff_id)
    return released


def _release_reason(*, event: EngagementEvent | None, wave: str, also: str) -> str:
    """The assignment log's note, in the site's language (stored, as the account owner's
    reasons are: whoever reads the log later reads what was decided then)."""
    with translation.override(settings.LANGUAGE_CODE):
        text = _(
            "Raised a hand (%(event)s) while waiting in the MQL wave “%(wave)s”: "
            "left the wave and routed at once."
        ) % {
            "event": event.get_kind_display() if event is not None else _("hand-raiser event"),
            "wave": wave,
        }
        return f"{text} {also}" if also else text
