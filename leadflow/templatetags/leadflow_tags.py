from __future__ import annotations

from datetime import timedelta

from django import template

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
