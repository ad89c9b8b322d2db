"""SLA state changes: timers start, follow their rep, are met; the sweep marks breaches and
sends reminders; escalation tells the managers and may reassign; the weekly digest.

Timers and reassignment (a decision, documented in the README too): the clocks do NOT
restart when a handoff moves to another rep. The deadline is the customer's — the lead
raised a hand at the MQL and waits the same whoever holds it — so a reassignment cannot
make a late lead look on time. For fairness the timer records the rep who holds it
(`rep`, following reassignments while it runs, frozen once met or breached) and since
when (`rep_since`): the per-rep tables attribute each outcome to that rep and show how
many of their timers they got mid-way (inherited), so a rep handed a lead at hour 23
is seen as such.

Lock order: team → handoff → timer, as in handoff.locks (activities lock the handoff,
then the timer); the sweep locks only timer rows and waits for nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from handoff import routing as handoff_routing
from handoff import selectors as handoff_selectors
from handoff.models import Activity, Handoff, RejectionReason, Team
from leadflow.errors import DomainError
from leadflow.notify import post_webhook, public_url, send_once
from leadflow.transactions import enqueue_on_commit
from sla.calendar import (
    Calendar,
    add_business_days,
    add_business_time,
    business_time_between,
)
from sla.kpis.days import kpi_days_mark_stale, kpi_days_refresh_all
from sla.models import (
    DigestDelivery,
    DurationUnit,
    SlaTimer,
    TimerKind,
    TimerPolicy,
    TimerStatus,
)
from sla.selectors import (
    calendar_for,
    sla_settings_get,
    timer_policies_with_calendars,
)

logger = logging.getLogger(__name__)

# Timer ids per escalation/reminder task: one broker round trip per chunk, not per timer.
TASK_CHUNK = 50
# A breach whose escalation task never ran (broker lost it, worker killed) is enqueued
# again by the sweep after this long; the escalation's own claim makes that harmless.
ESCALATION_RETRY_AFTER = timedelta(minutes=5)


def _chunks(ids: list[int], size: int = TASK_CHUNK) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


# --- deadlines -------------------------------------------------------------------------


def timer_deadline(
    *, policy: TimerPolicy, start: datetime, calendar: Calendar
) -> tuple[datetime, datetime | None]:
    """When a timer of `policy` started at `start` is due, and when to remind the rep.

    Hours of business time are added on the calendar; business days end at closing time of
    the N-th business day after the start's day (5営業日以内); calendar time is plain
    addition. The reminder comes at `remind_at_percent` of the window, measured the same
    way (so 75 % of 24 business hours is 18 business hours, not 18 clock hours).
    """
    business = policy.counts_business_time
    if policy.unit == DurationUnit.HOURS:
        window = timedelta(hours=policy.amount)
        due = add_business_time(calendar, start, window) if business else start + window
    elif business:
        due = add_business_days(calendar, start, policy.amount)
    else:
        due = start + timedelta(days=policy.amount)
    if not policy.remind_at_percent:
        return due, None
    if business:
        share = business_time_between(calendar, start, due) * policy.remind_at_percent / 100
        remind = add_business_time(calendar, start, share)
    else:
        remind = start + (due - start) * policy.remind_at_percent / 100
    return due, remind


# --- timers follow the handoff ------------------------------------------------------------


def timers_start(*, handoff: Handoff, at: datetime) -> list[SlaTimer]:
    """Start the handoff's timers at the MQL (HANDOFF_CREATED, same transaction).

    Idempotent: one timer per handoff and kind (unique), a second call adds nothing.
    """
    return timers_start_bulk(handoffs=[handoff], at=at)


def timers_start_bulk(*, handoffs: list[Handoff], at: datetime) -> list[SlaTimer]:
    """timers_start for handoffs all created at `at` (a bulk move's): each policy's
    deadline is computed once, the timers written in one INSERT, the next deadlines in
    one UPDATE. Idempotent, as timers_start. A wave's MQL waiting in the queue gets none
    yet (`Handoff.clock_waits`): `timers_start_on_assignment` starts them."""
    handoffs = [handoff for handoff in handoffs if not handoff.clock_waits]
    if not handoffs:
        return []
    deadlines = [
        (policy, *timer_deadline(policy=policy, start=at, calendar=calendar))
        for policy, calendar in timer_policies_with_calendars()
    ]
    timers = [
        SlaTimer(
            handoff=handoff,
            kind=policy.kind,
            policy=policy,
            counts_business_time=policy.counts_business_time,
            started_at=at,
            due_at=due,
            remind_at=remind,
            rep_id=handoff.assigned_to_id,
            rep_since=at if handoff.assigned_to_id else None,
        )
        for handoff in handoffs
        for policy, due, remind in deadlines
    ]
    SlaTimer.objects.bulk_create(timers, ignore_conflicts=True)
    handoff_next_due_refresh(handoff_ids=[handoff.pk for handoff in handoffs])
    return timers


def timers_start_on_assignment(*, handoff: Handoff, at: datetime) -> list[SlaTimer]:
    """A wave's MQL that waited in the queue got its first rep (HANDOFF_ASSIGNED): its
    timers start now, with that rep, as a new MQL's start at the MQL. Nothing for a
    handoff that has its timers already (assigned at once, or reassigned since)."""
    if handoff.wave_id is None or SlaTimer.objects.filter(handoff_id=handoff.pk).exists():
        return []
    return timers_start(handoff=handoff, at=at)


def handoff_next_due_refresh(*, handoff_ids: Iterable[int]) -> None:
    """Store on each handoff its next deadline not yet met (Handoff.next_due_at, the
    lists' "most urgent first") and its obligation. Called by every service here that
    starts or meets a timer, in its transaction; one UPDATE whatever the number.

    A breach does not change it: a breached timer is still unmet, and the overdue
    deadline stays the most urgent one until someone meets it."""
    Handoff.objects.filter(pk__in=list(handoff_ids)).update(**next_due_values())


def next_due_values() -> dict[str, Any]:
    """Handoff.next_due_at/next_due_kind as SQL over the handoff's timers, for an UPDATE of
    any set of handoffs (the bench seeds fill theirs with it too)."""
    unmet = SlaTimer.objects.filter(handoff_id=OuterRef("pk"), met_at__isnull=True).order_by(
        "due_at", "id"
    )
    return {
        "next_due_at": Subquery(unmet.values("due_at")[:1]),
        "next_due_kind": Coalesce(Subquery(unmet.values("kind")[:1]), Value("")),
    }


def timers_reassign(*, handoff: Handoff, rep_id: int, at: datetime) -> int:
    """The handoff has a new rep: its running timers follow (attribution), their due times
    do not move (see the module docstring). Met or breached timers keep the rep they had."""
    return SlaTimer.objects.filter(handoff_id=handoff.pk, status=TimerStatus.PENDING).update(
        rep_id=rep_id, rep_since=at
    )


def _meet(*, handoff_id: int, kinds: Iterable[str], at: datetime) -> list[SlaTimer]:
    """Meet the handoff's timers of `kinds` at `at` (the event's own time, which may lie in
    the past: a call logged afterwards, an imported verdict).

    - running, `at` on time → met;
    - running, `at` late (the sweep has not seen it yet) → recorded as breached and met
      late, without an escalation: the obligation is done, only late;
    - breached by the sweep, `at` turns out on time (the call was logged after the fact) →
      met: the record follows what happened, not when it was typed in;
    - already met at an earlier time → unchanged.
    """
    now = timezone.now()
    changed = []
    timers = SlaTimer.objects.select_for_update().filter(handoff_id=handoff_id, kind__in=kinds)
    for timer in timers:
        if timer.met_at is not None and timer.met_at <= at:
            continue
        timer.met_at = at
        fields = ["met_at", "status"]
        if at <= timer.due_at:
            timer.status = TimerStatus.MET
        elif timer.status == TimerStatus.PENDING:
            timer.status = TimerStatus.BREACHED
            timer.breached_at = now
            timer.escalated_at = now
            fields += ["breached_at", "escalated_at"]
        timer.save(update_fields=fields)
        changed.append(timer)
    if changed:
        handoff_next_due_refresh(handoff_ids=[handoff_id])
    return changed


def timers_meet_first_contact(*, handoff: Handoff, at: datetime) -> list[SlaTimer]:
    """An activity was logged: the first contact is made (ACTIVITY_LOGGED)."""
    return _meet(handoff_id=handoff.pk, kinds=[TimerKind.FIRST_CONTACT], at=at)


def timers_meet_verdict(*, handoff: Handoff, at: datetime) -> list[SlaTimer]:
    """Accepted or rejected: the verdict is given (HANDOFF_DECIDED).

    A verdict also answers the MQL, so a first-contact timer still running is met by it
    (a lead rejected as a duplicate needs no call). The KPI "time to first contact" reads
    logged activities only, so it is not flattered by this.
    """
    return _meet(handoff_id=handoff.pk, kinds=[TimerKind.VERDICT, TimerKind.FIRST_CONTACT], at=at)


def rejection_check(*, handoff: Handoff, reason: RejectionReason) -> None:
    """Refuse "not reachable" before the agreed number of attempts (article: 最低3回の
    アプローチ). In BEFORE_REJECT (handoff_reject), under the handoff's lock."""
    agreed = sla_settings_get()
    if reason.code != agreed.not_reachable_reason_code:
        return
    attempts = Activity.objects.filter(handoff_id=handoff.pk).count()
    if attempts < agreed.min_attempts_not_reachable:
        message = _(
            "“%(reason)s” needs at least %(needed)d contact attempts; %(count)d logged so far. "
            "Log your calls and e-mails first."
        ) % {
            "reason": reason.label,
            "needed": agreed.min_attempts_not_reachable,
            "count": attempts,
        }
        raise DomainError(message, code="too_few_attempts", fields={"reason": [message]})


# --- the sweep -------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepResult:
    breached: list[int]
    reminded: list[int]
    retried: list[int]
    more: bool  # a batch was full: run again soon


def _claim(queryset, *, batch_size: int, changes: dict[str, Any]) -> list[int]:
    """Claim up to `batch_size` rows of `queryset` and apply `changes` to them, atomically.

    PostgreSQL: SELECT … FOR UPDATE SKIP LOCKED, so two sweeps (two beats, two workers)
    take disjoint rows and neither waits. The UPDATE repeats the queryset's conditions, so
    a row that changed since (met by an activity) is not overwritten. SQLite has no row
    locks but runs one writer at a time (IMMEDIATE transactions), which is as safe.
    """
    ids = list(
        queryset.select_for_update(skip_locked=True)
        .order_by()
        .values_list("pk", flat=True)[:batch_size]
    )
    if ids:
        queryset.filter(pk__in=ids).update(**changes)
    return ids


def timers_sweep(*, now: datetime | None = None, batch_size: int | None = None) -> SweepResult:
    """Mark due timers breached and send reminders, in bounded batches.

    All state is in the database: a sweep that dies mid-way rolls back and the next one
    finds the same rows; a breach is marked once because the claim is a conditional
    UPDATE of pending rows. Escalations and reminders are enqueued after commit.
    """
    from sla import tasks

    now = now or timezone.now()
    size = batch_size or settings.SLA_SWEEP_BATCH_SIZE
    with transaction.atomic(durable=True):
        breached = _claim(
            SlaTimer.objects.filter(status=TimerStatus.PENDING, due_at__lte=now),
            batch_size=size,
            changes={"status": TimerStatus.BREACHED, "breached_at": now},
        )
        if breached:
            # Late now: the dashboard recomputes these MQL days.
            kpi_days_mark_stale(
                moments=SlaTimer.objects.filter(pk__in=breached)
                .values_list("started_at", flat=True)
                .distinct()
            )
        for chunk in _chunks(breached):
            enqueue_on_commit(tasks.escalate_timers_task, chunk)
    with transaction.atomic(durable=True):
        reminded = _claim(
            SlaTimer.objects.filter(
                status=TimerStatus.PENDING,
                reminded_at__isnull=True,
                remind_at__lte=now,
                due_at__gt=now,
            ),
            batch_size=size,
            changes={"reminded_at": now},
        )
        for chunk in _chunks(reminded):
            enqueue_on_commit(tasks.remind_timers_task, chunk)
    # Breaches whose escalation never ran: enqueue again (the escalation claims its row).
    retried = list(
        SlaTimer.objects.filter(
            status=TimerStatus.BREACHED,
            escalated_at__isnull=True,
            breached_at__lte=now - ESCALATION_RETRY_AFTER,
        )
        .order_by("breached_at")
        .values_list("pk", flat=True)[:size]
    )
    for chunk in _chunks(retried):
        tasks.escalate_timers_task.delay(chunk)
    more = len(breached) == size or len(reminded) == size
    if breached or reminded:
        logger.info("SLA sweep: %d breached, %d reminded", len(breached), len(reminded))
    return SweepResult(breached=breached, reminded=reminded, retried=retried, more=more)


# --- escalation and reminders --------------------------------------------------------------


def timer_escalate(*, timer_id: int) -> bool:
    """Escalate one breach once: reassign through the routing if the policy says so, then
    tell the team's managers (from a task, after commit).

    The claim (escalated_at) commits first and on its own, so escalation is at most once:
    a worker killed between the claim and the reassignment loses that reassignment (the
    overdue list on the dashboard still shows the lead). It also keeps the lock order:
    the reassignment locks team → handoff → timer like every other handoff change.
    """
    from sla import tasks

    claimed = SlaTimer.objects.filter(
        pk=timer_id, status=TimerStatus.BREACHED, escalated_at__isnull=True, met_at__isnull=True
    ).update(escalated_at=timezone.now())
    if not claimed:
        return False
    timer = SlaTimer.objects.select_related("policy", "handoff").get(pk=timer_id)
    policy = timer.policy
    if policy is not None and policy.reassign_on_breach and timer.handoff.is_open:
        with translation.override(settings.LANGUAGE_CODE):
            reason = _("SLA breached: %(obligation)s was due %(due)s.") % {
                "obligation": timer.get_kind_display(),
                "due": timezone.localtime(timer.due_at).strftime("%Y-%m-%d %H:%M"),
            }
        handoff_routing.handoff_reroute(handoff=timer.handoff, reason=reason)
    if policy is None or policy.notify_manager:
        enqueue_on_commit(tasks.escalation_notify_task, timer_id)
    return True


def _handoff_url(handoff: Handoff) -> str:
    return public_url(reverse("handoff:detail", args=[handoff.pk]))


def escalation_notify(*, timer_id: int) -> dict[str, bool]:
    """E-mail the managers of the handoff's team about a breach, and post to the SLA webhook
    if one is configured. Each channel at most once per timer. Outside any transaction."""
    sent = {"email": False, "webhook": False}
    timer = (
        SlaTimer.objects.select_related(
            "handoff__lead__company", "handoff__team", "handoff__assigned_to", "rep"
        )
        .filter(pk=timer_id, status=TimerStatus.BREACHED)
        .first()
    )
    if timer is None:
        return sent
    handoff = timer.handoff
    managers = (
        list(handoff_selectors.managers_to_notify(team_id=handoff.team_id))
        if handoff.team_id
        else []
    )
    with translation.override(settings.LANGUAGE_CODE):
        context = {
            "timer": timer,
            "handoff": handoff,
            "lead": handoff.lead,
            "late_rep": timer.rep,
            "now_rep": handoff.assigned_to,
            "url": _handoff_url(handoff),
            "dashboard_url": public_url(reverse("sla:dashboard")),
        }
        lead_name = handoff.lead.full_name or handoff.lead.email
        subject = _("SLA breached: %(obligation)s for %(lead)s") % {
            "obligation": timer.get_kind_display(),
            "lead": lead_name,
        }
        body = render_to_string("sla/email/escalation.txt", context)
        text = _("SLA breached: %(obligation)s for %(lead)s (rep: %(rep)s) — %(url)s") % {
            "obligation": timer.get_kind_display(),
            "lead": lead_name,
            "rep": timer.rep or _("nobody"),
            "url": context["url"],
        }
    if managers:
        recipients = [m.email for m in managers]
        sent["email"] = send_once(
            SlaTimer,
            timer.pk,
            "escalation_email_sent_at",
            lambda: send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients),
        )
    if settings.SLA_SLACK_WEBHOOK_URL:
        sent["webhook"] = send_once(
            SlaTimer,
            timer.pk,
            "escalation_webhook_sent_at",
            lambda: post_webhook(settings.SLA_SLACK_WEBHOOK_URL, text),
        )
    return sent


