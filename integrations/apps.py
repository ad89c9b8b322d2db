from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = _("Integrations")

    def ready(self) -> None:
        # Stage changes write outbox rows in their own transaction (see the module).
        import integrations.outbound.receivers  # noqa: F401
