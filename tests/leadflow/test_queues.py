"""Each kind of work has its own Celery queue, so one cannot starve another."""

import importlib
import uuid

import pytest
from django.apps import apps
from django.conf import settings
from kombu import Queue

from leadflow.celery import app, broker_queue_length

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
        # Beside the light work: an intake flood must not make beat look dead.
        ("leadflow.beat_heartbeat", "celery"),
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


def test_beat_runs_as_its_own_local_process_not_inside_the_worker():
    # honcho stops make run when any process ends: a dead beat is seen, not silent.
    procfile = dict(
        line.split(": ", 1)
        for line in (settings.BASE_DIR / "Procfile.dev").read_text().splitlines()
    )
    assert set(procfile) == {"web", "worker", "beat"}
    assert "--beat" not in procfile["worker"].split()
    assert procfile["beat"] == ".venv/bin/celery -A leadflow beat --loglevel WARNING"


def test_beat_sends_the_heartbeat_and_the_sweeps_often_enough_for_two_minutes():
    schedule = settings.CELERY_BEAT_SCHEDULE
    heartbeat = schedule["leadflow-beat-heartbeat"]
    assert (heartbeat["task"], heartbeat["schedule"]) == ("leadflow.beat_heartbeat", 30.0)
    assert heartbeat["options"] == {"expires": 30.0}
    requeue = schedule["integrations-requeue-stale-inbound"]
    assert (requeue["task"], requeue["schedule"]) == (
        "integrations.requeue_stale_inbound_events",
        30.0,
    )
    assert requeue["options"] == {"expires": 30.0}
    # A lost intake message waits at most lease + one sweep interval.
    assert settings.INBOUND_REQUEUE_LEASE_SECONDS + requeue["schedule"] <= 90


def test_the_queue_length_counts_messages_waiting_and_zero_for_an_unknown_queue():
    name = f"test-length-{uuid.uuid4().hex[:8]}"
    queue = Queue(name, routing_key=name)
    with app.connection_for_write() as connection:
        producer = connection.Producer()
        for n in range(2):
            producer.publish({"n": n}, routing_key=name, declare=[queue], serializer="json")
    try:
        assert broker_queue_length(name) == 2
        assert broker_queue_length(f"{name}-nobody") == 0
    finally:
        with app.connection_for_write() as connection:
            queue.bind(connection.default_channel).delete()


def test_the_queue_length_is_unknown_when_the_broker_does_not_answer(monkeypatch):
    def down():
        raise ConnectionRefusedError("[Errno 111] Connection refused")

    monkeypatch.setattr(app, "connection_for_read", down)
    assert broker_queue_length("intake") is None
