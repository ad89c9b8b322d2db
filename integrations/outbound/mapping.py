"""What a message says: a snapshot of the lead, and the destination's field mapping over it.

The mapping is JSON an operator edits in the admin:

    {"Lead": {"LastName": "lead.last_name",
              "Industry": {"path": "company.industry", "map": {"it": "Technology"}},
              "LeadSource": {"path": "lead.source", "default": "Web"},
              "Company": {"value": "constant"}}}

Top-level keys are the destination's objects (Salesforce "Lead"/"Contact"/"Opportunity",
HubSpot "contact", webhook "lead"). Empty values are left out of what is sent, so a
field sales filled in by hand in the SFA is not blanked by a lead we know less about.
"""

from __future__ import annotations

from typing import Any

from django.utils import translation

from leadflow.models import Lead, StageTransition
from leadflow.normalize import has_nul

_SF_INDUSTRY = {
    # LeadFlow industry code → Salesforce standard Industry picklist value.
    "manufacturing": "Manufacturing",
    "it": "Technology",
    "finance": "Finance",
    "retail": "Retail",
    "construction": "Construction",
    "healthcare": "Healthcare",
    "logistics": "Transportation",
    "services": "Consulting",
    "education": "Education",
    "public": "Government",
    "other": "Other",
}
_SF_STATUS = {
    # Salesforce's standard Lead Status picklist.
    "mql": "Open - Not Contacted",
    "sql": "Working - Contacted",
    "recycled": "Closed - Not Converted",
    "disqualified": "Closed - Not Converted",
}
_HS_LIFECYCLE = {
    # HubSpot lifecycle stages only move forward through the API, so the backward moves
    # (recycled, disqualified) are not mapped; the lead status below carries them.
    "mql": "marketingqualifiedlead",
    "sql": "salesqualifiedlead",
    "opportunity": "opportunity",
    "customer": "customer",
}
_HS_LEAD_STATUS = {
    "mql": "NEW",
    "sql": "IN_PROGRESS",
    "opportunity": "OPEN_DEAL",
    "recycled": "BAD_TIMING",
    "disqualified": "UNQUALIFIED",
}

DEFAULT_MAPPINGS: dict[str, dict[str, dict[str, Any]]] = {
    "salesforce": {
        "Lead": {
            "LastName": "lead.last_name",
            "FirstName": "lead.first_name",
            "Company": "company.name",
            "Email": "lead.email",
            "Phone": "lead.phone",
            "Title": "lead.job_title",
            "Industry": {"path": "company.industry", "map": _SF_INDUSTRY},
            "NumberOfEmployees": "company.employee_count",
            "State": "company.prefecture",
            "LeadSource": {"path": "lead.source", "default": "Web"},
            "Status": {"path": "lead.stage", "map": _SF_STATUS},
            "LeadFlow_Fit_Score__c": "scores.fit",
            "LeadFlow_Engagement_Score__c": "scores.engagement",
        },
        # Once Salesforce has converted the lead, updates go to the contact it became.
        "Contact": {
            "LastName": "lead.last_name",
            "FirstName": "lead.first_name",
            "Email": "lead.email",
            "Phone": "lead.phone",
            "Title": "lead.job_title",
        },
    },
    "hubspot": {
        "contact": {
            "email": "lead.email",
            "firstname": "lead.first_name",
            "lastname": "lead.last_name",
            "company": "company.name",
            "phone": "lead.phone",
            "jobtitle": "lead.job_title",
            "lifecyclestage": {"path": "lead.stage", "map": _HS_LIFECYCLE},
            "hs_lead_status": {"path": "lead.stage", "map": _HS_LEAD_STATUS},
        },
    },
    "webhook": {
        "lead": {
            "id": "lead.id",
            "email": "lead.email",
            "last_name": "lead.last_name",
            "first_name": "lead.first_name",
            "last_name_kana": "lead.last_name_kana",
            "first_name_kana": "lead.first_name_kana",
            "company": "company.name",
            "company_domain": "company.domain",
            "industry": "company.industry",
            "employee_count": "company.employee_count",
            "prefecture": "company.prefecture",
            "department": "lead.department",
            "job_title": "lead.job_title",
            "phone": "lead.phone",
            "source": "lead.source",
            "stage": "lead.stage",
            "owner_email": "lead.owner_email",
            "fit_score": "scores.fit",
            "engagement_score": "scores.engagement",
        },
    },
}


def default_mapping(kind: str) -> dict[str, dict[str, Any]]:
    import copy

    return copy.deepcopy(DEFAULT_MAPPINGS.get(kind, {}))


