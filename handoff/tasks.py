"""Celery tasks of the handoff app: thin, idempotent, each calls one service."""

from __future__ import annotations

from celery import Task, shared_task
from celery.utils.time import get_exponential_backoff_interval

from handoff import notifications, replay, routing, waves
from handoff.models import HandoffStatus, Team


@shared_task(
    acks_late=True,
    autoretry_for=(OSError,),  # SMTP and HTTP failures; smtplib and urllib errors are OSErrors
    retry_backoff=True,
    max_retries=6,
)
def notify_assignment_task(assignment_id: int) -> dict[str, bool]:
    return notifications.assignment_notify(assignment_id=assignment_id)


@shared_task(bind=True, acks_late=True, max_retries=6)
def notify_assignments_task(self: Task, assignment_ids: list[int]) -> int:
    """A bulk move's assignments, a chunk per task (handoff.bulk); returns how many ids
    this run handled (sent now, sent before, or given up and logged). Not
    `autoretry_for`: one rep's refused address would send the whole chunk again and,
    after the last retry, leave the others unnotified. Only the ids whose sending failed
    go to the retry, as a task of their own."""
    failed, error = notifications.assignments_notify(assignment_ids=assignment_ids)
    if failed:
        countdown = get_exponential_backoff_interval(
            factor=1, retries=self.request.retries, maximum=600, full_jitter=True
        )
        raise self.retry(args=(failed,), exc=error, countdown=countdown)
    return len(assignment_ids)


@shared_task(acks_late=True)
def assign_from_queue_task(team_id: int) -> int:
    team = Team.objects.filter(pk=team_id).first()
    if team is None:
        return 0
    return len(routing.handoff_assign_from_queue(team=team))


@shared_task(acks_late=True)
def assign_all_queues_task() -> int:
    """Periodic: reps come back from being away by the clock, with no event to react to."""
    team_ids = (
        Team.objects.filter(handoffs__status=HandoffStatus.OPEN, handoffs__assigned_to__isnull=True)
        .values_list("pk", flat=True)
        .distinct()
    )
    return sum(assign_from_queue_task(team_id) for team_id in team_ids)


@shared_task(
    acks_late=True,
    autoretry_for=(OSError,),  # SMTP and HTTP failures, as for notify_assignment_task
    retry_backoff=True,
    max_retries=6,
)
def notify_queued_task(notice_id: int) -> dict[str, bool]:
    return notifications.queue_notice_notify(notice_id=notice_id)


@shared_task(acks_late=True)
def replay_run_task(run_id: int) -> bool:
    """Replay a draft routing plan (handoff.replay); safe to deliver twice."""
    return replay.replay_run_execute(run_id=run_id)


@shared_task(acks_late=True)
def release_from_wave_task(handoff_id: int, event_id: int) -> bool:
    """A held MQL whose lead raised its hand (handoff.waves); a second run finds it
    released and does nothing. True when this run released it."""
    return waves.handoff_release_from_wave(handoff_id=handoff_id, event_id=event_id) is not None
