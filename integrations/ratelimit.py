"""Fixed-window request counting in Django's cache.

With REDIS_URL set the cache is Redis, so every gunicorn worker counts into the same
key; with the local-memory cache (no Redis) each process counts alone, which is what a
single-process development server needs.
"""

from __future__ import annotations

import math
import time

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

WINDOW_SECONDS = 60


def _count(key: str, ttl: int) -> int:
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        # One round trip instead of Django's add / exists / incr (three, each building a
        # client): INCR creates the key at 1, EXPIRE NX sets the window's end only once.
        cache_key = cache.make_and_validate_key(key)
        client = cache._cache.get_client(cache_key, write=True)
        pipe = client.pipeline(transaction=False)
        pipe.incr(cache_key)
        pipe.expire(cache_key, ttl, nx=True)
        return int(pipe.execute()[0])
    # add() is atomic (SET NX), incr() is atomic; between them no request is lost.
    if cache.add(key, 1, timeout=ttl):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=ttl)
        return 1


def rate_limit_hit(
    key: str, limit: int, *, window: int = WINDOW_SECONDS, now: float | None = None
) -> int:
    """Count one request; 0 when it is within `limit` per window, otherwise the seconds
    until the window ends (for Retry-After). A limit of 0 means no limit."""
    if limit <= 0:
        return 0
    current = time.time() if now is None else now
    window_start = int(current // window) * window
    count = _count(f"ratelimit:{key}:{window_start}", window + 5)
    if count <= limit:
        return 0
    return max(1, math.ceil(window_start + window - current))
