"""The worker keeps its database connection between tasks, as CONN_MAX_AGE says."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from celery.fixups.django import DjangoWorkerFixup
from celery.signals import task_postrun, task_prerun
from django.db import connection

from leadflow.celery import app

# The SQLite test database lives in memory, and Django never closes such a connection.
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


class FakeTask:
    def __init__(self, *, eager: bool) -> None:
        self.request = SimpleNamespace(is_eager=eager)


def a_task(*, eager: bool) -> FakeTask:
    return FakeTask(eager=eager)


def run_a_task(task: FakeTask) -> None:
    """What a worker does around every task: Celery's Django fix-up, then our signals."""
    fixup = DjangoWorkerFixup(app)
    fixup.on_task_prerun(task)
    task_prerun.send(sender=task, task_id="t", task=task)
    fixup.on_task_postrun(task)
    task_postrun.send(sender=task, task_id="t", task=task)


def test_a_connection_younger_than_its_max_age_is_kept_across_tasks():
    connection.ensure_connection()
    raw = connection.connection
    connection.close_at = time.monotonic() + 60

    run_a_task(a_task(eager=False))
    run_a_task(a_task(eager=False))

    assert connection.connection is raw


def test_a_connection_past_its_max_age_is_closed_after_a_task():
    connection.ensure_connection()
    connection.close_at = time.monotonic() - 1

    task_postrun.send(sender=None, task_id="t", task=a_task(eager=False))

    assert connection.connection is None


def test_an_eager_task_leaves_the_callers_connection_alone():
    connection.ensure_connection()
    raw = connection.connection
    connection.close_at = time.monotonic() - 1  # obsolete, but the caller owns it

    task_postrun.send(sender=None, task_id="t", task=a_task(eager=True))

    assert connection.connection is raw
