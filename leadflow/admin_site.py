"""The admin site: Django's, with the users listed where people look for them.

The user model is LeadFlow's own (`leadflow.User`), so Django files it under the leadflow
app (リード) beside leads and companies; people look for users next to groups, under
Authentication and authorisation. The index moves the entry there; the URLs stay.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest


class LeadflowAdminSite(admin.AdminSite):
    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[Any]:
        apps = super().get_app_list(request, app_label)
        if app_label is not None:
            return apps  # one app's own page: it lists what belongs to it
        by_label = {app["app_label"]: app for app in apps}
        leadflow, auth = by_label.get("leadflow"), by_label.get("auth")
        if leadflow is None or auth is None:
            return apps  # a user who may not see groups keeps users where they are
        users = [m for m in leadflow["models"] if m["object_name"] == "User"]
        leadflow["models"] = [m for m in leadflow["models"] if m["object_name"] != "User"]
        auth["models"] = sorted(auth["models"] + users, key=lambda m: str(m["name"]))
        if not leadflow["models"]:
            apps.remove(leadflow)
        return apps
