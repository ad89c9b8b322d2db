"""POST /api/v1/intake/<slug>/ — the one door every inbound webhook comes through.

Order of checks, cheapest and least revealing first: which source (404) and whether it
is on (403 — never 410, which makes Mautic delete the webhook), the size (413, before
the body is read), authenticity on the raw bytes (401), the source's rate (429; after
authentication, so strangers cannot use up a sender's quota), then JSON and its shape
(400 with a pointer). Only then is the request stored — durably, before the 202 — and
processing is left to a Celery task enqueued when that transaction commits.
"""

from __future__ import annotations

import json
import logging
import time

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from integrations import selectors, services
from integrations.base import Delivery, ShapeError, loads_without_nul
from integrations.bodies import BodyTooLarge, LengthRequired, body_read, length_required
from integrations.ratelimit import rate_limit_hit
from integrations.registry import ADAPTERS
from integrations.signing import SignatureError
from leadflow.api.errors import error_response

logger = logging.getLogger(__name__)

# Kept with the event for support and audits. Never the Marketo token header: that one
# is the secret itself.
STORED_HEADERS = (
    "Content-Type",
    "Content-Length",
    "User-Agent",
    "X-Origin-Base-URL",
    "Webhook-Signature",
    "X-HubSpot-Signature",
    "X-HubSpot-Signature-Version",
    "X-HubSpot-Signature-v3",
    "X-HubSpot-Request-Timestamp",
    "X-LeadFlow-Signature",
    "X-Forwarded-For",
    "X-Request-Id",
)


def public_uris(request: HttpRequest) -> tuple[str, ...]:
    """The URLs the sender may have called us by, for vendors that sign the URL.

    Behind a proxy Django sees http://backend:8000/...; HubSpot signed https://public/...
    PUBLIC_BASE_URL says what the public URL is; forwarded headers say it per request.
    Trying each is safe: a candidate only matters if the MAC made with the secret
    matches it.
    """
    query = request.META.get("QUERY_STRING", "")
    path = request.path_info + (f"?{query}" if query else "")
    uris = [settings.PUBLIC_BASE_URL.rstrip("/") + path]
    proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip()
    host = request.headers.get("X-Forwarded-Host", "").split(",")[0].strip()
    try:
        own_host = request.get_host()
    except DisallowedHost:
        own_host = ""
    if proto or host:
        uris.append(f"{proto or request.scheme}://{host or own_host}{request.get_full_path()}")
    if own_host:
        uris.append(f"{request.scheme}://{own_host}{request.get_full_path()}")
    return tuple(dict.fromkeys(uris))


@csrf_exempt
def intake(request: HttpRequest, slug: str) -> JsonResponse:
    if request.method != "POST":
        return error_response(
            "method_not_allowed", _("Send webhooks with POST."), 405, headers={"Allow": "POST"}
        )
    source = selectors.source_by_slug(slug=slug)
    if source is None:
        return error_response("unknown_source", _("No intake source “%s”.") % slug, 404)
    if not source.enabled:
        return error_response(
            "source_disabled", _("This intake source is switched off in LeadFlow."), 403
        )

    limit = settings.INTAKE_MAX_BODY_BYTES
    try:
        body = body_read(request, limit=limit)
    except BodyTooLarge:
        return error_response(
            "payload_too_large",
            _("The body is larger than %(limit)d bytes; send smaller batches.") % {"limit": limit},
            413,
        )
    except LengthRequired:
        return length_required()

    adapter = ADAPTERS[source.kind]
    delivery = Delivery(
        method=request.method,
        uris=public_uris(request),
        headers=request.headers,
        body=body,
        now=time.time(),
    )
    try:
        adapter.verify(source=source, delivery=delivery)
    except SignatureError as error:
        return error_response(error.code, error.message, 401)

    retry_after = rate_limit_hit(f"intake:{source.pk}:{source.slug}", source.rate_limit_per_minute)
    if retry_after:
        return error_response(
            "rate_limited",
            _("Too many requests for this source; retry in %(s)d seconds.") % {"s": retry_after},
            429,
            headers={"Retry-After": str(retry_after)},
        )

    try:
        text = body.decode("utf-8")
        payload = loads_without_nul(text)
    except UnicodeDecodeError as error:
        return error_response(
            "invalid_json",
            _("The body is not UTF-8 (byte %(at)d).") % {"at": error.start},
            400,
            fields={"body": [_("not UTF-8")]},
        )
    except (ValueError, RecursionError) as error:
        where = (
            _("line %(line)d column %(col)d") % {"line": error.lineno, "col": error.colno}
            if isinstance(error, json.JSONDecodeError)
            else _("nesting too deep")
        )
        message = error.msg if isinstance(error, json.JSONDecodeError) else str(error)
        return error_response(
            "invalid_json",
            _("The body is not JSON: %(error)s at %(where)s.") % {"error": message, "where": where},
            400,
            fields={"body": [where]},
        )
    try:
        adapter.parse(payload, source=source)
        dedup_key = adapter.dedup_key(payload, body)
    except ShapeError as error:
        return error_response(
            "invalid_payload",
            _("The body is not a %(kind)s payload: %(error)s")
            % {"kind": source.get_kind_display(), "error": str(error)},
            400,
            fields={error.pointer or "/": [error.message]},
        )
    except Exception:
        # An adapter tripping over a shape it did not foresee is still bad input, not
        # our outage: answer 400 and keep the trace for whoever fixes the adapter.
        logger.exception("Adapter %s could not read a body for source %s", source.kind, slug)
        return error_response(
            "invalid_payload",
            _("The body could not be read as a %(kind)s payload.")
            % {"kind": source.get_kind_display()},
            400,
            fields={"/": [_("unexpected structure")]},
        )

    headers = {name: request.headers[name] for name in STORED_HEADERS if name in request.headers}
    headers["Remote-Addr"] = request.META.get("REMOTE_ADDR", "")
    event, created = services.inbound_event_receive(
        source=source, body=text, headers=headers, dedup_key=dedup_key
    )
    if created:
        return JsonResponse({"status": "accepted", "id": event.pk}, status=202)
    return JsonResponse(
        {"status": "duplicate", "id": event.pk, "duplicate_of": event.duplicate_of_id}, status=200
    )
