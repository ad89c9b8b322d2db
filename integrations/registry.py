"""Every vendor, by kind: the one place a new vendor is registered.

Each vendor is one package (integrations/<vendor>/) with an `inbound` adapter, an
`outbound` connector or both; only this module imports them all, so no vendor package
imports another (an import-linter contract in pyproject.toml).
"""

from __future__ import annotations

from integrations.base import Adapter
from integrations.hubspot import inbound as hubspot_inbound
from integrations.hubspot import outbound as hubspot_outbound
from integrations.marketo import inbound as marketo_inbound
from integrations.mautic import inbound as mautic_inbound
from integrations.outbound.base import Connector
from integrations.salesforce import outbound as salesforce_outbound
from integrations.webhook import inbound as webhook_inbound
from integrations.webhook import outbound as webhook_outbound

# Inbound adapters, by Source.kind.
ADAPTERS: dict[str, Adapter] = {
    "generic": webhook_inbound.ADAPTER,
    "mautic": mautic_inbound.ADAPTER,
    "hubspot": hubspot_inbound.ADAPTER,
    "marketo": marketo_inbound.ADAPTER,
}

# Outbound connectors, by Destination.kind.
CONNECTORS: dict[str, Connector] = {
    "webhook": webhook_outbound.deliver,
    "salesforce": salesforce_outbound.deliver,
    "hubspot": hubspot_outbound.deliver,
}
