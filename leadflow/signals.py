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

# Privacy (APPI / GDPR). Both are sent by `leadflow.privacy` with kwargs: person
# (leadflow.privacy.Person: the lead ids, e-mail addresses and external ids of one person).
#
# person_erasing: inside the erasure's transaction, before the core erases the lead's own
# fields. Each app removes the person's data from its rows and returns a dict of counts
# {"app.Model.field": rows touched} for the erasure record (counts only, never the data).
person_erasing = Signal()

# person_exporting: each app returns a dict of JSON-able sections it holds about the
# person ({"handoffs": [...]}); the export is their union with the core's own sections.
person_exporting = Signal()
