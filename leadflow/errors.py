"""Domain errors. Views and the API map them to a form error or the one JSON error shape.

The API's statuses (README, "API"): a request that is well formed and valid by the schema
but refused by a business rule is a 422 (RFC 9110 "Unprocessable Content": a rejection
without a comment, too few BANT answers, a closed handoff, a stage that cannot follow);
400 stays for malformed input, which the schema itself calls invalid (parse errors,
wrong types, values outside the bounds it states). A client can then tell "fix the
request" from "the request is fine, the answer is no".
"""

from __future__ import annotations


class DomainError(Exception):
    """A business rule said no. `code` is stable for API clients; `message` is for people."""

    code = "domain_error"
    status = 422

    def __init__(self, message: str, *, code: str | None = None, fields=None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.fields = fields or {}


class MalformedInput(DomainError):
    """Input the schema itself refuses, found where a service reads it (a query string
    read by a form rather than a serializer): 400 like a serializer's refusal."""

    status = 400


class InvalidTransition(DomainError):
    # A business rule like the others (a 422), not a 409: nothing the client could change
    # by retrying or re-reading makes "won" follow a lead nobody accepted.
    code = "invalid_transition"


class NotFound(DomainError):
    code = "not_found"
    status = 404
