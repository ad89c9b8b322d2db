"""Row locks, in the one order every transaction takes them (written here once):

    lead (two leads: the lower id first) → team → handoff → SLA timers, claim window

- A stage move locks its lead (`lead_for_change`); a new MQL's handoff is routed in the
  same transaction, so lead → team (`handoff.locks.team`). The new handoff and what
  HANDOFF_CREATED writes come before the team's lock (new rows nobody can wait for):
  the lock is held to the commit, and it bounds a team's MQLs per second.
- Routing and every reassignment lock the team, then the handoff
  (`handoff.locks.team_then_handoff`, `handoff.locks.team_queue`): the team's row lock is
  what serialises its round robin.
- Work on one handoff (an activity, a verdict) locks the handoff (`handoff.locks.handoff`),
  then its SLA timers (`sla.services`); the SLA sweep locks only timers, SKIP LOCKED.
- Claim or pass on (#19): a claim changes its pending window with one conditional
  UPDATE — under the handoff's lock when the holder acknowledges or logs an activity,
  alone when the holder opens the page. A pass holds team → handoff, then takes the
  window last with SKIP LOCKED (`handoff.locks.claim_window_due`): it never waits for a
  window, so a claim in flight wins and no cycle can form.
- The one exception: a verdict locks its handoff, then moves its lead (handoff → lead).
  It cannot close a cycle: the only path that holds a lead and then waits for a team is a
  new MQL, and a lead with an open handoff does not become an MQL.
- A bulk move (many leads become MQL at once) locks its batch's leads, lower id first,
  SKIP LOCKED (`leads_for_bulk_change`), then every team, lower id first: it holds no team
  while it waits for a lead, and the per-lead paths hold at most one team.
- A merge locks both leads, lower id first (`leads_in_order`), and nothing of handoff's
  beyond reading.

Lead locks are NO KEY where the id does not change, so rows that refer to the lead
(events, duplicate candidates) are not held up by them.
"""

from __future__ import annotations

from collections.abc import Iterable

from leadflow.models import Lead


def lead_for_change(lead_id: int) -> Lead | None:
    """Lock one lead for a change of its own fields (not its id); with its company, which
    the reactions (routing, the outbox payload) read. Only the lead's row is locked."""
    return (
        Lead.objects.select_for_update(of=("self",), no_key=True)
        .select_related("company")
        .filter(pk=lead_id)
        .first()
    )


def leads_for_bulk_change(lead_ids: Iterable[int], *, stages: Iterable[str]) -> dict[int, Lead]:
    """Lock, for a bulk move (`lifecycle.leads_transition_bulk`), those of the leads that
    are in one of `stages` and that no other transaction holds: lower id first, SKIP
    LOCKED. A lead held elsewhere (a rep moving it, an event scoring it) is left out
    instead of waited for: the batch then holds leads that nobody else waits behind, and
    never waits for a lead while holding others (no deadlock with the per-lead moves).
    The caller re-checks each stage under the lock. With their companies, as
    `lead_for_change`; NO KEY, as there."""
    return {
        lead.pk: lead
        for lead in Lead.objects.select_for_update(of=("self",), no_key=True, skip_locked=True)
        .select_related("company")
        .filter(pk__in=list(lead_ids), stage__in=list(stages))
        .order_by("pk")
    }


def leads_in_order(lead_ids: Iterable[int]) -> dict[int, Lead]:
    """Lock several leads, lower id first, so two transactions over one pair cannot
    deadlock. Leads that do not exist are missing from the result."""
    return {
        lead.pk: lead
        for lead in Lead.objects.select_for_update().filter(pk__in=list(lead_ids)).order_by("pk")
    }
