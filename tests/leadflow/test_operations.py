import datetime as dt
import io
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.urls import reverse

from leadflow import health
from leadflow.models import Heartbeat
from leadflow.services import heartbeat_record
from leadflow.tasks import beat_heartbeat
from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parents[2]


def test_healthz_answers_without_touching_anything(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


NOW = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)


@pytest.mark.django_db
def test_readyz_checks_database_broker_and_beat(client):
    heartbeat_record(name="beat", at=NOW - dt.timedelta(seconds=12))

    with time_machine.travel(NOW, tick=False):
        response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "broker": "ok", "beat": "ok"},
        "beat": {"last_tick_age_seconds": 12.0, "stale_after_seconds": 120},
    }


@pytest.mark.django_db
def test_readyz_is_503_naming_beat_when_its_last_tick_is_too_old(client, settings):
    settings.BEAT_STALE_SECONDS = 120
    heartbeat_record(name="beat", at=NOW - dt.timedelta(seconds=121))

    with time_machine.travel(NOW, tick=False):
        response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {
            "database": "ok",
            "broker": "ok",
            "beat": "stale: last tick 121 s ago (limit 120 s)",
        },
        "beat": {"last_tick_age_seconds": 121.0, "stale_after_seconds": 120},
    }


@pytest.mark.django_db
def test_a_fresh_install_waits_for_beats_first_tick_then_fails(client, settings, monkeypatch):
    settings.BEAT_STALE_SECONDS = 120
    assert not Heartbeat.objects.exists()

    monkeypatch.setattr(health, "_PROCESS_STARTED", time.monotonic() - 100)
    waiting = client.get("/readyz")
    assert waiting.status_code == 200
    assert waiting.json()["checks"]["beat"] == "waiting for the first tick"
    assert waiting.json()["beat"]["last_tick_age_seconds"] is None

    monkeypatch.setattr(health, "_PROCESS_STARTED", time.monotonic() - 130)
    never = client.get("/readyz")
    assert never.status_code == 503
    assert (
        never.json()["checks"]["beat"] == "stale: no tick in the 120 s since this process started"
    )


@pytest.mark.django_db
def test_the_heartbeat_task_stores_the_tick_in_one_row():
    with time_machine.travel(NOW, tick=False):
        beat_heartbeat()
    with time_machine.travel(NOW + dt.timedelta(seconds=30), tick=False):
        beat_heartbeat()

    assert list(Heartbeat.objects.values_list("name", "beat_at")) == [
        ("beat", NOW + dt.timedelta(seconds=30))
    ]


@pytest.mark.django_db
def test_beat_health_fails_on_a_stale_or_missing_tick_and_passes_on_a_fresh_one(settings):
    settings.BEAT_STALE_SECONDS = 120
    with pytest.raises(CommandError, match="beat: stale: no tick recorded yet"):
        call_command("beat_health")

    heartbeat_record(name="beat", at=NOW - dt.timedelta(seconds=121))
    with (
        time_machine.travel(NOW, tick=False),
        pytest.raises(CommandError, match=r"beat: stale: last tick 121 s ago \(limit 120 s\)"),
    ):
        call_command("beat_health")

    heartbeat_record(name="beat", at=NOW - dt.timedelta(seconds=5))
    out = io.StringIO()
    with time_machine.travel(NOW, tick=False):
        call_command("beat_health", stdout=out)
    assert out.getvalue() == "beat: ok, last tick 5 s ago\n"


@pytest.mark.django_db
def test_readyz_is_503_when_the_broker_is_down(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"].startswith("error: ")


@pytest.mark.django_db
def test_every_response_carries_a_request_id_and_keeps_the_callers(client):
    generated = client.get("/healthz")["X-Request-ID"]
    assert len(generated) == 32
    given = client.get("/healthz", HTTP_X_REQUEST_ID="lb-1234")
    assert given["X-Request-ID"] == "lb-1234"


@pytest.mark.django_db
def test_request_id_reaches_the_log_record(client, caplog):
    logger = logging.getLogger("leadflow.test")

    from django_guid import get_guid, set_guid

    set_guid("req-42")
    try:
        with caplog.at_level(logging.INFO):
            logger.info("processing")
        from django_guid.log_filters import CorrelationId

        record = caplog.records[-1]
        CorrelationId().filter(record)
        assert record.correlation_id == "req-42" == get_guid()
    finally:
        set_guid(None)


def test_request_id_travels_into_celery_task_headers():
    from django_guid import set_guid
    from django_guid.integrations.celery.signals import publish_task_from_worker_or_request

    headers: dict = {}
    set_guid("req-77")
    try:
        publish_task_from_worker_or_request(headers=headers)
    finally:
        set_guid(None)
    assert headers["X-Request-ID"] == "req-77"


@pytest.mark.django_db
def test_password_guessing_locks_the_username_from_that_address(client, settings):
    settings.AXES_ENABLED = True
    UserFactory(username="rep-a", password="right-password-1")
    url = reverse("login")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = client.post(url, {"username": "rep-a", "password": "wrong"})
        assert response.status_code == 200
    assert client.post(url, {"username": "rep-a", "password": "wrong"}).status_code == 429

    locked = client.post(url, {"username": "rep-a", "password": "right-password-1"})

    assert locked.status_code == 429
    assert "Too many attempts" in locked.content.decode()
    assert "Try again in 15 minutes" in locked.content.decode()
    assert "_auth_user_id" not in client.session


def _production_settings(args: list[str], **env: str) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        # The browser tests set DJANGO_ALLOW_ASYNC_UNSAFE for their own process only.
        if k not in {"DEBUG", "DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}
        and not k.startswith(("SECURE_", "LEADFLOW_SECURE"))
    }
    clean.update(
        {
            "DJANGO_SETTINGS_MODULE": "leadflow.settings",
            "DEBUG": "0",
            "SECRET_KEY": "k" * 60 + "-not-a-real-secret-but-long-and-random-enough-9f8e7d",
            **env,
        }
    )
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_deploy_checks_pass_with_the_production_settings_the_readme_gives():
    # README "Access": DEBUG off, a long SECRET_KEY, LEADFLOW_SECURE_COOKIES=1; nothing else.
    result = _production_settings(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        LEADFLOW_SECURE_COOKIES="1",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


SECURITY = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.SESSION_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, "
    "s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD)"
)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "True True 31536000 True True"),
        # A plain-http setup (docker-compose on a laptop) turns https off in one place.
        ({"LEADFLOW_SECURE_COOKIES": "0"}, "False False 31536000 False False"),
        ({"SECURE_HSTS_PRELOAD": "0"}, "True True 31536000 True False"),
        ({"DEBUG": "1"}, "False False 0 False False"),
    ],
)
def test_https_settings_follow_one_switch_and_each_can_be_set(env, expected):
    result = _production_settings(["-c", SECURITY], **env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


def test_http_is_redirected_to_https_except_the_probes(client, settings):
    settings.SECURE_SSL_REDIRECT = True

    page = client.get("/accounts/login/?next=/inbox/")

    assert page.status_code == 301
    assert page["Location"] == "https://testserver/accounts/login/?next=/inbox/"
    assert client.get("/healthz").status_code == 200
    assert client.get("/healthz", secure=True).status_code == 200


def test_a_tls_proxy_is_believed_only_when_told_to(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    forwarded = {"x-forwarded-proto": "https"}

    assert client.get("/accounts/login/", headers=forwarded).status_code == 301
    # What USE_X_FORWARDED_HEADERS=1 sets:
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert client.get("/accounts/login/", headers=forwarded).status_code == 200
