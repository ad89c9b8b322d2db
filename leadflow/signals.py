"""Domain signals: the one place where the core tells other apps that something happened.

Receivers are explicit service calls registered in each app's AppConfig.ready(); they run
inside the sender's transaction. Business rules live in those services, not here.
"""

from django.dispatch import Signal

# Sent by leadflow.lifecycle.lead_transition after the StageTransition row is written.
# kwargs: transition (StageTransition), lead (Lead, locked).
lead_stage_changed = Signal()

# Sent by leadflow.merge.lead_merge inside its transaction, before the merged lead's rows
# are moved to the kept one: apps resolve what cannot simply move (a one-to-one score row,
# two open handoffs). Raise a DomainError to refuse the merge. kwargs: keep, merge (Lead).
leads_merging = Signal()

# Sent after every row was moved and the merged lead deleted (same transaction), so apps
# can recompute derived data for the kept lead (scores). kwargs: keep (Lead), record.
leads_merged = Signal()

# Privacy has no signals: the privacy app calls each app's erasure and export in the
# order privacy/participants.py lists.
