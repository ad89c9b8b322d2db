"""Settings for the test run: the real settings, with what a developer's shell lacks."""

import os

os.environ.setdefault("SECRET_KEY", "tests-only-not-secret")
_here = os.path.dirname(os.path.abspath(__file__))
os.environ.setdefault("LEADFLOW_VAR_DIR", os.path.join(_here, "..", "var", "test"))

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
