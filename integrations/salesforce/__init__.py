"""Salesforce: leads upserted out, followed once converted (`outbound`). Its outcomes
come back through the SFA feedback endpoint (integrations/feedback.py), not a vendor module.

Registered by kind in integrations/registry.py; imports no other vendor package."""
