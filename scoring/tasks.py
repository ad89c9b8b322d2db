"""Celery tasks of the scoring app: thin, idempotent, enqueued after commit."""

from __future__ import annotations

from celery import shared_task

from scoring import services

# Each task run scores batches for about this long, then hands over to a fresh task, so
# a rescore of millions of leads never meets the worker's hard time limit and other
# queued work gets a turn in between.
TIME_BUDGET_SECONDS = 60.0


@shared_task(acks_late=True)
def rescore_run_task(run_id: int) -> None:
    """Continue a bulk rescore from its cursor; re-enqueue itself while work remains.

    Safe to deliver twice: batches lock the run row and resume from its cursor."""
    if services.rescore_run_step(run_id=run_id, time_budget=TIME_BUDGET_SECONDS):
        # Outside any transaction here: every batch has committed.
        rescore_run_task.delay(run_id)


@shared_task(acks_late=True)
def preview_run_task(run_id: int) -> None:
    """Continue a draft's preview job from its cursor; re-enqueue itself while work
    remains. Safe to deliver twice: each batch locks the run and moves its cursor."""
    if services.preview_run_step(run_id=run_id, time_budget=TIME_BUDGET_SECONDS):
        preview_run_task.delay(run_id)
