"""Domain errors. Views and the API map them to a form error or the one JSON error shape."""

from __future__ import annotations


class DomainError(Exception):
    """A business rule said no. `code` is stable for API clients; `message` is for people."""

    code = "domain_error"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, fields=None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.fields = fields or {}


class InvalidTransition(DomainError):
    code = "invalid_transition"
    status = 409


class NotFound(DomainError):
    code = "not_found"
    status = 404
