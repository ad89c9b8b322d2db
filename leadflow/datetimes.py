"""The one check of every date and time LeadFlow accepts from outside (API filters and
bodies, page forms, SFA feedback), and the schema that documents it.

Python parses what ISO 8601 allows: years 1 to 9999 and UTC offsets up to ±23:59. Neither
end fits the rest of the stack. A time near the calendar's ends overflows when it is
converted to another zone (DRF's own check for naive input, comparisons with now, the
database's UTC), and 9999-12-31T23:59-09:00 would be stored as year 10000, which no later
read can load. PostgreSQL's timestamptz refuses offsets beyond ±15:59 ("time zone
displacement out of range", a DataError: a 500 for ?created_before=…+20:00). So a time
is checked here, where it comes in, and refused with the field named.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils.translation import gettext as _

FIRST_YEAR, LAST_YEAR = 1900, 2099
# PostgreSQL keeps offsets of less than 16 hours; the world uses -12:00 to +14:00.
MAX_OFFSET = timedelta(hours=15, minutes=59, seconds=59)

# What an API client may send, as OpenAPI says it: RFC 3339 with the same bounds, so
# clients (and the schemathesis run in CI) know that +20:00 or the year 2500 is refused.
DATETIME_SCHEMA = {
    "type": "string",
    "format": "date-time",
    "pattern": r"^(19|20)[0-9]{2}-.*([Zz]|[+-](0[0-9]|1[0-5]):[0-5][0-9])$",
    "example": "2026-12-01T18:00:00+09:00",
}


def datetime_problem(value: datetime, *, years: bool = True) -> str | None:
    """Why this parsed time cannot be accepted, or None when it can. `years=False` for a
    caller whose service says more precisely what is wrong with the year ("must be in the
    future"), where nothing before it can overflow."""
    if years and not FIRST_YEAR <= value.year <= LAST_YEAR:
        return _("Datetime value out of range.")  # DRF's words, as the API said before
    offset = value.utcoffset()
    if offset is not None and abs(offset) > MAX_OFFSET:
        return _("The UTC offset must be between -15:59 and +15:59.")
    return None
