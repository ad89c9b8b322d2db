"""The demo data, loaded once for the tests of this package (see `demo_data`)."""

import pytest

from tests.shared_rows import building, kept_for_many_tests


@pytest.fixture(scope="package")
def demo_data(django_db_setup, django_db_blocker):
    """The demo (`load_demo`) loaded once for this package (tests/shared_rows.py): each
    test runs in its own savepoint inside the load's transaction, and no test outside
    tests/demo/ sees the demo.
    Loading it takes seconds (it goes through the real services); a dozen tests that each
    loaded it were a third of `make test`.

    Returns the network calls attempted during the load: the demo must make none."""
    import io

    import httpx
    from django.core.management import call_command

    attempted: list[str] = []

    def no_network(transport, request):
        attempted.append(str(request.url))
        raise httpx.ConnectError("the demo must not call out", request=request)

    with kept_for_many_tests(django_db_blocker):
        with building(django_db_blocker), pytest.MonkeyPatch.context() as patch:
            patch.setattr(httpx.HTTPTransport, "handle_request", no_network)
            call_command("load_demo", stdout=io.StringIO())
        yield attempted
