from __future__ import annotations

import pytest
from django.conf import settings


def pytest_collection_modifyitems(config, items):
    # Tests that need a real server run where one is configured (CI) and are skipped,
    # with the reason shown, on the default SQLite + filesystem-broker run.
    on_postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    on_redis = settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://"))
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://...")
    skip_redis = pytest.mark.skip(reason="needs Redis: set CELERY_BROKER_URL=redis://...")
    # Under `make test` (pytest-xdist, --dist loadgroup) the browser tests run one after
    # another in one process: two Chromiums and their live servers on two loaded cores
    # time out, and they gain nothing from running beside each other.
    browser_group = pytest.mark.xdist_group("browser")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(browser_group)
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(skip_pg)
        if "redis" in item.keywords and not on_redis:
            item.add_marker(skip_redis)


@pytest.fixture(autouse=True)
def _english_and_fast(settings):
    # Error messages are asserted in English; the UI default stays Japanese elsewhere.
    settings.LANGUAGE_CODE = "en"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="module")
def demo_data(django_db_setup, django_db_blocker):
    """The demo (`load_demo`) loaded once for a whole module, as Django's
    TestCase.setUpTestData does: the load runs in an outer transaction kept open for the
    module, each test runs in its own transaction inside it (a savepoint) and is rolled
    back, and the outer one is rolled back at the end, so no other module sees the demo.
    Loading it takes seconds (it goes through the real services); a dozen tests that each
    loaded it were a third of `make test`.

    Returns the network calls attempted during the load: the demo must make none."""
    import io

    import httpx
    from django.core.management import call_command
    from django.test import TestCase, override_settings

    attempted: list[str] = []

    def no_network(transport, request):
        attempted.append(str(request.url))
        raise httpx.ConnectError("the demo must not call out", request=request)

    with django_db_blocker.unblock():
        atomics = TestCase._enter_atomics()
        try:
            with (
                override_settings(
                    LANGUAGE_CODE="en",
                    PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
                ),
                pytest.MonkeyPatch.context() as patch,
            ):
                patch.setattr(httpx.HTTPTransport, "handle_request", no_network)
                call_command("load_demo", stdout=io.StringIO())
        except BaseException:
            TestCase._rollback_atomics(atomics)
            raise
    yield attempted
    with django_db_blocker.unblock():
        TestCase._rollback_atomics(atomics)
