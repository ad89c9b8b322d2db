"""The Celery app. Tasks live in each app's tasks.py and are found by autodiscovery."""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadflow.settings")

app = Celery("leadflow")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


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
