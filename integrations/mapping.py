"""Field mappings, both directions, in one place.

Inbound, a source's `mapping` (Source.mapping): `source_mapping_default`,
`source_mapping_problems`, `lead_data_from_fields`, `kind_for_url`, `kind_for_name`.
Outbound, a destination's `field_mapping` (Destination.field_mapping):
`destination_mapping_default`, `destination_mapping_problem`, `destination_objects`.

## Inbound

A source's mapping: which sender field becomes which lead field, and which page,
form or campaign becomes which kind of engagement event.

    {
      "fields": {"<sender field>": "<target>", ...},
      "keep_unmapped": false,
      "url_kinds": [["/pricing", "pricing_page_view"], ...],
      "form_kinds": {"<form alias, name or id>": "document_download", ...},
      "campaign_kinds": {"<campaign id or name>": "seminar_attendance", ...}
    }

Targets: `email`, `external_id` (the sender's id for the person), a lead column
(`last_name`, `first_name`, `last_name_kana`, `first_name_kana`, `department`,
`job_title`, `role`, `phone`), `full_name` (split into family and given name),
`company.<name|name_kana|domain|employee_count|revenue_band|industry|prefecture>`,
`prefecture` (same as company.prefecture), `address` (kept as an attribute; its
prefecture goes to the company), `attributes.<name>` (a custom attribute), or "" to
ignore the field. Admins edit it as JSON; `source_mapping_problems` says what is wrong.

## Outbound

A destination's field mapping over the message data (a snapshot of the lead, the
event and its scores; integrations/outbound/payload.py). It is JSON an operator edits
in the admin:

    {"Lead": {"LastName": "lead.last_name",
              "Industry": {"path": "company.industry", "map": {"it": "Technology"}},
              "LeadSource": {"path": "lead.source", "default": "Web"},
              "Company": {"value": "constant"}}}

Top-level keys are the destination's objects (Salesforce "Lead"/"Contact"/"Opportunity",
HubSpot "contact", webhook "lead"). Empty values are left out of what is sent, so a
field sales filled in by hand in the SFA is not blanked by a lead we know less about.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _

from integrations.normalize import (
    ValueProblem,
    clean_email,
    domain_from_text,
    industry_from_text,
    parse_count,
    prefecture_from_text,
    revenue_band_from_amount,
    role_from_title,
    split_full_name,
)
from leadflow.models import EventKind
from leadflow.normalize import has_nul
from leadflow.services import COMPANY_FIELDS, LEAD_FIELDS

# --- Inbound: a sender's fields → a lead ---------------------------------------------

SPECIAL_TARGETS = frozenset(
    {
        "email",
        "external_id",
        "full_name",
        "full_name_kana",
        "prefecture",
        "address",
        "card_exchanged_on",
    }
)
MAPPING_KEYS = frozenset({"fields", "keep_unmapped", "url_kinds", "form_kinds", "campaign_kinds"})

# Pages whose URL contains one of these count as pricing page views (the article's
# strongest buying signal); case-insensitive substring match, first rule wins.
DEFAULT_URL_KINDS = [
    ["/pricing", EventKind.PRICING_PAGE_VIEW.value],
    ["/price", EventKind.PRICING_PAGE_VIEW.value],
    ["/plans", EventKind.PRICING_PAGE_VIEW.value],
    ["/ryokin", EventKind.PRICING_PAGE_VIEW.value],
    ["料金", EventKind.PRICING_PAGE_VIEW.value],
    ["/case-stud", EventKind.CASE_STUDY_DOWNLOAD.value],
]

_COMMON_FIELDS = {
    "email": "email",
    "last_name": "last_name",
    "first_name": "first_name",
    "last_name_kana": "last_name_kana",
    "first_name_kana": "first_name_kana",
    "full_name": "full_name",
    "name": "full_name",
    "department": "department",
    "job_title": "job_title",
    "title": "job_title",
    "role": "role",
    "phone": "phone",
    "company": "company.name",
    "company_name": "company.name",
    "company_name_kana": "company.name_kana",
    "company_domain": "company.domain",
    "website": "company.domain",
    "employee_count": "company.employee_count",
    "employees": "company.employee_count",
    "annual_revenue": "company.revenue_band",
    "revenue_band": "company.revenue_band",
    "industry": "company.industry",
    "prefecture": "prefecture",
    "address": "address",
    "id": "external_id",
    "external_id": "external_id",
}

DEFAULT_FIELDS: dict[str, dict[str, str]] = {
    "generic": dict(_COMMON_FIELDS),
    # Mautic contact field aliases (core group) and common custom aliases.
    "mautic": {
        "email": "email",
        "firstname": "first_name",
        "lastname": "last_name",
        "company": "company.name",
        "position": "job_title",
        "department": "department",
        "phone": "phone",
        "mobile": "attributes.mobile",
        "address1": "address",
        "state": "prefecture",
        "website": "company.domain",
        "industry": "company.industry",
        "employees": "company.employee_count",
        "numberofemployees": "company.employee_count",
        "points": "attributes.ma_points",
    },
    # HubSpot contact property names.
    "hubspot": {
        "email": "email",
        "firstname": "first_name",
        "lastname": "last_name",
        "company": "company.name",
        "jobtitle": "job_title",
        "phone": "phone",
        "mobilephone": "attributes.mobile",
        "address": "address",
        "state": "prefecture",
        "website": "company.domain",
        "industry": "company.industry",
        "numemployees": "company.employee_count",
        "annualrevenue": "company.revenue_band",
        "lifecyclestage": "attributes.hubspot_lifecyclestage",
        "hs_lead_status": "attributes.hubspot_lead_status",
        "hubspotscore": "attributes.ma_score",
    },
    # Paths in the Marketo webhook payload template (see docs/intake.md).
    "marketo": {
        "lead.id": "external_id",
        "lead.email_address": "email",
        "lead.first_name": "first_name",
        "lead.last_name": "last_name",
        "lead.full_name": "full_name",
        "lead.job_title": "job_title",
        "lead.department": "department",
        "lead.phone_number": "phone",
        "lead.mobile_phone_number": "attributes.mobile",
        "lead.address": "address",
        "lead.state": "prefecture",
        "lead.lead_score": "attributes.ma_score",
        "lead.lead_source": "attributes.ma_lead_source",
        "lead.lead_status": "attributes.ma_lead_status",
        "company.name": "company.name",
        "company.industry": "company.industry",
        "company.num_employees": "company.employee_count",
        "company.annual_revenue": "company.revenue_band",
        "company.website": "company.domain",
    },
}


def source_mapping_default(kind: str) -> dict[str, Any]:
    mapping: dict[str, Any] = {
        "fields": copy.deepcopy(DEFAULT_FIELDS.get(kind, _COMMON_FIELDS)),
        # A generic sender's extra fields are its own custom attributes; vendor payloads
        # carry dozens of fields nobody scores on, so they are dropped unless mapped.
        "keep_unmapped": kind == "generic",
    }
    if kind == "mautic":
        mapping["url_kinds"] = copy.deepcopy(DEFAULT_URL_KINDS)
        mapping["form_kinds"] = {}
    if kind == "marketo":
        mapping["campaign_kinds"] = {}
    return mapping


def target_is_valid(target: str) -> bool:
    if target == "" or target in SPECIAL_TARGETS or target in LEAD_FIELDS:
        return True
    group, _sep, name = target.partition(".")
    if group == "company":
        return name in COMPANY_FIELDS
    return group == "attributes" and bool(re.fullmatch(r"[A-Za-z0-9_\-]{1,64}", name))


def source_mapping_problems(mapping: Any) -> list[str]:
    """Readable problems with a source mapping (empty when it is usable)."""
    if not isinstance(mapping, dict):
        return ["The mapping must be a JSON object."]
    if has_nul(mapping):  # PostgreSQL's jsonb refuses it: saving was a 500
        return ["The mapping contains a NUL character (\\u0000), which the database cannot store."]
    problems = [f"Unknown key “{key}”." for key in mapping if key not in MAPPING_KEYS]
    fields = mapping.get("fields", {})
    if not isinstance(fields, dict):
        problems.append("“fields” must be an object of sender field → target.")
    else:
        for source_field, target in fields.items():
            if not isinstance(target, str) or not target_is_valid(target):
                problems.append(f"fields.{source_field}: “{target}” is not a target.")
    if not isinstance(mapping.get("keep_unmapped", False), bool):
        problems.append("“keep_unmapped” must be true or false.")
    url_kinds = mapping.get("url_kinds", [])
    if not isinstance(url_kinds, list) or not all(
        isinstance(rule, list) and len(rule) == 2 and isinstance(rule[0], str) for rule in url_kinds
    ):
        problems.append("“url_kinds” must be a list of [URL part, event kind] pairs.")
    else:
        problems += [
            f"url_kinds: “{kind}” is not an event kind."
            for _part, kind in url_kinds
            if kind not in EventKind.values
        ]
    for key in ("form_kinds", "campaign_kinds"):
        rules = mapping.get(key, {})
        if not isinstance(rules, dict):
            problems.append(f"“{key}” must be an object of name → event kind.")
            continue
        problems += [
            f"{key}.{name}: “{kind}” is not an event kind."
            for name, kind in rules.items()
            if kind not in EventKind.values
        ]
    return problems


@dataclass
class LeadData:
    """What one payload item says about a person, in lead_upsert's terms."""

    email: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    company: dict[str, Any] = field(default_factory=dict)
    external_id: str = ""
    card_exchanged_on: str = ""  # business-card exports: the day the card was exchanged
    # Which sender field each value came from ("last_name" → "lastname", "company.name" →
    # "company"), so a value that does not fit its column is reported by the sender's name.
    origins: dict[str, str] = field(default_factory=dict)

    def origin(self, name: str) -> str:
        return self.origins.get(name, name)


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def _company_value(name: str, value: Any) -> Any:
    if name == "employee_count":
        return parse_count(value)
    if name == "industry":
        return industry_from_text(value)
    if name == "revenue_band":
        return revenue_band_from_amount(value)
    if name == "domain":
        return domain_from_text(value)
    if name == "prefecture":
        return prefecture_from_text(value)
    return str(value).strip()


