from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ScoringConfig(AppConfig):
    name = "scoring"
    verbose_name = _("Scoring")

    def ready(self) -> None:
        from leadflow.signals import leads_merged
        from scoring.receivers import on_leads_merged

        leads_merged.connect(on_leads_merged, dispatch_uid="scoring.rescore_after_merge")
