"""Notifications sent at most once, and the Slack-compatible webhook they may go to.

Shared by handoff (assignments, queued MQLs) and sla (reminders, escalations): each row
that a notification is about carries a "sent at" field per channel, and that field is the
claim.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable

from django.conf import settings
from django.db import models
from django.utils import timezone


def public_url(path: str) -> str:
    """An absolute link for an e-mail or a chat message (no request to take the host from)."""
    return settings.PUBLIC_BASE_URL.rstrip("/") + path


def send_once(model: type[models.Model], pk: int, field: str, send: Callable[[], object]) -> bool:
    """Call `send` unless `field` of row `pk` says it was sent; True if it was sent now.

    A conditional UPDATE is the claim: of two workers running the same task, one wins.
    Claimed before sending, released if sending fails (the task retries), so a message
    goes out at most once per row (a worker killed mid-send loses that one message).
    Runs outside any transaction: the claim must be visible before the network call.
    """
    rows = model._default_manager.filter(pk=pk, **{f"{field}__isnull": True})
    if rows.update(**{field: timezone.now()}) != 1:
        return False
    try:
        send()
    except Exception:
        model._default_manager.filter(pk=pk).update(**{field: None})
        raise
    return True


def post_webhook(url: str, text: str) -> None:
    """POST {"text": ...} to a Slack-compatible incoming webhook (never in a transaction)."""
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked (http/https) in settings
        url,
        data=json.dumps({"text": text}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        response.read()