def _apply_field(
    data: LeadData,
    rules: dict[str, str],
    keep_unmapped: bool,
    source_field: str,
    value: Any,
    parts: dict[str, str],
) -> None:
    target = rules.get(source_field)
    if target is None:
        if keep_unmapped and (_scalar(value) or isinstance(value, list | dict)):
            data.attributes[str(source_field)] = value
            data.origins[f"attributes.{source_field}"] = source_field
        return
    if target == "":
        return
    if target.startswith("attributes."):
        data.attributes[target.removeprefix("attributes.")] = value
        data.origins[target] = source_field
        return
    if not _scalar(value):
        raise ValueProblem(_("expected a single value, got %(value)r.") % {"value": value})
    data.origins[{"prefecture": "company.prefecture"}.get(target, target)] = source_field
    if target == "email":
        data.email = clean_email(value)
    elif target == "external_id":
        data.external_id = str(value).strip()
    elif target == "full_name":
        parts["full_name"] = str(value)
        data.origins.setdefault("last_name", source_field)
        data.origins.setdefault("first_name", source_field)
    elif target == "full_name_kana":
        parts["full_name_kana"] = str(value)
        data.origins.setdefault("last_name_kana", source_field)
        data.origins.setdefault("first_name_kana", source_field)
    elif target == "card_exchanged_on":
        data.card_exchanged_on = str(value).strip()
    elif target == "address":
        parts["address"] = str(value).strip()
        data.origins.setdefault("company.prefecture", source_field)
    elif target == "prefecture":
        data.company["prefecture"] = prefecture_from_text(value)
    elif target.startswith("company."):
        data.company[target.removeprefix("company.")] = _company_value(
            target.removeprefix("company."), value
        )
    elif target == "role":
        data.attributes["role"] = role_from_title(value)
    else:
        data.attributes[target] = str(value).strip()


