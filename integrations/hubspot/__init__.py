"""HubSpot: contact notifications in (`inbound`), contacts upserted out (`outbound`).

Registered by kind in integrations/registry.py; imports no other vendor package."""
