from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class HandoffConfig(AppConfig):
    name = "handoff"
    verbose_name = _("Handoff")

    def ready(self) -> None:
        from handoff.receivers import on_person_erasing, on_person_exporting
        from leadflow.signals import person_erasing, person_exporting

        person_erasing.connect(on_person_erasing, dispatch_uid="handoff.erase_person")
        person_exporting.connect(on_person_exporting, dispatch_uid="handoff.export_person")
