"""Serializer fields shared by the API."""

from __future__ import annotations

from datetime import datetime

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from leadflow.datetimes import DATETIME_SCHEMA, datetime_problem


@extend_schema_field(DATETIME_SCHEMA)
class DateTimeField(serializers.DateTimeField):
    """DRF's DateTimeField, answering 400 for what leadflow.datetimes refuses (times near
    the ends of the calendar, offsets PostgreSQL cannot store) instead of a 500."""

    def enforce_timezone(self, value: datetime) -> datetime:
        # Checked before DRF converts: a year-1 time overflows in the conversion itself.
        problem = datetime_problem(value)
        if problem:
            raise serializers.ValidationError(problem, code="invalid")
        try:
            return super().enforce_timezone(value)
        except OverflowError:
            self.fail("overflow")
            raise  # unreachable: fail() raises; keeps type checkers content
