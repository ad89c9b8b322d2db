from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class HandoffConfig(AppConfig):
    name = "handoff"
    verbose_name = _("Handoff")

    def ready(self) -> None:
        from handoff.receivers import (
            on_lead_stage_changed,
            on_leads_merging,
            on_person_erasing,
            on_person_exporting,
        )
        from leadflow.signals import (
            lead_stage_changed,
            leads_merging,
            person_erasing,
            person_exporting,
        )

        # Runs inside lead_transition's transaction: the MQL and its handoff commit together.
        lead_stage_changed.connect(on_lead_stage_changed, dispatch_uid="handoff.create_for_mql")
        leads_merging.connect(on_leads_merging, dispatch_uid="handoff.check_merge")
        person_erasing.connect(on_person_erasing, dispatch_uid="handoff.erase_person")
        person_exporting.connect(on_person_exporting, dispatch_uid="handoff.export_person")
