"""The marker an erasure (the privacy app) leaves in free text that was about a person.

In the core because every app that keeps such text writes it (handoff's notes and
rejection comments, the core's transition reasons, integrations' item errors), and none
of them may import the privacy app, which sits above them all.
"""

ERASED = "[erased]"
