"""The core's privacy signals: the participants in erasing and exporting a person.

What follows a change of state (a stage move, a merge) is not a signal: it is listed, in
order, in `leadflow.reactions`.
"""

from django.dispatch import Signal

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
