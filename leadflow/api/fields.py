"""Serializer fields shared by the API."""

from __future__ import annotations

from datetime import datetime

from rest_framework import serializers

# Years an input time may have. Python's datetime ends at years 1 and 9999: a time near
# either end parses, then overflows when it is converted to another zone (DRF's own
# time-zone check for naive input, every comparison with now, the database's UTC), and
# 9999-12-31T23:59-09:00 would be stored as year 10000, which no later read can load.
FIRST_YEAR, LAST_YEAR = 1900, 2099


class DateTimeField(serializers.DateTimeField):
    """DRF's DateTimeField, answering 400 ("Datetime value out of range.") for times near
    the ends of the calendar instead of raising OverflowError (a 500)."""

    def enforce_timezone(self, value: datetime) -> datetime:
        if not FIRST_YEAR <= value.year <= LAST_YEAR:
            self.fail("overflow")
        try:
            return super().enforce_timezone(value)
        except OverflowError:
            self.fail("overflow")
            raise  # unreachable: fail() raises; keeps type checkers content
