"""Domain signals: the one place where the core tells other apps that something happened.

Receivers are explicit service calls registered in each app's AppConfig.ready(); they run
inside the sender's transaction. Business rules live in those services, not here.
"""

from django.dispatch import Signal

# Sent by leadflow.lifecycle.lead_transition after the StageTransition row is written.
# kwargs: transition (StageTransition), lead (Lead, locked).
lead_stage_changed = Signal()
