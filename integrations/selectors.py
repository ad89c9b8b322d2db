"""Reads of the intake side."""

from __future__ import annotations

from integrations.models import Source


def source_by_slug(*, slug: str) -> Source | None:
    return Source.objects.filter(slug=slug).first()
