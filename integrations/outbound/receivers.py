"""The outbound side's one reaction to the core: a stage change writes outbox rows.

Connected when the app is ready (IntegrationsConfig.ready imports this module). The
receiver runs inside lead_transition's transaction and only calls the service.
"""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from integrations.outbound.outbox import outbox_enqueue_for_transition
from leadflow.signals import lead_stage_changed


@receiver(lead_stage_changed, dispatch_uid="integrations.outbound.enqueue")
def enqueue_outbox_messages(sender: Any, *, transition: Any, **kwargs: Any) -> None:
    outbox_enqueue_for_transition(transition=transition)
