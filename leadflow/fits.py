"""Whether a value fits the column it is about to be written to, checked before any write.

A value that does not fit used to reach the database and fail the whole transaction
there (`value too long for type character varying(100)`, `integer out of range`, a
UnicodeEncodeError for a lone surrogate, `time zone displacement out of range`): for an
inbound batch that threw away every other item of the body with it. Checked here
first, a value that does not fit is an `InvalidValue` naming its field, and the caller
(one item of a batch, one CSV row) reports it and goes on with the rest.

Limits are read from the model fields themselves, so they cannot drift from the schema.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from typing import Any

from django.db import models
from django.utils.translation import gettext as _

from leadflow.errors import DomainError

# A lone surrogate (JSON's "\ud800" parses into one) is not text: UTF-8 cannot encode it,
# so neither PostgreSQL nor SQLite can store it.
_SURROGATE = re.compile("[\ud800-\udfff]")

# Real UTC offsets run from -12:00 to +14:00 (Pacific/Kiritimati); Python accepts anything
# under 24 h and PostgreSQL up to ±15:59:59. Django hands the aware datetime to the
# driver with its offset, so an offset outside PostgreSQL's range fails the INSERT; one
# beyond ±14:00 is no real place's, only a sender's broken clock.
MAX_UTC_OFFSET = timedelta(hours=14)

# Years an event may have. Python's datetime ends at years 1 and 9999, so
# 0001-01-01T00:00+09:00 or 9999-12-31T23:59-09:00 parse but overflow when converted to
# UTC for the database; nobody's engagement happened outside these anyway.
FIRST_YEAR, LAST_YEAR = 1900, 2100

# PositiveIntegerField and IntegerField: 32-bit on PostgreSQL (SQLite is wider).
MAX_INTEGER = 2**31 - 1


class InvalidValue(DomainError):
    """A value that cannot be stored in its column; `field` names it."""

    code = "invalid_value"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, fields={field: [message]})
        self.field = field


def printable(text: str) -> str:
    """`text` with lone surrogates shown as U+FFFD, so a message quoting a bad value can
    itself be stored and shown."""
    return _SURROGATE.sub("\ufffd", text)


def check_text(field: str, value: str, *, max_length: int | None) -> None:
    if _SURROGATE.search(value):
        raise InvalidValue(
            field, _("contains an invalid character (a lone UTF-16 surrogate such as \\ud800).")
        )
    if max_length is not None and len(value) > max_length:
        raise InvalidValue(
            field,
            _("at most %(limit)d characters (this one has %(length)d).")
            % {"limit": max_length, "length": len(value)},
        )


def check_column(model: type[models.Model], column: str, value: Any, *, field: str = "") -> None:
    """`value` fits `model.column`: a CharField's max_length, an integer field's range."""
    name = field or column
    model_field = model._meta.get_field(column)
    if isinstance(model_field, models.CharField | models.TextField):
        check_text(name, str(value), max_length=model_field.max_length)
    elif isinstance(model_field, models.IntegerField):
        check_integer(name, value)


def check_integer(field: str, value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidValue(field, _("must be a finite number."))
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_INTEGER:
        raise InvalidValue(
            field, _("must be a whole number from 0 to %(max)d.") % {"max": MAX_INTEGER}
        )


def check_json(field: str, value: Any) -> None:
    """Storable in a JSON column: finite numbers (Python's json reads `Infinity` and `NaN`,
    PostgreSQL's jsonb refuses them) and encodable strings, keys included."""
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidValue(field, _("must be a finite number (not Infinity or NaN)."))
    if isinstance(value, str):
        check_text(field, value, max_length=None)
    elif isinstance(value, list):
        for item in value:
            check_json(field, item)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(field, str(key), max_length=None)
            check_json(f"{field}.{printable(str(key))}", item)


def check_moment(field: str, value: datetime) -> None:
    offset = value.utcoffset()
    if offset is not None and abs(offset) > MAX_UTC_OFFSET:
        raise InvalidValue(
            field,
            _("the UTC offset %(offset)s is outside -14:00 … +14:00.")
            % {"offset": value.strftime("%z")},
        )
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise InvalidValue(
            field,
            _("the year must be from %(first)d to %(last)d.")
            % {"first": FIRST_YEAR, "last": LAST_YEAR},
        )
