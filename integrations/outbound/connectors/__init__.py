"""One module per kind of destination, registered here by kind."""

from __future__ import annotations

from integrations.outbound.connectors import hubspot, salesforce, webhook
from integrations.outbound.connectors.base import (
    Connector,
    DeliveryError,
    DeliveryResult,
)

CONNECTORS: dict[str, Connector] = {
    "webhook": webhook.deliver,
    "salesforce": salesforce.deliver,
    "hubspot": hubspot.deliver,
}

__all__ = ["CONNECTORS", "Connector", "DeliveryError", "DeliveryResult"]
