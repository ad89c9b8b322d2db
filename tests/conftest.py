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
