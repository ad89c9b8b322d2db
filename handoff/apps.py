from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class HandoffConfig(AppConfig):
    # What handoff does after a change of state is listed in leadflow.reactions; its part
    # of erasing and exporting a person, in privacy/participants.py.
    name = "handoff"
    verbose_name = _("Handoff")
