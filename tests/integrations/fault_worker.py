"""A real Celery worker (or beat) for the fault tests, with an optional way to stall it.

    python -m tests.integrations.fault_worker [celery worker options]
    python -m tests.integrations.fault_worker beat [celery beat options]

With FAULT_HANG_DIR set, the first inbound event this worker processes stalls *inside*
its transaction (every row written, nothing committed) after writing the pool process's
pid to FAULT_HANG_DIR/inbound-started, so a test can SIGKILL it exactly there. A later
process (the redelivery) finds the file and processes normally.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import django

# Import this checkout's code only: an editable install of another checkout in a shared
# virtualenv would otherwise supply modules this one lacks (its finder comes after
# sys.path, so it only answers for what is missing here, e.g. another branch's tasks).
sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")]

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
django.setup()

hang_dir = os.environ.get("FAULT_HANG_DIR")
if hang_dir:
    from integrations import services

    _process_locked = services._process_locked

    def _stalling(inbound):  # type: ignore[no-untyped-def]
        _process_locked(inbound)
        started = Path(hang_dir) / "inbound-started"
        if started.exists():
            return
        # Only one process stalls, though two may get here at once: a hard link is
        # created whole or not at all (and the file it names already holds the pid).
        mine = started.with_name(f"inbound-started.{os.getpid()}")
        mine.write_text(str(os.getpid()))
        try:
            os.link(mine, started)
        except FileExistsError:
            return
        time.sleep(300)  # the test kills this process here

    services._process_locked = _stalling

from leadflow.celery import app  # noqa: E402

if sys.argv[1:2] == ["beat"]:
    app.start(sys.argv[1:])
else:
    app.worker_main(["worker", *sys.argv[1:]])
