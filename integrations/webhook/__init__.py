"""Signed generic JSON webhooks: in from Zapier, Make, n8n or a script (`inbound`, source
kind "generic"), and out to any receiver (`outbound`, destination kind "webhook").

Registered by kind in integrations/registry.py; imports no other vendor package."""
