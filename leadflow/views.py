from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from leadflow.api.errors import error_body
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
