from django.apps import AppConfig, apps
from django.contrib.admin.apps import AdminConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _sync_roles_after_migrate(sender, **kwargs) -> None:
    # post_migrate is sent once per app that has models, and each app's permissions are
    # created in its own round. Wait for the last such app so every permission exists.
    with_models = [config for config in apps.get_app_configs() if config.models_module]
    if sender.label != with_models[-1].label:
        return
    from leadflow.roles import sync_roles

    sync_roles()


class LeadflowConfig(AppConfig):
    name = "leadflow"
    verbose_name = _("Leads")

    def ready(self) -> None:
        post_migrate.connect(_sync_roles_after_migrate, dispatch_uid="leadflow.sync_roles")


class LeadflowAdminConfig(AdminConfig):
    # Django's admin with LeadFlow's site (users listed beside groups).
    default_site = "leadflow.admin_site.LeadflowAdminSite"
