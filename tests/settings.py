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
