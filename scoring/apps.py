from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ScoringConfig(AppConfig):
    name = "scoring"
    verbose_name = _("Scoring")

    def ready(self) -> None:
        from leadflow.signals import person_exporting
        from scoring.receivers import on_person_exporting

        person_exporting.connect(on_person_exporting, dispatch_uid="scoring.export_person")
