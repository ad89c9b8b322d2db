"""Mautic: form submissions, page hits and e-mail events in (`inbound`).

Registered by kind in integrations/registry.py; imports no other vendor package."""
