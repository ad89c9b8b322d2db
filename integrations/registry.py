"""Every inbound adapter, by source kind: the one place a new vendor is registered."""

from __future__ import annotations

from integrations import generic, hubspot, marketo, mautic
from integrations.base import Adapter

ADAPTERS: dict[str, Adapter] = {
    "generic": generic.ADAPTER,
    "mautic": mautic.ADAPTER,
    "hubspot": hubspot.ADAPTER,
    "marketo": marketo.ADAPTER,
}
