"""Salesforce: upsert the Lead by an external id field, follow it once it is converted.

Calls (REST API, OAuth bearer):
- token: POST <token URL> (client credentials, or refresh-token grant), cached on the
  destination; on 401 (INVALID_SESSION_ID) it is fetched again once and the call retried.
- PATCH /services/data/vXX.X/sobjects/Lead/<ExtIdField>/<LeadFlow id>: 201 created,
  200 (API ≥ 46) or 204 updated; 300 when the id matches several records (permanent);
  400 [{errorCode, message, fields}] (permanent, e.g. REQUIRED_FIELD_MISSING).
- CANNOT_UPDATE_CONVERTED_LEAD: GET the lead's ConvertedContactId/ConvertedOpportunityId,
  remember them as LeadExternalId "salesforce_contact"/"salesforce_opportunity", and
  send this and every later update to the contact (and the opportunity, if mapped).
Every answer's Sforce-Limit-Info (api-usage=N/M) is kept in the result.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
from django.utils import timezone

from integrations.outbound import selectors
from integrations.outbound.base import (
    USER_AGENT,
    DeliveryError,
    DeliveryResult,
    body_excerpt,
    error_from_response,
    json_or_none,
)
from integrations.outbound.models import Destination, OutboxMessage
from integrations.outbound.tokens import destination_token_store

SYSTEM_LEAD = "salesforce"
SYSTEM_CONTACT = "salesforce_contact"
SYSTEM_OPPORTUNITY = "salesforce_opportunity"


def _errors_text(body: Any) -> tuple[str, str]:
    """(first errorCode, readable text) from Salesforce's [{message, errorCode, fields}]."""
    if isinstance(body, dict):
        body = [body]
    if not isinstance(body, list):
        return "", ""
    parts = []
    first_code = ""
    for item in body:
        if not isinstance(item, dict):
            continue
        code = str(item.get("errorCode") or item.get("statusCode") or "")
        first_code = first_code or code
        text = f"{code}: {item.get('message', '')}".strip(": ")
        fields = item.get("fields")
        if fields:
            text += f" (fields: {', '.join(map(str, fields))})"
        parts.append(text)
    return first_code, "; ".join(parts)


