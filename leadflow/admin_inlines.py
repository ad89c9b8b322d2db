"""Admin pieces the apps share: the read-only admin of rows only services write, and
what the draft → publish studios share (scoring models, routing plans).

A draft is edited in place in the admin; once published (or archived) its rows are the
record of what was applied and must not change. Both studios name that state "draft".
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from leadflow.models import User

DRAFT = "draft"


def request_user(request: HttpRequest) -> User | None:
    # Admin views run for signed-in staff only; the check keeps the type honest.
    return request.user if isinstance(request.user, User) else None


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows that only LeadFlow's services write (audit logs, scores, waves, imports): the
    admin shows them to whoever may view them and lets nobody, superusers included, add,
    change or delete one."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class DraftOnlyInline(admin.TabularInline):
    """Rows of a draft: added, changed and deleted only while the parent is a draft."""

    extra = 0

    def _editable(self, obj) -> bool:
        return obj is None or obj.status == DRAFT

    def has_add_permission(self, request, obj=None) -> bool:
        return self._editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._editable(obj) and super().has_delete_permission(request, obj)
