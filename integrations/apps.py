from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IntegrationsConfig(AppConfig):
    # What the outbox does after a stage change is in leadflow.reactions; integrations'
    # part of erasing and exporting a person, in privacy/participants.py.
    name = "integrations"
    verbose_name = _("Integrations")