class _Session:
    """One message's calls: bearer token, one refresh on 401, limit info collected."""

    def __init__(self, destination: Destination, client: httpx.Client) -> None:
        self.destination = destination
        self.client = client
        self.info: dict[str, Any] = {}
        version = destination.api_version.lstrip("v") or "60.0"
        self.api = f"{destination.base_url.rstrip('/')}/services/data/v{version}"

    def _fetch_token(self) -> str:
        d = self.destination
        if d.refresh_token:
            form = {"grant_type": "refresh_token", "refresh_token": d.refresh_token}
        else:
            form = {"grant_type": "client_credentials"}
        form.update({"client_id": d.client_id, "client_secret": d.client_secret})
        response = self.client.post(d.token_url, data=form, headers={"User-Agent": USER_AGENT})
        answer = json_or_none(response)
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if response.status_code != 200 or not token:
            detail = ""
            if isinstance(answer, dict):
                detail = f"{answer.get('error', '')}: {answer.get('error_description', '')}"
            # Not permanent: bad credentials are fixed on the destination, and the message
            # then goes out on its next attempt without anyone having to replay it.
            raise DeliveryError(
                f"HTTP {response.status_code}: Salesforce refused the OAuth token request "
                f"({detail.strip(': ') or 'no detail'}); check the destination's credentials.",
                permanent=False,
                status_code=response.status_code,
                body=body_excerpt(response),
                info=self.info,
            )
        destination_token_store(destination=d, token=str(token), at=timezone.now())
        return str(token)

    def call(self, method: str, path: str, *, json: Any = None) -> httpx.Response:
        token = self.destination.access_token or self._fetch_token()
        for attempt in (1, 2):
            response = self.client.request(
                method,
                f"{self.api}{path}",
                json=json,
                headers={"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT},
            )
            limit = response.headers.get("Sforce-Limit-Info")
            if limit:
                self.info["limit_info"] = limit
            if response.status_code != 401 or attempt == 2:
                return response
            # Expired or revoked session (INVALID_SESSION_ID): one fresh token, one retry.
            token = self._fetch_token()
        raise AssertionError("unreachable")

    def fail(self, response: httpx.Response, what: str) -> DeliveryError:
        code, text = _errors_text(json_or_none(response))
        error = error_from_response(response, f"{what}: {text or 'no detail'}", info=self.info)
        # A session refused even after a fresh token, or the org's daily API limit
        # (403 REQUEST_LIMIT_EXCEEDED): both pass with time or a credentials fix, so the
        # message waits and retries instead of going to the dead letter.
        if response.status_code == 401 or code == "REQUEST_LIMIT_EXCEEDED":
            error.permanent = False
        return error


def _upsert_lead(
    session: _Session, destination: Destination, message: OutboxMessage, fields: dict[str, Any]
) -> DeliveryResult | httpx.Response:
    ext_field = destination.external_id_field
    # The external id goes in the URL and never in the body (Salesforce refuses that).
    body = {k: v for k, v in fields.items() if k not in (ext_field, "Id")}
    path = f"/sobjects/Lead/{quote(ext_field)}/{quote(str(message.lead_id))}"
    response = session.call("PATCH", path, json=body)
    status = response.status_code
    if status in (200, 201):
        answer = json_or_none(response)
        remote_id = str(answer.get("id", "")) if isinstance(answer, dict) else ""
        created = status == 201 or (isinstance(answer, dict) and answer.get("created") is True)
        info = {**session.info, "created": created, "object": "Lead"}
        return DeliveryResult(
            status,
            body_excerpt(response),
            remote_id=remote_id,
            info=info,
            external_ids=[(SYSTEM_LEAD, remote_id)] if remote_id else [],
        )
    if status == 204:
        known = selectors.external_id_for(lead_id=message.lead_id, system=SYSTEM_LEAD) or ""
        return DeliveryResult(204, "", remote_id=known, info={**session.info, "object": "Lead"})
    if status == 300:
        answer = json_or_none(response)
        matches = ", ".join(map(str, answer)) if isinstance(answer, list) else ""
        raise DeliveryError(
            f"HTTP 300: {ext_field}={message.lead_id} matches more than one Salesforce "
            f"record ({matches}); merge them in Salesforce, then replay.",
            permanent=True,
            status_code=300,
            body=body_excerpt(response),
            info=session.info,
        )
    return response


def _converted_ids(
    session: _Session, destination: Destination, message: OutboxMessage
) -> tuple[str, str]:
    fields = "Id,IsConverted,ConvertedContactId,ConvertedOpportunityId"
    path = (
        f"/sobjects/Lead/{quote(destination.external_id_field)}/"
        f"{quote(str(message.lead_id))}?fields={fields}"
    )
    response = session.call("GET", path)
    answer = json_or_none(response)
    if response.status_code != 200 or not isinstance(answer, dict):
        raise session.fail(response, "looking up the converted lead failed")
    contact = str(answer.get("ConvertedContactId") or "")
    if not contact:
        raise DeliveryError(
            "Salesforce says the lead is converted but names no converted contact.",
            permanent=True,
            status_code=200,
            body=body_excerpt(response),
            info=session.info,
        )
    return contact, str(answer.get("ConvertedOpportunityId") or "")


def _update_converted(
    session: _Session,
    message: OutboxMessage,
    objects: dict[str, dict[str, Any]],
    contact_id: str,
    opportunity_id: str,
    learned: list[tuple[str, str]],
) -> DeliveryResult:
    targets = [("Contact", contact_id)]
    if opportunity_id and objects.get("Opportunity"):
        targets.append(("Opportunity", opportunity_id))
    last: httpx.Response | None = None
    for sobject, record_id in targets:
        fields = objects.get(sobject) or {}
        if not fields:
            continue
        last = session.call("PATCH", f"/sobjects/{sobject}/{quote(record_id)}", json=fields)
        if last.status_code not in (200, 204):
            raise session.fail(last, f"updating the converted lead's {sobject} failed")
    info = {**session.info, "object": "Contact", "converted": True}
    if opportunity_id:
        info["opportunity_id"] = opportunity_id
    return DeliveryResult(
        last.status_code if last is not None else None,
        body_excerpt(last) if last is not None else "",
        remote_id=contact_id,
        info=info,
        external_ids=learned,
    )


def deliver(
    *, destination: Destination, message: OutboxMessage, client: httpx.Client
) -> DeliveryResult:
    session = _Session(destination, client)
    objects: dict[str, dict[str, Any]] = (message.payload or {}).get("objects") or {}

    contact_id = selectors.external_id_for(lead_id=message.lead_id, system=SYSTEM_CONTACT)
    if contact_id:
        opportunity_id = (
            selectors.external_id_for(lead_id=message.lead_id, system=SYSTEM_OPPORTUNITY) or ""
        )
        return _update_converted(session, message, objects, contact_id, opportunity_id, [])

    outcome = _upsert_lead(session, destination, message, objects.get("Lead") or {})
    if isinstance(outcome, DeliveryResult):
        return outcome
    response = outcome
    code, _text = _errors_text(json_or_none(response))
    if response.status_code == 400 and code == "CANNOT_UPDATE_CONVERTED_LEAD":
        contact_id, opportunity_id = _converted_ids(session, destination, message)
        learned = [(SYSTEM_CONTACT, contact_id)]
        if opportunity_id:
            learned.append((SYSTEM_OPPORTUNITY, opportunity_id))
        return _update_converted(session, message, objects, contact_id, opportunity_id, learned)
    raise session.fail(response, "Salesforce did not accept the lead")
