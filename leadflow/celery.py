"""The Celery app. Tasks live in each app's tasks.py and are found by autodiscovery."""

import logging
import os

from celery import Celery
from celery.signals import beat_init, task_postrun, task_prerun
from kombu.exceptions import ChannelError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadflow.settings")

app = Celery("leadflow")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger(__name__)


@app.on_after_configure.connect
def _make_broker_folders(sender: Celery, **kwargs) -> None:
    # kombu's filesystem transport expects its folders to exist; create them on first use.
    from pathlib import Path

    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        folder = sender.conf.broker_transport_options.get(key)
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)


# Database connections in the worker follow the same rules as in the web process:
# CONN_MAX_AGE and CONN_HEALTH_CHECKS (settings.py). Celery's Django fix-up would
# otherwise close every connection before and after every task (CELERY_DB_REUSE_MAX
# lifts that), and each task would pay for a new PostgreSQL backend: about a tenth of
# an inbound task's time at 50 webhooks/s. Eager tasks run inside the caller's
# transaction (tests) and must not touch its connection.
@task_prerun.connect
@task_postrun.connect
def _recycle_old_connections(sender=None, task=None, **kwargs) -> None:
    request = getattr(task, "request", None)
    if getattr(request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


def broker_queue_length(name: str) -> int | None:
    """Messages waiting in queue `name` (not those a worker holds), or None when the broker
    cannot say. Redis, the filesystem and the memory broker all answer a passive declare."""
    try:
        with app.connection_for_read() as connection:
            # Once, not kombu's default of retrying for as long as the broker is away.
            connection.ensure_connection(max_retries=1)
            channel = connection.default_channel
            if connection.transport.driver_type == "redis":
                # The lengths of the queue's lists (every priority), through the client
                # that applies the transport's global_keyprefix. A passive declare looks
                # for the queue's binding instead, which that prefix hides (kombu 5):
                # with a prefix, every queue read as empty.
                return int(channel._size(name))
            return channel.queue_declare(queue=name, passive=True).message_count
    except ChannelError:
        # Redis drops an empty list, and with it the queue: nothing is waiting.
        return 0
    except Exception:
        logger.warning("Could not read the length of queue %s", name, exc_info=True)
        return None


@beat_init.connect
def _first_heartbeat(sender, **kwargs) -> None:
    # A (re)started beat says so at once instead of one interval later, so /readyz turns
    # ok again within seconds of a restart. Its schedule sends the next ones.
    from django.conf import settings

    try:
        app.send_task("leadflow.beat_heartbeat", expires=float(settings.BEAT_HEARTBEAT_SECONDS))
    except Exception:
        logger.warning("Could not send beat's first heartbeat", exc_info=True)
