from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from leadflow.api.errors import error_response
from ops.metrics import LeadflowCollector


def _allowed(request: HttpRequest) -> bool:
    """A scraper on an allowed network, or one that shows the token.

    REMOTE_ADDR, not X-Forwarded-For: the forwarded header is whatever the client wrote.
    Behind a proxy, give the scraper the token instead (or list the proxy's network).
    """
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header.removeprefix("Bearer ").encode(), token.encode())
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in network for network in settings.METRICS_ALLOWED_NETWORKS)


@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        return error_response(
            "permission_denied",
            "Metrics are served to the networks in METRICS_ALLOWED_NETWORKS, or with "
            "'Authorization: Bearer <METRICS_TOKEN>'.",
            403,
        )
    # A registry per scrape: the collector reads the database each time and nothing of
    # the process's own (Python GC, process) metrics is mixed in, as they would describe
    # one web process of many.
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LeadflowCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
