from __future__ import annotations

from datetime import timedelta

from django import template
from django.utils.translation import gettext as _

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
