"""Celery tasks of the SLA app: thin, idempotent, each calls one service."""

from __future__ import annotations

from celery import shared_task

from handoff import claims, waves
from sla import services
from sla.kpis import days


@shared_task(acks_late=True)
def sweep_task() -> dict[str, int]:
    """Every minute from beat (two beats are harmless: the claims do not overlap). While a
    batch comes back full, it enqueues itself again instead of waiting for the next beat."""
    result = services.timers_sweep()
    # Claim or pass on (#19): unclaimed assignments pass to the next rep, in the same beat.
    claimed = claims.claims_sweep()
    # A wave's held MQL whose lead raised its hand and whose release was lost (#17).
    released = waves.held_hand_raisers_release()
    if result.more or claimed.more or len(released) == waves.RELEASE_SWEEP_BATCH:
        sweep_task.delay()
    return {
        "breached": len(result.breached),
        "reminded": len(result.reminded),
        "retried": len(result.retried),
        "passed": len(claimed.passed),
        "queued": len(claimed.queued),
        "released": len(released),
    }


@shared_task(acks_late=True)
def escalate_timers_task(timer_ids: list[int]) -> int:
    return sum(services.timer_escalate(timer_id=timer_id) for timer_id in timer_ids)


@shared_task(
    acks_late=True,
    autoretry_for=(OSError,),  # SMTP and HTTP failures; smtplib and urllib errors are OSErrors
    retry_backoff=True,
    max_retries=6,
)
def escalation_notify_task(timer_id: int) -> dict[str, bool]:
    return services.escalation_notify(timer_id=timer_id)


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=6)
def remind_timers_task(timer_ids: list[int]) -> int:
    return sum(services.reminder_notify(timer_id=timer_id) for timer_id in timer_ids)


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=3)
def weekly_digest_task() -> int:
    return services.digest_send_weekly()


@shared_task(acks_late=True)
def kpi_refresh_task() -> int:
    """Every minute from beat: recompute the dashboard's stale days. While days remain, it
    enqueues itself again (a nightly rebuild marks a year of days)."""
    result = days.kpi_days_refresh()
    if result.more and not result.skipped:
        kpi_refresh_task.delay()
    return len(result.days)


@shared_task(acks_late=True)
def kpi_rebuild_task() -> int:
    """Nightly: every day with MQLs is recomputed (lead edits after the MQL are caught)."""
    marked = days.kpi_days_rebuild()
    kpi_refresh_task.delay()
    return marked
