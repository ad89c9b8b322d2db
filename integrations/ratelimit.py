"""Fixed-window request counting in Django's cache.

With REDIS_URL set the cache is Redis, so every gunicorn worker counts into the same
key; with the local-memory cache (no Redis) each process counts alone, which is what a
single-process development server needs.
"""

from __future__ import annotations

import math
import time

from django.core.cache import cache

WINDOW_SECONDS = 60


def rate_limit_hit(
    key: str, limit: int, *, window: int = WINDOW_SECONDS, now: float | None = None
) -> int:
    """Count one request; 0 when it is within `limit` per window, otherwise the seconds
    until the window ends (for Retry-After). A limit of 0 means no limit."""
    if limit <= 0:
        return 0
    current = time.time() if now is None else now
    window_start = int(current // window) * window
    cache_key = f"ratelimit:{key}:{window_start}"
    # add() is atomic (SET NX); incr() is atomic (INCR). Between them no request is lost.
    if cache.add(cache_key, 1, timeout=window + 5):
        count = 1
    else:
        try:
            count = cache.incr(cache_key)
        except ValueError:  # expired between add and incr
            cache.add(cache_key, 1, timeout=window + 5)
            count = 1
    if count <= limit:
        return 0
    return max(1, math.ceil(window_start + window - current))
