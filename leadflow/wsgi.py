"""The WSGI application: the signed webhook doors behind a short middleware stack.

A webhook is a machine posting a signed body: no browser, no cookie, no session, no
user. Of the fourteen middlewares every page needs, most do work for a browser on every
request (CSP builds its policy, sessions and messages read cookies, CSRF and axes look
for a user); on the intake door that was a fifth of a webhook's own CPU (issue #17).
Requests whose path starts with one of settings.WEBHOOK_PATH_PREFIXES go to a handler
built with settings.WEBHOOK_MIDDLEWARE instead: the request id, the https redirect and
security headers, the sender's language for error messages, the slash redirect and the
NUL check keep answering exactly as before. Both handlers use the same URLconf, so a
webhook path a browser opens by hand still resolves (and a 404 is still the API's).
"""

import os
from collections.abc import Iterable
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadflow.settings")


class WebhookHandler(WSGIHandler):
    """A WSGIHandler whose middleware chain is settings.WEBHOOK_MIDDLEWARE."""

    def load_middleware(self, is_async: bool = False) -> None:
        from django.conf import settings

        # BaseHandler.load_middleware reads settings.MIDDLEWARE and nothing else; it runs
        # once, at import, before any request, so the swap is seen by no request.
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = settings.WEBHOOK_MIDDLEWARE
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full


def split_by_path(
    pages: WSGIApplication, webhooks: WSGIApplication, prefixes: tuple[str, ...]
) -> WSGIApplication:
    """One WSGI callable: `webhooks` for paths under `prefixes`, `pages` for the rest."""

    def application(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith(prefixes):
            return webhooks(environ, start_response)
        return pages(environ, start_response)

    return application


def _application() -> WSGIApplication:
    pages = get_wsgi_application()  # django.setup() first: the settings below are read
    from django.conf import settings

    return split_by_path(pages, WebhookHandler(), tuple(settings.WEBHOOK_PATH_PREFIXES))


application = _application()
