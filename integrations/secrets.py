"""Credentials are write-only once stored: set or generated, shown once, then at most the
last four characters. Everything that shows a stored secret or a header that carries one
(the admin, exports) goes through here."""

from __future__ import annotations

import secrets as _random
from collections.abc import Mapping
from typing import Any

VISIBLE = 4
MASK = "••••••"
# Headers that carry a secret or a MAC made with one. Marketo's X-LeadFlow-Token is the
# secret itself; signatures are kept for audits but are nobody's business to read.
SENSITIVE_HEADER_PARTS = ("signature", "token", "authorization", "cookie", "secret", "api-key")


def secret_masked(value: str) -> str:
    """ "••••••a1b2" for a secret, "" for none. Short secrets show no characters at all:
    four of six would give most of it away."""
    if not value:
        return ""
    return MASK + (value[-VISIBLE:] if len(value) >= 4 * VISIBLE else "")


def secret_generate() -> str:
    return _random.token_urlsafe(32)


def headers_redacted(headers: Mapping[str, Any] | None) -> dict[str, Any]:
    """Stored request headers with every secret-bearing value masked."""
    return {
        name: secret_masked(str(value))
        if any(part in name.lower() for part in SENSITIVE_HEADER_PARTS)
        else value
        for name, value in (headers or {}).items()
    }
