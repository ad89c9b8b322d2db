"""LeadFlow's own request signature, for every sender and receiver that is not a vendor.

    X-LeadFlow-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>

Generic intake sources verify it; outbound webhooks and the SFA feedback endpoint sign
and verify with the same two functions, so there is one scheme to document and test.
The timestamp is inside the MAC, so a captured request cannot be replayed after the
window; several `v1=` parts may be sent (one per secret) while a secret is rotated.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable

HEADER = "X-LeadFlow-Signature"
TOLERANCE_SECONDS = 300


class SignatureError(Exception):
    """The request is not authentic. `code` is `missing_signature` or `bad_signature`."""

    def __init__(self, message: str, *, code: str = "bad_signature") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _mac(secret: str, body: bytes, timestamp: int) -> str:
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The X-LeadFlow-Signature header value for `body` (now, unless a time is given)."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={ts},v1={_mac(secret, body, ts)}"


def parse_header(header: str) -> tuple[int, list[str]]:
    """`t=…,v1=…[,v1=…]` → (timestamp, signatures). Raises SignatureError if malformed."""
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError("The signature timestamp is not a number.") from None
        elif key == "v1":
            signatures.append(value.strip().lower())
    if timestamp is None or not signatures:
        raise SignatureError(f"{HEADER} must look like t=<unix seconds>,v1=<hex HMAC-SHA256>.")
    return timestamp, signatures


def verify(
    secrets: str | Iterable[str],
    body: bytes,
    header: str | None,
    *,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> int:
    """Check a signature header against one or more secrets; returns the signed timestamp.

    Raises SignatureError when the header is missing or malformed, the timestamp is more
    than `tolerance` seconds from now (either way: clocks drift, replays are old), or no
    secret produces any of the given MACs. Comparison is constant-time.
    """
    if not header:
        raise SignatureError(f"The {HEADER} header is missing.", code="missing_signature")
    timestamp, signatures = parse_header(header)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureError(
            f"The signature timestamp is more than {tolerance} seconds away from our clock."
        )
    keys = [secrets] if isinstance(secrets, str) else [s for s in secrets if s]
    matched = False
    for key in keys:
        expected = _mac(key, body, timestamp)
        for given in signatures:
            # No early exit: every candidate is compared, so timing says nothing.
            matched |= hmac.compare_digest(expected, given)
    if not matched:
        raise SignatureError("The signature does not match the body.")
    return timestamp
