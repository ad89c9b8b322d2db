"""Serializer fields shared by the API."""

from __future__ import annotations

from datetime import datetime

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.utils import html

from leadflow.datetimes import DATETIME_SCHEMA, datetime_problem


@extend_schema_field(DATETIME_SCHEMA)
class DateTimeField(serializers.DateTimeField):
    """DRF's DateTimeField, answering 400 for what leadflow.datetimes refuses (times near
    the ends of the calendar, offsets PostgreSQL cannot store) instead of a 500.

    An empty string is not a time in a form or multipart body either: DRF reads `""` there
    as null for a nullable field, so `away_until=""` came back "until set back" where
    the same value in JSON is a 400, and the schema (a pattern "" does not match) calls
    it invalid. Null is written by leaving the field out (or `null` in JSON)."""

    def get_value(self, dictionary):
        if html.is_html_input(dictionary) and dictionary.get(self.field_name) == "":
            return ""  # to_internal_value refuses it, as for JSON
        return super().get_value(dictionary)

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
