from __future__ import annotations

from datetime import timedelta

from django import template

register = template.Library()


@register.filter
def minutes(value: timedelta | None) -> int:
    """Whole minutes of a duration, rounded up (a 90-second lockout says 2)."""
    if not isinstance(value, timedelta):
        return 0
    return -(-int(value.total_seconds()) // 60)


@register.filter
def get_item(mapping: dict, key: str):
    """`mapping[key]` in a template (None when missing): the dashboard's drill-down keys."""
    return mapping.get(key) if isinstance(mapping, dict) else None
