"""The intake bench's floor: a bare Django view that parses the JSON body and does one
INSERT, served by gunicorn beside LeadFlow (`gunicorn bench.bare_intake:application`).

Same Django, same database settings (LeadFlow's DATABASES: persistent connections with
health checks), same URL; no middleware, no signature, no source lookup, no duplicate
check, no broker. What LeadFlow's intake costs above this is the price of its checks.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("SECRET_KEY", "bench-only-not-secret")

import django
from django.conf import settings

TABLE = "bench_bare_event"
CREATE_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (id bigserial PRIMARY KEY, external_id text NOT NULL,"
    " payload jsonb NOT NULL, received_at timestamptz NOT NULL DEFAULT now())"
)

if not settings.configured:
    from leadflow import settings as app_settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY=os.environ["SECRET_KEY"],
        ALLOWED_HOSTS=["*"],
        DATABASES=app_settings.DATABASES,
        ROOT_URLCONF=__name__,
        MIDDLEWARE=[],
        INSTALLED_APPS=[],
        USE_TZ=True,
    )
    django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.db import connection  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.urls import path  # noqa: E402


def intake(request: HttpRequest, slug: str) -> HttpResponse:
    payload = json.loads(request.body)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (external_id, payload) VALUES (%s, %s)",
            [str(payload.get("id", "")), request.body.decode()],
        )
    return HttpResponse(b'{"status": "accepted"}', status=202, content_type="application/json")


urlpatterns = [path("api/v1/intake/<slug:slug>/", intake)]
application = get_wsgi_application()
