"""Fuzzing the API against its own OpenAPI schema (schemathesis, in-process, no network).

Every operation in /api/schema/ is called with generated valid and invalid input as a
rep, as a sales manager and as a superuser (who reaches every code path past the
permission checks), against the world of the permission matrix (leads, handoffs,
tokens), with every check schemathesis has: never a 5xx; status, content type, headers
and body as documented (errors too: the one error shape); input the schema calls invalid
refused, input it calls valid not refused as malformed; an operation needing a token
refuses a request without one (ignored_auth re-sends it through `schema.app`).

One setting, not an exclusion: positive_data_acceptance also takes 422. A schema says
which requests are well formed, not which are allowed: "reject without a comment",
"accept with one BANT yes", "a range of 400 days" are valid requests that a business
rule refuses, and the API answers those 422, documented on each operation that can
(leadflow.api.schema). A 400 for valid input still fails the check: the schema would be
wrong about what is malformed.

The examples are derandomised and bounded (FUZZ_EXAMPLES per operation and role) so CI
is repeatable and quick; set FUZZ_EXAMPLES to dig deeper locally.

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
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.config import SchemathesisConfig

from tests.test_permission_matrix import build_world

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))


def _openapi() -> dict:
    # Built in-process (no request, no database): what /api/schema/ serves.
    with translation.override("en"):
        document = SchemaGenerator().get_schema(request=None, public=True)
        return json.loads(OpenApiJsonRenderer().render(document))


# An explicit configuration (not a schemathesis.toml found on the way): the default
# statuses of positive_data_acceptance plus 422, the documented business-rule refusal.
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]
            }
        }
    }
)


schema = schemathesis.openapi.from_dict(_openapi(), config=CONFIG)
schema.app = WSGIHandler()  # where checks that re-send a request (ignored_auth) send it
load_all_checks()
ALL_CHECKS = CHECKS.get_all()


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


@pytest.mark.parametrize("role", ["rep_a", "manager", "admin"])
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_never_fails_and_answers_as_documented(case, wsgi_app, world, role):
    # Fetched per call: the fuzzer itself may revoke or replace the token (account/token).
    token, _created = Token.objects.get_or_create(user=getattr(world, role))
    case.call_and_validate(
        app=wsgi_app, headers={"Authorization": f"Token {token.key}"}, checks=ALL_CHECKS
    )
