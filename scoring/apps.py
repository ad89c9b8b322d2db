from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ScoringConfig(AppConfig):
    # What scoring does after a change of state is listed in leadflow.reactions; its part
    # of exporting a person, in privacy/participants.py.
    name = "scoring"
    verbose_name = _("Scoring")
