"""Outbound delivery to SFAs and marketing tools, and SFA feedback coming back in."""
