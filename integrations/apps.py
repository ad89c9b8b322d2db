from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = _("Integrations")

    def ready(self) -> None:
        # What the outbox does after a stage change is in leadflow.reactions.
        from integrations.privacy import on_person_erasing, on_person_exporting
        from leadflow.signals import person_erasing, person_exporting

        person_erasing.connect(on_person_erasing, dispatch_uid="integrations.erase_person")
        person_exporting.connect(on_person_exporting, dispatch_uid="integrations.export_person")