def lead_data_from_fields(mapping: dict[str, Any], fields: dict[str, Any]) -> LeadData:
    """Translate a flat dict of sender fields through a source mapping. Raises
    ValueProblem for a value that cannot be stored (an e-mail that is not one, an
    employee count that is not a number)."""
    rules: dict[str, str] = mapping.get("fields", {})
    keep_unmapped = bool(mapping.get("keep_unmapped", False))
    data = LeadData()
    parts = {"full_name": "", "full_name_kana": "", "address": ""}
    for source_field, value in fields.items():
        if value is None or value == "" or value == [] or value == {}:
            continue
        try:
            _apply_field(data, rules, keep_unmapped, source_field, value, parts)
        except ValueProblem as problem:
            problem.field = problem.field or str(source_field)
            raise
    full_name, full_name_kana = parts["full_name"], parts["full_name_kana"]
    address = parts["address"]
    if full_name and not (data.attributes.get("last_name") or data.attributes.get("first_name")):
        last, first = split_full_name(full_name)
        data.attributes["last_name"] = last
        if first:
            data.attributes["first_name"] = first
    has_kana = data.attributes.get("last_name_kana") or data.attributes.get("first_name_kana")
    if full_name_kana and not has_kana:
        last, first = split_full_name(full_name_kana)
        data.attributes["last_name_kana"] = last
        if first:
            data.attributes["first_name_kana"] = first
    if address:
        data.attributes["address"] = address
        if not data.company.get("prefecture"):
            data.company["prefecture"] = prefecture_from_text(address)
    if data.attributes.get("job_title") and not data.attributes.get("role"):
        data.attributes["role"] = role_from_title(data.attributes["job_title"])
        data.origins.setdefault("role", data.origin("job_title"))
    data.company = {k: v for k, v in data.company.items() if v not in (None, "")}
    data.attributes = {k: v for k, v in data.attributes.items() if v not in (None, "")}
    return data


def kind_for_url(mapping: dict[str, Any], url: str, default: str) -> str:
    lowered = (url or "").lower()
    for part, kind in mapping.get("url_kinds", []):
        if part.lower() in lowered:
            return kind
    return default


def kind_for_name(rules: dict[str, str], *names: Any) -> str:
    for name in names:
        if name not in (None, "") and str(name) in rules:
            return rules[str(name)]
    return ""


# --- Outbound: a lead → a destination's objects ---------------------------------------

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

DESTINATION_DEFAULT_MAPPINGS: dict[str, dict[str, dict[str, Any]]] = {
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


def destination_mapping_default(kind: str) -> dict[str, dict[str, Any]]:
    return copy.deepcopy(DESTINATION_DEFAULT_MAPPINGS.get(kind, {}))


def destination_mapping_problem(mapping: Any) -> str | None:
    """A readable problem with an operator-edited destination mapping, or None if usable."""
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


def destination_objects(mapping: dict[str, Any], data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each object's target fields with their values from the message data (see
    integrations/outbound/payload.py); empty values are left out."""
    objects: dict[str, dict[str, Any]] = {}
    for obj, fields in mapping.items():
        values = {}
        for target, source in fields.items():
            value = _evaluate(source, data)
            if value not in (None, ""):
                values[target] = value
        objects[obj] = values
    return objects
