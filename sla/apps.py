from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SlaConfig(AppConfig):
    # Nothing is registered at startup: what the SLA does after a change, and what it
    # answers for handoff (working hours, the lists' SLA and KPI conditions), are named in
    # leadflow.reactions.
    name = "sla"
    verbose_name = _("SLA")
