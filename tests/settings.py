"""Settings for the test run: the real settings, with what a developer's shell lacks."""

import os

# A developer's .env (make run writes one: DEBUG=1, PUBLIC_BASE_URL with their PORT, maybe
# another DATABASE_URL) must not change what the tests see, here or in the workers and
# settings checks they start as subprocesses (which inherit this). LEADFLOW_ENV_FILE=<path>
# still reads one on purpose.
os.environ.setdefault("LEADFLOW_ENV_FILE", "")
os.environ.setdefault("SECRET_KEY", "tests-only-not-secret")
_here = os.path.dirname(os.path.abspath(__file__))
# `make test` runs pytest-xdist processes gw0, gw1, …; pytest-django gives each its own
# test database (test_<name>_gw0 …). Each also gets its own var/ folder, broker keys and
# cache keys, below, so nothing one process does reaches another: the real Celery workers
# some tests start inherit PYTEST_XDIST_WORKER and these settings, and take only the
# tasks of the process that started them.
_XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
os.environ.setdefault(
    "LEADFLOW_VAR_DIR", os.path.join(_here, "..", "var", "test", *filter(None, [_XDIST_WORKER]))
)

from leadflow.settings import *  # noqa: E402, F403

# No collectstatic before tests: serve from the app folders without a manifest.
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
os.makedirs(STATIC_ROOT, exist_ok=True)  # noqa: F405 - whitenoise warns when it is missing

# The test client and the live server speak plain http; the https redirect of the
# production settings is tested on its own (tests/leadflow/test_operations.py).
SECURE_SSL_REDIRECT = False

# The test client's login() has no request; django-axes needs one. The lockout test turns
# axes back on for itself.
AXES_ENABLED = False

# Tasks enqueued by tests that commit (browser tests) go to an in-memory broker, unless a
# real one is configured (CI's Redis run, where the worker tests need it).
if not os.environ.get("CELERY_BROKER_URL") and not os.environ.get("REDIS_URL"):
    CELERY_BROKER_URL = "memory://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {}

if _XDIST_WORKER and CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        **CELERY_BROKER_TRANSPORT_OPTIONS,
        "global_keyprefix": f"{_XDIST_WORKER}:",
    }
if _XDIST_WORKER and CACHES["default"]["BACKEND"].endswith("RedisCache"):  # noqa: F405
    # tests/integrations/conftest.py clears only the keys under this prefix.
    CACHES = {"default": {**CACHES["default"], "KEY_PREFIX": _XDIST_WORKER}}  # noqa: F405
