"""Each kind of work has its own Celery queue, so one cannot starve another."""

import importlib

import pytest
from django.apps import apps
from django.conf import settings

from leadflow.celery import app

# Every app's tasks.py, as a worker's autodiscovery loads them (only those of this
# checkout: a shared editable install may make another checkout's modules importable).
for config in apps.get_app_configs():
    if (settings.BASE_DIR / config.name / "tasks.py").exists():
        importlib.import_module(f"{config.name}.tasks")


def _queue(task_name: str) -> str:
    return app.amqp.router.route({}, task_name)["queue"].name


@pytest.mark.parametrize(
    "task, queue",
    [
        ("integrations.process_inbound_event", "intake"),
        ("integrations.requeue_stale_inbound_events", "intake"),
        ("integrations.prune_inbound_payloads", "intake"),
        ("scoring.tasks.rescore_run_task", "scoring"),
        ("integrations.outbound.deliver_due", "delivery"),
        ("sla.tasks.sweep_breaches", "sla"),  # the SLA app's tasks, by their module name
        ("handoff.tasks.notify_assignment_task", "celery"),
        ("leadflow.tasks.duplicates_detect_task", "celery"),
        ("some.future.task", "celery"),  # unknown: the default queue
    ],
)
def test_tasks_are_routed_by_name(task, queue):
    assert _queue(task) == queue


def test_every_registered_task_lands_on_a_declared_queue():
    declared = {queue.name for queue in settings.CELERY_TASK_QUEUES}
    assert declared == {"celery", "intake", "scoring", "delivery", "sla"}
    ours = [name for name in app.tasks if not name.startswith("celery.")]
    assert ours, "no task was registered"
    assert {name: _queue(name) for name in ours if _queue(name) not in declared} == {}


def test_a_killed_task_is_redelivered_and_workers_take_one_at_a_time():
    # acks late + reject on worker lost: the message stays on the broker until the task
    # finished, and goes back to the queue when the process running it dies.
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.task_time_limit == 300
    assert app.conf.task_soft_time_limit == 240


def test_the_local_worker_consumes_every_queue():
    procfile = (settings.BASE_DIR / "Procfile.dev").read_text()
    worker = next(line for line in procfile.splitlines() if line.startswith("worker:"))
    queues = worker.split("-Q", 1)[1].split()[0].split(",")
    assert sorted(queues) == sorted(q.name for q in settings.CELERY_TASK_QUEUES)
