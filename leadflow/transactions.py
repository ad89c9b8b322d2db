"""Enqueueing Celery tasks after the surrounding transaction commits: the one way to do it.

Never talk to the broker (or anything else on the network) inside a transaction: a rollback
would leave a task pointing at rows that do not exist, and a slow broker would hold row
locks. Outside a transaction ``on_commit`` runs the call at once.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction


def enqueue_on_commit(task: Any, *args: Any, robust: bool = False, **options: Any) -> None:
    """Send ``task`` with ``args`` once the current transaction commits.

    ``options`` go to ``apply_async`` (``expires``, ``countdown`` …). ``robust=True`` is for
    latency hints that the beat sweep backs up (an outbox kick): a broker that is down then
    logs an error instead of failing the commit's caller.
    """
    transaction.on_commit(lambda: task.apply_async(args=args, **options), robust=robust)
