"""The three roles as Django groups, with the model permissions each one needs.

`sync_roles()` runs after every `migrate` (see apps.py), so a new permission added here
reaches existing databases without a hand-written data migration. Object-level rules
(a rep sees only their own handoffs) live in each app's selectors, not in groups.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

MARKETING = "Marketing"
SALES_REP = "Sales rep"
SALES_MANAGER = "Sales manager"
ROLES = (MARKETING, SALES_REP, SALES_MANAGER)

_READ_CORE = [
    "leadflow.view_company",
    "leadflow.view_lead",
    "leadflow.view_leadexternalid",
    "leadflow.view_engagementevent",
    "leadflow.view_stagetransition",
]

_READ_HANDOFF = [
    "handoff.view_handoff",
    "handoff.view_activity",
    "handoff.view_assignment",
    "handoff.view_rejectionreason",
    "handoff.view_team",
    "handoff.view_teammembership",
    "handoff.view_routingrule",
]

# What went to the SFA and what came back; changing destinations stays with admins.
_READ_OUTBOUND = [
    "integrations.view_destination",
    "integrations.view_outboxmessage",
    "integrations.view_feedbackevent",
]

# Scoring: marketers own the models (edit drafts, publish); sales reads scores and
# the model that explains them.
_READ_SCORES = ["scoring.view_leadscore", "scoring.view_scoringmodel"]
_EDIT_SCORING = [
    *_READ_SCORES,
    "scoring.add_scoringmodel",
    "scoring.change_scoringmodel",
    "scoring.delete_scoringmodel",
    "scoring.publish_scoringmodel",
    *(
        f"scoring.{action}_{model}"
        for model in ("fitcategory", "fitrule", "engagementrule")
        for action in ("view", "add", "change", "delete")
    ),
    "scoring.view_rescorerun",
]

# SLA: marketing owns its targets (monthly MQLs, required fields); managers tune the sales
# side's timers. Both read the timers. The dashboard itself is gated in sla.access.
_READ_SLA = ["sla.view_slatimer", "sla.view_timerpolicy", "sla.view_slasettings"]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    MARKETING: [
        *_READ_CORE,
        *_READ_HANDOFF,
        *_READ_OUTBOUND,
        *_EDIT_SCORING,
        *_READ_SLA,
        # What a publish or an import made at once, and what became of it (read-only).
        "leadflow.view_mqlwave",
        "sla.view_mqltarget",
        "sla.add_mqltarget",
        "sla.change_mqltarget",
        "sla.change_slasettings",
        "leadflow.add_company",
        "leadflow.change_company",
        "leadflow.add_lead",
        "leadflow.change_lead",
        "leadflow.add_engagementevent",
        "leadflow.view_duplicatecandidate",
        "leadflow.change_duplicatecandidate",
        # Intake: see what MA tools sent, re-process failures after fixing a mapping.
        "integrations.view_source",
        "integrations.change_source",
        "integrations.view_inboundevent",
        "integrations.reprocess_inboundevent",
    ],
    SALES_REP: [*_READ_CORE, *_READ_HANDOFF, *_READ_SCORES, "handoff.add_activity"],
    SALES_MANAGER: [
        *_READ_CORE,
        "leadflow.change_lead",
        *_READ_HANDOFF,
        *_READ_OUTBOUND,
        *_READ_SCORES,
        *_READ_SLA,
        "leadflow.view_mqlwave",  # the waves in their queues, as marketing sees them
        "sla.change_timerpolicy",
        "handoff.add_activity",
        "handoff.change_team",
        "handoff.add_teammembership",
        "handoff.change_teammembership",
        "handoff.delete_teammembership",
        "handoff.view_repprofile",
        "handoff.add_repprofile",
        "handoff.change_repprofile",
        # Routing plans (#19): draft, replay and publish a change of routing.
        *(
            f"handoff.{action}_{model}"
            for model in ("routingplan", "planteam", "planrule", "planmember", "planrep")
            for action in ("view", "add", "change", "delete")
        ),
        "handoff.publish_routingplan",
    ],
}


def sync_roles(extra: dict[str, list[str]] | None = None) -> None:
    """Create the groups and set exactly the listed permissions on each (idempotent)."""
    wanted = {role: list(perms) for role, perms in ROLE_PERMISSIONS.items()}
    for role, perms in (extra or {}).items():
        wanted.setdefault(role, []).extend(perms)
    for role, perms in wanted.items():
        group, _created = Group.objects.get_or_create(name=role)
        found = []
        for dotted in perms:
            app_label, codename = dotted.split(".", 1)
            permission = Permission.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).first()
            if permission is None:
                raise LookupError(f"Role {role!r} names unknown permission {dotted!r}.")
            found.append(permission)
        group.permissions.set(found)
