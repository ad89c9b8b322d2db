"""Bad configuration must stop the process at start with a message naming the variable."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BOOT = "import django; django.setup(); print('booted')"


def boot(**env: str) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "DEBUG", "SECRET_KEY", "CELERY_BROKER_URL", "REDIS_URL"}
    }
    clean.update({"DJANGO_SETTINGS_MODULE": "leadflow.settings", **env})
    return subprocess.run(
        [sys.executable, "-c", BOOT],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_defaults_with_debug_boot_on_sqlite_and_filesystem_broker():
    result = boot(DEBUG="1")
    assert result.returncode == 0, result.stderr
    assert "booted" in result.stdout


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "SECRET_KEY must be set when DEBUG is off"),
        ({"DEBUG": "maybe"}, "DEBUG='maybe' is not a boolean"),
        (
            {"DEBUG": "1", "DATABASE_URL": "mysql://root@localhost/x"},
            "DATABASE_URL='mysql://root@localhost/x' has scheme 'mysql'",
        ),
        ({"DEBUG": "1", "CELERY_BROKER_URL": "ftp://x"}, "CELERY_BROKER_URL='ftp://x'"),
        ({"DEBUG": "1", "REDIS_URL": "http://x"}, "REDIS_URL='http://x'"),
        ({"DEBUG": "1", "EMAIL_PORT": "twenty-five"}, "EMAIL_PORT='twenty-five' is not a whole"),
        ({"DEBUG": "1", "LANGUAGE_CODE": "fr"}, "LANGUAGE_CODE='fr' is not one of: en, ja"),
        ({"DEBUG": "1", "LOG_LEVEL": "LOUD"}, "LOG_LEVEL='LOUD' is not one of"),
        ({"DEBUG": "1", "CELERY_TASK_TIME_LIMIT": "0"}, "CELERY_TASK_TIME_LIMIT=0 is below"),
    ],
)
def test_bad_values_fail_fast_naming_the_variable(env, expected):
    result = boot(**env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert expected in result.stderr


def test_postgres_and_redis_urls_are_taken_as_given():
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.DATABASES['default']['NAME'], "
        "s.CELERY_BROKER_URL)"
    )
    clean = {k: v for k, v in os.environ.items() if k not in {"CELERY_BROKER_URL"}}
    clean.update(
        {
            "DJANGO_SETTINGS_MODULE": "leadflow.settings",
            "SECRET_KEY": "x",
            "DATABASE_URL": "postgres://u:p@db.internal:5432/leadflow",
            "REDIS_URL": "redis://cache.internal:6379/0",
        }
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.postgresql",
        "leadflow",
        "redis://cache.internal:6379/0",
    ]


def _db_options(**env: str) -> str:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings;"
            " print(settings.DATABASES['default'].get('OPTIONS', {}).get('options'))",
        ],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "leadflow.settings", "DEBUG": "1", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_postgresql_connections_turn_jit_off_unless_the_url_sets_options():
    assert _db_options(DATABASE_URL="postgres://u@127.0.0.1:5432/x") == "-c jit=off"
    given = "postgres://u@127.0.0.1:5432/x?options=-c%20statement_timeout%3D5000"
    assert _db_options(DATABASE_URL=given) == "-c statement_timeout=5000"
    assert _db_options(DATABASE_URL="sqlite:///x.sqlite3") == "None"


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_app_s_postgresql_connection_has_jit_off():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone() == ("off",)