def reminder_notify(*, timer_id: int) -> bool:
    """Remind the rep who holds the handoff that a deadline is near. At most once."""
    timer = (
        SlaTimer.objects.select_related("handoff__lead__company", "handoff__assigned_to")
        .filter(pk=timer_id, status=TimerStatus.PENDING, met_at__isnull=True)
        .first()
    )
    if timer is None or timer.handoff.assigned_to is None or not timer.handoff.is_open:
        return False
    rep = timer.handoff.assigned_to
    if not rep.email:
        return False
    with translation.override(settings.LANGUAGE_CODE):
        lead_name = timer.handoff.lead.full_name or timer.handoff.lead.email
        subject = _("Reminder: %(obligation)s for %(lead)s is due %(due)s") % {
            "obligation": timer.get_kind_display(),
            "lead": lead_name,
            "due": timezone.localtime(timer.due_at).strftime("%m/%d %H:%M"),
        }
        body = render_to_string(
            "sla/email/reminder.txt",
            {
                "timer": timer,
                "handoff": timer.handoff,
                "rep": rep,
                "url": _handoff_url(timer.handoff),
            },
        )
    return send_once(
        SlaTimer,
        timer.pk,
        "reminder_email_sent_at",
        lambda: send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [rep.email]),
    )


# --- the weekly digest ---------------------------------------------------------------------


