"""Readiness checks shared by /readyz and `manage.py beat_health`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from leadflow.models import Heartbeat

BEAT = "beat"

# When this process started. A fresh install has no tick yet: readiness waits for one
# for BEAT_STALE_SECONDS after the web process started (beat's first tick comes seconds
# after it starts), then fails like a stale one. A tick that is there is judged by its age
# alone, so restarting the web process never hides a beat that died.
_PROCESS_STARTED = time.monotonic()


@dataclass(frozen=True)
class BeatCheck:
    ok: bool
    status: str  # "ok", "waiting for the first tick", "stale: ...", "error: ..."
    age_seconds: float | None  # of the last tick; None when there is none


def beat_check(
    *,
    now: datetime | None = None,
    process_started: float | None = None,
    wait_for_first_tick: bool = True,
) -> BeatCheck:
    """Has a periodic task run within BEAT_STALE_SECONDS? (beat, the broker and the worker
    of the default queue are all needed for that). Without `wait_for_first_tick`, no tick
    at all is a failure at once (a health check with its own start period)."""
    limit = settings.BEAT_STALE_SECONDS
    try:
        beat_at = Heartbeat.objects.filter(name=BEAT).values_list("beat_at", flat=True).first()
    except DatabaseError as error:
        return BeatCheck(False, f"error: {error.__class__.__name__}", None)
    if beat_at is None:
        if not wait_for_first_tick:
            return BeatCheck(False, "stale: no tick recorded yet", None)
        started = _PROCESS_STARTED if process_started is None else process_started
        if time.monotonic() - started <= limit:
            return BeatCheck(True, "waiting for the first tick", None)
        return BeatCheck(False, f"stale: no tick in the {limit} s since this process started", None)
    age = max(0.0, ((now or timezone.now()) - beat_at).total_seconds())
    if age > limit:
        return BeatCheck(False, f"stale: last tick {age:.0f} s ago (limit {limit} s)", age)
    return BeatCheck(True, "ok", age)
