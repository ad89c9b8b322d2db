from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PrivacyConfig(AppConfig):
    """Erasure requests and personal-data exports (APPI / GDPR): the record, the admin,
    the commands and the API, and the work: privacy/participants.py lists, in order, what
    each app erases and exports. The one app allowed to import the apps it orchestrates."""

    name = "privacy"
    verbose_name = _("Privacy")
