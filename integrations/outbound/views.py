"""SFA → LeadFlow feedback: POST /api/v1/feedback/<destination slug>/.

Signed with the destination's secret in X-LeadFlow-Signature (see integrations.signing).
Body: {"lead": "<e-mail or external id>", "outcome": "opportunity_created|won|lost|
disqualified", "reason": "...", "occurred_at": "<ISO 8601 with offset>", "event_id": "..."}.

Answers: 200 applied / unchanged / duplicate; 400 bad JSON (fields keyed by JSON
pointer); 401 bad signature; 403 destination disabled; 404 unknown destination or lead;
405 not POST; 409 the outcome does not fit the lead's stage; 413 body too large.
Bad input never produces a 500.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from integrations.base import loads_without_nul
from integrations.bodies import BodyTooLarge, LengthRequired, body_read, length_required
from integrations.feedback import feedback_record
from integrations.outbound.models import Destination, FeedbackOutcome
from integrations.signing import SignatureError, verify
from leadflow.api.errors import error_response
from leadflow.datetimes import datetime_problem
from leadflow.errors import DomainError

logger = logging.getLogger(__name__)

MAX_EVENT_ID = 255
MAX_REASON = 2000
MAX_LEAD_REF = 254


def _validate(document: Any) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Clean values and problems keyed by JSON pointer ("/outcome")."""
    if not isinstance(document, dict):
        return {}, {"": [_("The body must be a JSON object.")]}
    problems: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}

    def text(key: str, *, required: bool, limit: int) -> str:
        value = document.get(key)
        if value is None or value == "":
            if required:
                problems[f"/{key}"] = [_("This field is required.")]
            return ""
        if not isinstance(value, str):
            problems[f"/{key}"] = [_("Must be a string.")]
            return ""
        if len(value) > limit:
            problems[f"/{key}"] = [_("At most %(n)d characters.") % {"n": limit}]
            return ""
        return value.strip()

    clean["lead"] = text("lead", required=True, limit=MAX_LEAD_REF)
    clean["event_id"] = text("event_id", required=True, limit=MAX_EVENT_ID)
    clean["reason"] = text("reason", required=False, limit=MAX_REASON)
    outcome = text("outcome", required=True, limit=50)
    if outcome and outcome not in FeedbackOutcome.values:
        problems["/outcome"] = [
            _("Must be one of: %(values)s.") % {"values": ", ".join(FeedbackOutcome.values)}
        ]
    clean["outcome"] = outcome
    raw_when = text("occurred_at", required=False, limit=64)
    when: datetime | None = None
    if raw_when:
        try:
            when = parse_datetime(raw_when)
        except ValueError:
            when = None
        problem = when and datetime_problem(when)
        if when is None:
            problems["/occurred_at"] = [_("Must be an ISO 8601 date and time.")]
        elif problem:
            problems["/occurred_at"] = [problem]
            when = None
        elif timezone.is_naive(when):
            problems["/occurred_at"] = [_("Must include a UTC offset (e.g. +09:00 or Z).")]
            when = None
    clean["occurred_at"] = when or timezone.now()
    return clean, problems


@csrf_exempt
def feedback_receive(request: HttpRequest, slug: str) -> JsonResponse:
    if request.method != "POST":
        return error_response(
            "method_not_allowed",
            _("Use POST."),
            405,
            headers={"Allow": "POST"},
        )
    destination = Destination.objects.filter(slug=slug).first()
    if destination is None:
        return error_response("not_found", _("No such destination."), 404)

    limit = settings.FEEDBACK_MAX_BYTES
    try:
        body = body_read(request, limit=limit)
    except BodyTooLarge:
        return error_response(
            "too_large", _("The body is larger than %(n)d bytes.") % {"n": limit}, 413
        )
    except LengthRequired:
        return length_required()

    header = request.META.get("HTTP_X_LEADFLOW_SIGNATURE", "")
    try:
        verify(destination.feedback_secrets, body, header)
    except SignatureError as problem:
        return error_response(problem.code, problem.message, 401)
    if not destination.enabled:
        return error_response("disabled", _("This destination is disabled."), 403)

    try:
        # No NUL reaches a lookup or the stored payload (see without_nul).
        document = loads_without_nul(body.decode("utf-8"))
    except UnicodeDecodeError:
        return error_response(
            "invalid_json", _("The body is not UTF-8."), 400, fields={"": [_("Not UTF-8.")]}
        )
    except json.JSONDecodeError as exc:
        return error_response(
            "invalid_json",
            _("The body is not valid JSON."),
            400,
            fields={"": [f"line {exc.lineno} column {exc.colno}: {exc.msg}"]},
        )
    except RecursionError:  # [[[[…]]]] past Python's recursion limit: was a 500
        return error_response(
            "invalid_json", _("The body is not valid JSON."), 400, fields={"": ["nesting too deep"]}
        )
    clean, problems = _validate(document)
    if problems:
        first_pointer, first = next(iter(problems.items()))
        return error_response(
            "validation_error", f"{first_pointer or '/'}: {first[0]}", 400, fields=problems
        )

    try:
        receipt = feedback_record(
            destination=destination,
            event_id=clean["event_id"],
            lead_ref=clean["lead"],
            outcome=clean["outcome"],
            reason=clean["reason"],
            occurred_at=clean["occurred_at"],
            payload=document,
        )
    except DomainError as exc:
        return error_response(exc.code, exc.message, exc.status, fields=exc.fields or None)

    event = receipt.event
    status = "duplicate" if receipt.duplicate else str(event.result)
    return JsonResponse(
        {
            "status": status,
            "event_id": event.event_id,
            "lead": event.lead_id,
            "outcome": event.outcome,
            "stage": event.to_stage,
        }
    )
