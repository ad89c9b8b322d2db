"""Celery autodiscovery looks here; the tasks live in the integration subpackages."""

from integrations.outbound.tasks import deliver_outbox_task

__all__ = ["deliver_outbox_task"]
