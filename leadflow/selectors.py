"""Reads of the core domain, with the visibility rules of each role."""

from __future__ import annotations

from django.db.models import QuerySet

from leadflow.models import Lead, User
from leadflow.roles import MARKETING, SALES_MANAGER


def user_roles(user: User) -> set[str]:
    # Cached on the user object: one query per request however often it is asked.
    cached = getattr(user, "_leadflow_roles", None)
    if cached is None:
        cached = set(user.groups.values_list("name", flat=True))
        user._leadflow_roles = cached  # type: ignore[attr-defined]
    return cached


def sees_all_leads(user: User) -> bool:
    """Marketing, sales managers and superusers see every lead; a rep only their own."""
    return user.is_superuser or bool(user_roles(user) & {MARKETING, SALES_MANAGER})


def lead_list_for(user: User) -> QuerySet[Lead]:
    leads = Lead.objects.select_related("company", "owner", "score")
    if sees_all_leads(user):
        return leads
    return leads.filter(owner=user)
