"""Fuzzing the API against its own OpenAPI schema (schemathesis, in-process, no network).

Every operation in /api/schema/ is called with generated valid and invalid input, as a
superuser (so every code path past the permission checks is reached), against the world
of the permission matrix (leads, handoffs, tokens). Checks: never a 5xx, the answer's
content type and body match the schema (errors too: they are documented with the one
error shape). The examples are derandomised and bounded so CI is repeatable and quick;
set FUZZ_EXAMPLES to dig deeper locally.

The two webhook doors (intake, SFA feedback) are plain Django views outside the schema;
tests/integrations/test_webhook_fuzz.py fuzzes them with hypothesis directly.
"""

from __future__ import annotations

import json
import os

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.utils import translation
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from tests.test_permission_matrix import build_world

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))


def _openapi() -> dict:
    # Built in-process (no request, no database): what /api/schema/ serves.
    with translation.override("en"):
        document = SchemaGenerator().get_schema(request=None, public=True)
        return json.loads(OpenApiJsonRenderer().render(document))


schema = schemathesis.openapi.from_dict(_openapi())


@pytest.fixture
def wsgi_app(db):
    # Django closes "old" connections at every request's start and end; in a test that
    # would close the connection holding the test's transaction (Django's test client
    # switches this off the same way).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def world(db):
    return build_world()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_never_fails_and_answers_as_documented(case, wsgi_app, world):
    # Fetched per call: the fuzzer itself may revoke or replace the token (account/token).
    token, _created = Token.objects.get_or_create(user=world.admin)
    case.call_and_validate(
        app=wsgi_app,
        headers={"Authorization": f"Token {token.key}"},
        checks=[not_a_server_error, content_type_conformance, response_schema_conformance],
    )
