"""The demo data, loaded once for the tests of this package (see `demo_data`)."""

import pytest


@pytest.fixture(scope="package")
def demo_data(django_db_setup, django_db_blocker):
    """The demo (`load_demo`) loaded once for this package, as Django's
    TestCase.setUpTestData does: the load runs in an outer transaction kept open for the
    package, each test runs in its own transaction inside it (a savepoint) and is rolled
    back, and the outer one is rolled back at the end, so no test outside tests/demo/
    sees the demo.
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
