from __future__ import annotations

from datetime import timedelta

from django import template
from django.utils.translation import gettext as _

from leadflow.japan import join_words as _join_words
from leadflow.normalize import nfkc, phone_key

register = template.Library()


@register.filter
def minutes(value: timedelta | None) -> int:
    """Whole minutes of a duration, rounded up (a 90-second lockout says 2)."""
    if not isinstance(value, timedelta):
        return 0
    return -(-int(value.total_seconds()) // 60)


@register.filter
def duration(value: timedelta | float | int | None) -> str:
    """A duration as people say it, to the two largest units: 45秒, 12分, 3時間20分,
    2日4時間 (45 s, 12 min, 3 h 20 min, 2 d 4 h). Accepts a timedelta or seconds."""
    if value is None or value == "":
        return "—"
    seconds = int(value.total_seconds() if isinstance(value, timedelta) else float(value))
    seconds = max(0, seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    mins, secs = divmod(rest, 60)
    if days and hours:
        return _("%(d)d d %(h)d h") % {"d": days, "h": hours}
    if days:
        return _("%(d)d d") % {"d": days}
    if hours and mins:
        return _("%(h)d h %(m)d min") % {"h": hours, "m": mins}
    if hours:
        return _("%(h)d h") % {"h": hours}
    if mins:
        return _("%(m)d min") % {"m": mins}
    return _("%(s)d s") % {"s": secs}


@register.filter
def tel_href(phone: str | None) -> str:
    """A `tel:` URI a phone dials: the E.164 form (`+81312345678`) for a number that
    parses, else the digits and a leading + of what was typed (full-width digits too)."""
    text = nfkc(phone or "").strip()
    number = phone_key(text) or "".join(
        ch for i, ch in enumerate(text) if ch.isdigit() or (ch == "+" and i == 0)
    )
    return f"tel:{number}" if number else ""


@register.filter
def join_words(items) -> str:
    """A list joined as the UI language writes lists (、 in Japanese)."""
    return _join_words(items or [])


@register.filter
def get_item(mapping: dict, key: str):
    """`mapping[key]` in a template (None when missing): the dashboard's drill-down keys."""
    return mapping.get(key) if isinstance(mapping, dict) else None