def _last_week(now: datetime) -> tuple[date, date]:
    today = timezone.localdate(now)
    this_monday = today - timedelta(days=today.weekday())
    return this_monday - timedelta(days=7), this_monday - timedelta(days=1)


def digest_send_weekly(*, now: datetime | None = None) -> int:
    """Send each manager last week's figures for their teams (Monday morning, from beat).

    Once per manager and week, however often it runs: the DigestDelivery row is the claim
    (unique), written before sending and removed again if sending fails.
    """
    from sla.kpis import metrics, speed_metrics

    now = now or timezone.now()
    start, end = _last_week(now)
    kpi_days_refresh_all()  # the figures as of now, not of the last beat
    managers = handoff_selectors.managers_to_notify(team_id=None)
    sent = 0
    for manager in managers:
        try:
            with transaction.atomic():
                delivery = DigestDelivery.objects.create(user=manager, week_start=start)
        except IntegrityError:
            continue  # this week's digest went out already (or is going out now)
        team_ids = frozenset(Team.objects.filter(managers=manager).values_list("pk", flat=True))
        figures = metrics.MetricsFilter(start=start, end=end, team_ids=team_ids)
        try:
            with translation.override(settings.LANGUAGE_CODE):
                summary = metrics.summary(figures)
                context = {
                    "manager": manager,
                    "start": start,
                    "end": end,
                    "kpis": metrics.kpis(summary),
                    "summary": summary,
                    "reps": metrics.per_rep(figures),
                    "rejections": metrics.rejection_reasons(figures),
                    "overdue": metrics.overdue(figures, now=now, limit=10),
                    # Speed to lead: what breaks this week if nothing is done.
                    "forecast": speed_metrics.forecast(
                        figures, now=now, calendar=calendar_for(), limit=10
                    ),
                    "speed_url": public_url(reverse("sla:speed")),
                    "dashboard_url": public_url(
                        reverse("sla:dashboard") + f"?from={start:%Y-%m-%d}&to={end:%Y-%m-%d}"
                    ),
                }
                subject = _("LeadFlow weekly SLA digest, %(start)s – %(end)s") % {
                    "start": f"{start:%m/%d}",
                    "end": f"{end:%m/%d}",
                }
                body = render_to_string("sla/email/digest.txt", context)
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [manager.email])
        except Exception:
            delivery.delete()
            raise
        DigestDelivery.objects.filter(pk=delivery.pk).update(sent_at=timezone.now())
        sent += 1
    return sent
