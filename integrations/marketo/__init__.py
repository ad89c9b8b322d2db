"""Marketo: webhook calls from smart campaigns in (`inbound`).

Registered by kind in integrations/registry.py; imports no other vendor package."""
