"""Domain signals of the handoff app: what happened to a handoff, for apps that react.

handoff must not know who listens (the `sla` app times handoffs; dependencies point one
way, sla → handoff). Every signal is sent by `handoff.services` inside the service's
transaction, after its rows are written, so a receiver's writes commit or roll back with
the change. Receivers are explicit service calls connected in their AppConfig.ready().
"""

from django.dispatch import Signal

# A handoff was created for a new MQL (before it is routed to a rep).
# kwargs: handoff (Handoff), at (datetime: when the MQL happened).
handoff_created = Signal()

# A handoff got a rep (routing, the team queue, a manager, an SLA escalation).
# kwargs: handoff, assignment (Assignment), previous_rep_id (int | None), at (datetime).
handoff_assigned = Signal()

# A rep logged a touch. kwargs: handoff, activity (Activity).
activity_logged = Signal()

# About to reject: receivers may refuse by raising DomainError (e.g. the SLA's "at least
# N attempts before 'not reachable'"). Sent under the handoff's row lock, before any write.
# kwargs: handoff (locked), reason (RejectionReason).
handoff_rejecting = Signal()

# The verdict was given (accepted as SQL or rejected). kwargs: handoff, at (datetime).
handoff_decided = Signal()
