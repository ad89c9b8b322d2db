"""Reads of the intake side."""

from __future__ import annotations

import time

from integrations.models import Source

# The intake view looks its source up on every request; a few seconds of in-process
# caching saves a database round trip per webhook. Source.save()/delete() clear it in
# the process that made the change; other web workers see a change (disabling, a new
# secret) within SOURCE_CACHE_SECONDS.
SOURCE_CACHE_SECONDS = 5.0
_sources: dict[str, tuple[float, Source | None]] = {}


def source_by_slug(*, slug: str) -> Source | None:
    now = time.monotonic()
    cached = _sources.get(slug)
    if cached is not None and now - cached[0] < SOURCE_CACHE_SECONDS:
        return cached[1]
    source = Source.objects.filter(slug=slug).first()
    if len(_sources) > 1000:  # slugs come from URLs: keep a flood of unknown ones bounded
        _sources.clear()
    _sources[slug] = (now, source)
    return source


def forget_sources() -> None:
    _sources.clear()
