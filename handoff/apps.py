from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class HandoffConfig(AppConfig):
    name = "handoff"
    verbose_name = _("Handoff")

    def ready(self) -> None:
        from handoff.receivers import on_lead_stage_changed, on_leads_merging
        from leadflow.signals import lead_stage_changed, leads_merging

        # Runs inside lead_transition's transaction: the MQL and its handoff commit together.
        lead_stage_changed.connect(on_lead_stage_changed, dispatch_uid="handoff.create_for_mql")
        leads_merging.connect(on_leads_merging, dispatch_uid="handoff.check_merge")
