"""A destination's cached OAuth token: the one write a connector asks for.

Its own module so that a connector (Salesforce) can store a token without importing the
delivery code, which reaches every connector through the registry."""

from __future__ import annotations

from datetime import datetime

from integrations.outbound.models import Destination


def destination_token_store(*, destination: Destination, token: str, at: datetime) -> None:
    """Cache a fresh OAuth token on the destination (one UPDATE, no long transaction)."""
    Destination.objects.filter(pk=destination.pk).update(access_token=token, access_token_at=at)
    destination.access_token = token
    destination.access_token_at = at
