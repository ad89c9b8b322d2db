from __future__ import annotations

from typing import cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe
from kombu import Connection
from rest_framework.authtoken.models import Token

from leadflow import services
from leadflow.api.errors import error_body
from leadflow.health import beat_check
from leadflow.models import User
from leadflow.roles import MARKETING, SALES_MANAGER, SALES_REP


def home(request: HttpRequest) -> HttpResponse:
    roles: set[str] = set()
    if request.user.is_authenticated:
        roles = set(request.user.groups.values_list("name", flat=True))
    return render(
        request,
        "home.html",
        {
            "is_marketing": MARKETING in roles,
            "is_rep": SALES_REP in roles,
            "is_manager": SALES_MANAGER in roles,
        },
    )


def landing_url(user) -> str:
    """Where a user starts after logging in: managers and marketing on the dashboard (their
    figures), reps in their inbox (their work), anyone else on the start page."""
    roles = set(user.groups.values_list("name", flat=True))
    if roles & {SALES_MANAGER, MARKETING}:
        return reverse("sla:dashboard")
    if SALES_REP in roles:
        return reverse("handoff:inbox")
    return reverse("home")


class LoginView(auth_views.LoginView):
    # A ?next= (a link the user followed before logging in) still wins: Django's
    # get_success_url tries it first and falls back to this.
    def get_default_redirect_url(self) -> str:
        return landing_url(self.request.user)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    # API clients get the API's error shape even for URLs no view matched.
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("not_found", _("No such API endpoint.")), status=404)
    return render(request, "404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse(
            error_body("server_error", _("Something went wrong on our side.")), status=500
        )
    return render(request, "500.html", status=500)


@require_safe
def favicon(request: HttpRequest) -> HttpResponse:
    """/favicon.ico, which browsers ask for on pages that name no icon (the admin's): the
    SVG icon. Resolved per request, not at import: under the manifest storage the name
    exists only once collectstatic ran, and every management command imports the URLs.
    Temporary (302): the target's hashed name changes with the icon."""
    return redirect(static("favicon.svg"))


def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up (for liveness probes): no dependency is touched."""
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    """The database and the broker answer, and periodic tasks run (for readiness probes
    and docker-compose). Beat is part of readiness: without it nothing re-enqueues a lost
    webhook, retries an SFA delivery or marks an SLA breach, and nothing else would say."""
    beat = beat_check()
    checks = {"database": _check_database(), "broker": _check_broker(), "beat": beat.status}
    ready = checks["database"] == "ok" and checks["broker"] == "ok" and beat.ok
    return JsonResponse(
        {
            "status": "ok" if ready else "unavailable",
            "checks": checks,
            "beat": {
                "last_tick_age_seconds": None
                if beat.age_seconds is None
                else round(beat.age_seconds, 1),
                "stale_after_seconds": settings.BEAT_STALE_SECONDS,
            },
        },
        status=200 if ready else 503,
    )


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as error:
        return f"error: {error.__class__.__name__}"
    return "ok"


def _check_broker() -> str:
    try:
        with Connection(
            settings.CELERY_BROKER_URL,
            transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS,
            connect_timeout=2,
        ) as broker:
            broker.ensure_connection(max_retries=1, timeout=2)
    except Exception as error:
        return f"error: {error.__class__.__name__}"
    return "ok"


@login_required
def account_token(request: HttpRequest) -> HttpResponse:
    """The user's own API token: see whether there is one, make a new one, revoke it.

    The key is shown once, in the answer to "generate": the page never shows it again,
    so a token left on a screen or in a browser history is not one click away.
    """
    # HEAD as GET: link checkers and monitors probe pages with it (Django strips the body).
    if request.method not in ("GET", "HEAD", "POST"):
        return HttpResponseNotAllowed(["GET", "HEAD", "POST"])
    user = cast(User, request.user)  # login_required: a real user
    new_key = ""
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "regenerate":
            new_key = services.api_token_regenerate(user=user).key
            messages.success(
                request, _("A new API token was created; the old one no longer works.")
            )
        elif action == "revoke":
            if services.api_token_revoke(user=user):
                messages.success(request, _("Your API token was revoked."))
            else:
                messages.info(request, _("You had no API token."))
            return redirect("account-token")
        else:
            return HttpResponse(_("Unknown action."), status=400)
    token = Token.objects.filter(user=user).first()
    response = render(
        request,
        "account/token.html",
        {"token": token, "new_key": new_key, "last4": token.key[-4:] if token else ""},
    )
    add_never_cache_headers(response)  # the answer may hold the key itself
    return response
