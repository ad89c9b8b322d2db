"""Request checks that hold for every URL."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import BadRequest
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import gettext as _

from leadflow.api.errors import error_response


class RejectNulInQueryMiddleware:
    """Answer 400 to a query string with a NUL character (?stage=%00).

    PostgreSQL cannot take a NUL in a text value, so such a value reaching a lookup is a
    500: every admin list filter did that. Forms refuse NULs already; query parameters
    that go straight into a filter (the admin's, django-filter's) do not, so they are
    refused here once for all. The API answers in its error shape."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        bad = sorted(
            {
                name.replace("\x00", "")
                for name, values in request.GET.lists()
                if "\x00" in name or any("\x00" in value for value in values)
            }
        )
        if bad:
            message = _("The query string contains a NUL character.")
            if request.path_info.startswith("/api/"):
                return error_response(
                    "invalid_query", message, 400, fields={name: [message] for name in bad}
                )
            raise BadRequest(message)
        return self.get_response(request)


class NotFoundPageMiddleware:
    """A view that answers "not found" (Http404) shows the product's translated 404 page,
    under DEBUG too.

    Without DEBUG Django does that already (handler404). Under DEBUG it shows its
    technical page with the URL list, and `make run` (the demo people try) runs with
    DEBUG: a rep opening a colleague's handoff got a developer's page. A URL that no
    route matches still gets the technical page under DEBUG (it never reaches a view),
    which is what a developer wants from a typo."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not (settings.DEBUG and isinstance(exception, Http404)):
            return None
        from leadflow.views import page_not_found  # views import much; only needed here

        return page_not_found(request, exception)
