"""LeadFlow's own signature scheme, used both ways: our generic intake and SFA feedback
verify it, our outbound webhooks send it.

    X-LeadFlow-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>

The timestamp is inside the MAC so a captured request cannot be replayed after the
window (5 minutes by default). Two secrets may be valid at once so a secret can be
rotated without dropping requests: the receiver accepts either while senders switch.
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-LeadFlow-Signature"
MAX_SECRETS = 2


def _mac(secret: str, body: bytes, timestamp: int) -> str:
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign_header(secret: str, body: bytes, timestamp: int) -> str:
    """The header value for `body` sent at `timestamp` (unix seconds)."""
    return f"t={timestamp},v1={_mac(secret, body, timestamp)}"


def _parse(header: str) -> tuple[int | None, list[str]]:
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
                return None, []
        elif key == "v1":
            signatures.append(value)
    return timestamp, signatures


def verify_header(
    *, secrets: list[str], body: bytes, header: str, now: int, tolerance: int = 300
) -> bool:
    """True if `header` signs `body` with one of `secrets` within `tolerance` seconds of now.

    Empty secrets are ignored (a destination without a second secret passes ""), so an
    unconfigured secret can never verify anything.
    """
    usable = [secret for secret in secrets if secret]
    if len(usable) > MAX_SECRETS:
        raise ValueError(f"At most {MAX_SECRETS} secrets may be valid at once.")
    timestamp, signatures = _parse(header or "")
    if timestamp is None or not signatures or not usable:
        return False
    if abs(now - timestamp) > tolerance:
        return False
    matched = False
    # Compare against every candidate without returning early, so timing does not tell
    # which secret or which signature almost matched.
    for secret in usable:
        expected = _mac(secret, body, timestamp)
        for candidate in signatures:
            if hmac.compare_digest(expected, candidate):
                matched = True
    return matched
