from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PrivacyConfig(AppConfig):
    """Erasure requests and personal-data exports (APPI / GDPR): the record, the admin,
    the commands and the API. The work itself is `leadflow.privacy` and each app's
    receivers of its signals; this app depends on leadflow only."""

    name = "privacy"
    verbose_name = _("Privacy")