def validate_mapping(mapping: Any) -> str | None:
    """A readable problem with an operator-edited mapping, or None if it is usable."""
    if not isinstance(mapping, dict):
        return "The mapping must be a JSON object of target objects."
    if has_nul(mapping):  # PostgreSQL's jsonb refuses it: saving was a 500
        return "The mapping contains a NUL character (\\u0000), which the database cannot store."
    for obj, fields in mapping.items():
        if not isinstance(fields, dict):
            return f"“{obj}” must map target fields to sources."
        for target, source in fields.items():
            if isinstance(source, str):
                continue
            if isinstance(source, dict) and ("path" in source or "value" in source):
                if "path" in source and not isinstance(source["path"], str):
                    return f"{obj}.{target}: “path” must be a string."
                if "map" in source and not isinstance(source["map"], dict):
                    return f"{obj}.{target}: “map” must be an object."
                continue
            return f'{obj}.{target}: use a path string, {{"path": ...}} or {{"value": ...}}.'
    return None


def lead_snapshot(lead: Lead) -> dict[str, Any]:
    """The lead and its company as plain JSON values, the data every mapping reads."""
    company = lead.company
    owner = lead.owner
    with translation.override("en"):
        industry_label = company.get_industry_display() if company and company.industry else ""
    return {
        "lead": {
            "id": lead.pk,
            "email": lead.email,
            "last_name": lead.last_name,
            "first_name": lead.first_name,
            "last_name_kana": lead.last_name_kana,
            "first_name_kana": lead.first_name_kana,
            "full_name": lead.full_name,
            "department": lead.department,
            "job_title": lead.job_title,
            "role": lead.role,
            "phone": lead.phone,
            "source": lead.source,
            "stage": lead.stage,
            "owner_email": owner.email if owner else "",
            "attributes": lead.attributes,
        },
        "company": {
            "name": company.name if company else "",
            "name_kana": company.name_kana if company else "",
            "domain": company.domain if company else "",
            "employee_count": company.employee_count if company else None,
            "revenue_band": company.revenue_band if company else "",
            "industry": company.industry if company else "",
            "industry_label": industry_label,
            "prefecture": company.prefecture if company else "",
            "region": company.region if company else "",
        },
    }


def transition_facts(transition: StageTransition) -> dict[str, Any]:
    """What the message says about the move. handoff_reject puts the reason code and the
    rep's comment into the transition's context; lead_mark_lost puts the lost reason."""
    context = transition.context or {}
    reason_code = context.get("rejection_reason") or ("lost" if context.get("lost_reason") else "")
    return {
        "id": transition.pk,
        "from": transition.from_stage,
        "to": transition.to_stage,
        "occurred_at": transition.occurred_at.isoformat(),
        "actor": transition.actor_display,
        "reason": transition.reason,
        "reason_code": str(reason_code),
        "comment": str(context.get("rejection_comment") or context.get("lost_reason") or ""),
    }


def scores_of(transition: StageTransition) -> dict[str, Any]:
    """The lead's fit and engagement score as stored when the move happened (scoring saves
    the score before it moves a lead to MQL, in the same transaction); {} if unscored."""
    from scoring.models import LeadScore

    context = transition.context or {}
    if "scoring_model" in context and "fit" in context and "engagement" in context:
        # An MQL made by scoring names the scores it decided on: the ones it just stored.
        return {"fit": context["fit"], "engagement": context["engagement"]}

    row = (
        LeadScore.objects.filter(lead_id=transition.lead_id, model__isnull=False)
        .values("fit", "engagement")
        .first()
    )
    return dict(row) if row else {}


def _resolve(data: dict[str, Any], path: str) -> Any:
    value: Any = data
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _evaluate(source: Any, data: dict[str, Any]) -> Any:
    if isinstance(source, str):
        return _resolve(data, source)
    if "value" in source:
        return source["value"]
    value = _resolve(data, source["path"])
    if "map" in source:
        value = source["map"].get(str(value)) if value not in (None, "") else None
    if value in (None, "") and "default" in source:
        value = source["default"]
    return value


def apply_mapping(mapping: dict[str, Any], data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each object's target fields with their values; empty values are left out."""
    objects: dict[str, dict[str, Any]] = {}
    for obj, fields in mapping.items():
        values = {}
        for target, source in fields.items():
            value = _evaluate(source, data)
            if value not in (None, ""):
                values[target] = value
        objects[obj] = values
    return objects


def build_payload(
    *,
    mapping: dict[str, Any],
    lead: Lead,
    event: str,
    idempotency_key: str,
    transition: dict[str, Any],
    scores: dict[str, Any],
) -> dict[str, Any]:
    """The message as stored on the outbox row: event facts plus the mapped objects."""
    data = lead_snapshot(lead)
    data["scores"] = scores
    data["transition"] = transition
    data["event"] = event
    return {
        "event": event,
        "idempotency_key": idempotency_key,
        "lead_id": lead.pk,
        "occurred_at": transition.get("occurred_at"),
        "transition": transition,
        "scores": scores,
        "objects": apply_mapping(mapping, data),
    }
