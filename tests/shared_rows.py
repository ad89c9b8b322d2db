"""Rows built once and read by many tests, as Django's TestCase.setUpTestData does.

A fixture of module (or package) scope builds its rows inside `kept_for_many_tests()`:
an outer transaction that stays open while those tests run. Each test still runs in its
own transaction inside it (a savepoint) that is rolled back, so what one test changes the
next does not see, and the outer transaction is rolled back at the end, so no test
outside the module or package sees the rows. For builders that take seconds (the demo,
a hand-built history) that run once instead of once per test.

A fixture handing out model instances should fetch them again per test (a
function-scoped fixture): an attribute one test sets on a shared instance would
otherwise reach the next test even though the database was rolled back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.test import TestCase, override_settings


@contextmanager
def kept_for_many_tests(django_db_blocker) -> Iterator[None]:
    """An outer transaction kept open until the block ends, then rolled back. Build the
    rows inside `building()`, then yield to the tests from inside this block."""
    with django_db_blocker.unblock():
        # TestCase's own blocks: marked so that atomic(durable=True) in the services
        # still runs inside them, as it does inside a test's transaction.
        atomics = TestCase._enter_atomics()
    try:
        yield
    finally:
        with django_db_blocker.unblock():
            TestCase._rollback_atomics(atomics)


@contextmanager
def building(django_db_blocker) -> Iterator[None]:
    """Database access for the builder, with the settings the per-test autouse fixtures
    set (English, the fast password hasher), which do not apply outside a test."""
    with (
        django_db_blocker.unblock(),
        override_settings(
            LANGUAGE_CODE="en",
            PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        ),
    ):
        yield
