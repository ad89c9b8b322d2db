"""`make run`'s .env: written once, PUBLIC_BASE_URL kept in step with PORT, read by every
process under the real environment, and never by CI or the tests unless asked."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from leadflow.env import env_file_path, load_env_file, read_env_file
from leadflow.localenv import local_env_write, main

ROOT = Path(__file__).resolve().parents[2]


def _python(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """This checkout's Python in another process, as another terminal would run it."""
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


# --- reading ---------------------------------------------------------------------------


def test_read_env_file_skips_comments_and_strips_one_pair_of_quotes(tmp_path):
    path = tmp_path / ".env"
    path.write_text(
        "# comment\n\nDEBUG=1\nexport SECRET_KEY='a b'\nEMPTY=\nURL=\"http://x/?a=b\"\nRAW=$HOME\n"
    )

    assert read_env_file(path) == {
        "DEBUG": "1",
        "SECRET_KEY": "a b",
        "EMPTY": "",
        "URL": "http://x/?a=b",
        "RAW": "$HOME",
    }


def test_read_env_file_names_the_line_it_cannot_read(tmp_path):
    path = tmp_path / ".env"
    path.write_text("DEBUG=1\nthis is not a variable\n")

    with pytest.raises(ImproperlyConfigured, match=r"\.env:2: expected KEY=value"):
        read_env_file(path)


def test_load_env_file_fills_only_what_the_environment_lacks(tmp_path):
    path = tmp_path / ".env"
    path.write_text("DEBUG=1\nPUBLIC_BASE_URL=http://127.0.0.1:8101\n")
    environ = {"PUBLIC_BASE_URL": "https://tunnel.example.com"}

    load_env_file(path, environ)

    assert environ == {"DEBUG": "1", "PUBLIC_BASE_URL": "https://tunnel.example.com"}


def test_a_missing_default_env_file_is_nothing_but_a_missing_named_one_is_an_error(tmp_path):
    environ: dict[str, str] = {}
    load_env_file(tmp_path / ".env", environ)
    assert environ == {}

    named = {"LEADFLOW_ENV_FILE": str(tmp_path / "typo.env")}
    with pytest.raises(ImproperlyConfigured, match=r"LEADFLOW_ENV_FILE=.*typo\.env.*no such"):
        load_env_file(env_file_path(tmp_path, named), named)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, ".env"),
        ({"CI": "false"}, ".env"),
        ({"CI": "true"}, None),
        ({"CI": "1"}, None),
        ({"LEADFLOW_ENV_FILE": ""}, None),
        ({"LEADFLOW_ENV_FILE": "other.env"}, "other.env"),
        ({"CI": "true", "LEADFLOW_ENV_FILE": "other.env"}, "other.env"),
    ],
)
def test_which_env_file_is_read(tmp_path, environ, expected):
    found = env_file_path(tmp_path, environ)

    assert found == (tmp_path / expected if expected else None)


def test_the_test_run_reads_no_env_file():
    # tests/settings.py: a developer's .env must not change what the tests see.
    assert os.environ["LEADFLOW_ENV_FILE"] == ""


def test_manage_py_in_another_terminal_runs_with_the_env_file_and_no_other_setting(tmp_path):
    path = tmp_path / ".env"
    local_env_write(path=path, port=8101, base_dir=tmp_path)
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DEBUG", "SECRET_KEY", "PUBLIC_BASE_URL", "DATABASE_URL", "CI"}
        and not key.startswith(("LEADFLOW_", "DJANGO_"))
    }
    env["LEADFLOW_ENV_FILE"] = str(path)

    result = _python(
        "manage.py",
        "shell",
        "--verbosity=0",
        "-c",
        "from django.conf import settings as s; "
        "print(s.DEBUG, s.PUBLIC_BASE_URL, s.DATABASES['default']['NAME'])",
        env=env,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "http://127.0.0.1:8101", str(tmp_path / "db.sqlite3")]


# --- writing (make run) ----------------------------------------------------------------


def test_the_first_run_writes_debug_a_secret_key_the_url_of_the_port_and_the_paths(tmp_path):
    path = tmp_path / ".env"

    written = local_env_write(path=path, port=8101, base_dir=tmp_path)

    values = read_env_file(path)
    assert written == ["DEBUG", "SECRET_KEY", "PUBLIC_BASE_URL", "DATABASE_URL", "LEADFLOW_VAR_DIR"]
    assert values["DEBUG"] == "1"
    assert len(values["SECRET_KEY"]) >= 50
    assert values["PUBLIC_BASE_URL"] == "http://127.0.0.1:8101"
    assert values["DATABASE_URL"] == f"sqlite:///{tmp_path / 'db.sqlite3'}"
    assert values["LEADFLOW_VAR_DIR"] == str(tmp_path / "var")
    # Not written as a value: it would hide REDIS_URL, which the broker otherwise follows.
    assert "CELERY_BROKER_URL" not in values
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_two_first_runs_make_two_different_secret_keys(tmp_path):
    local_env_write(path=tmp_path / "a.env", port=8000, base_dir=tmp_path)
    local_env_write(path=tmp_path / "b.env", port=8000, base_dir=tmp_path)

    keys = {read_env_file(tmp_path / name)["SECRET_KEY"] for name in ("a.env", "b.env")}
    assert len(keys) == 2


def test_a_later_run_on_another_port_moves_only_public_base_url(tmp_path):
    path = tmp_path / ".env"
    local_env_write(path=path, port=8000, base_dir=tmp_path)
    with path.open("a") as file:
        file.write("HANDOFF_SLACK_WEBHOOK_URL=https://hooks.example.com/x\n")
    before = read_env_file(path)

    written = local_env_write(path=path, port=8101, base_dir=tmp_path)

    after = read_env_file(path)
    assert written == ["PUBLIC_BASE_URL"]
    assert after == {**before, "PUBLIC_BASE_URL": "http://127.0.0.1:8101"}
    assert path.read_text().count("PUBLIC_BASE_URL=") == 1


def test_the_same_port_changes_nothing(tmp_path):
    path = tmp_path / ".env"
    local_env_write(path=path, port=8101, base_dir=tmp_path)
    text = path.read_text()

    assert local_env_write(path=path, port=8101, base_dir=tmp_path) == []
    assert path.read_text() == text


def test_a_public_base_url_set_by_hand_is_kept_whatever_the_port(tmp_path):
    path = tmp_path / ".env"
    path.write_text("SECRET_KEY=mine\nPUBLIC_BASE_URL=https://leadflow.example.ngrok.app\n")

    assert local_env_write(path=path, port=8101, base_dir=tmp_path) == []
    assert read_env_file(path) == {
        "SECRET_KEY": "mine",
        "PUBLIC_BASE_URL": "https://leadflow.example.ngrok.app",
    }


def test_a_file_without_secret_key_or_url_gets_them_appended(tmp_path):
    path = tmp_path / ".env"
    path.write_text("DEBUG=1")  # no trailing newline

    written = local_env_write(path=path, port=8101, base_dir=tmp_path)

    values = read_env_file(path)
    assert written == ["SECRET_KEY", "PUBLIC_BASE_URL"]
    assert values["DEBUG"] == "1"
    assert values["PUBLIC_BASE_URL"] == "http://127.0.0.1:8101"
    assert values["SECRET_KEY"]


@pytest.mark.parametrize(("port", "message"), [("0", "is not a TCP port"), ("80a", "not a whole")])
def test_a_bad_port_is_refused_and_no_file_is_written(tmp_path, capsys, port, message):
    path = tmp_path / ".env"

    assert main(["--port", port, "--file", str(path)]) == 2

    assert message in capsys.readouterr().err
    assert not path.exists()


# --- make run's terminal -----------------------------------------------------------------

LOG_PROBE = """
import logging, django
django.setup()
logging.getLogger("django.utils.autoreload").info("probe: autoreload info")
logging.getLogger("celery.beat").info("probe: beat sends a due task")
logging.getLogger("django.server").info("probe: GET /inbox/ 200")
logging.getLogger("celery.app.trace").error("probe: task raised")
logging.getLogger("kombu.connection").warning("probe: no hostname")
"""


def test_at_warning_only_request_lines_and_failures_reach_the_terminal():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CELERY_"))}
    env.update(DJANGO_SETTINGS_MODULE="leadflow.settings", DEBUG="1", LOG_LEVEL="WARNING")
    env.pop("REDIS_URL", None)

    result = _python("-c", LOG_PROBE, env=env)

    assert result.returncode == 0, result.stderr
    probes = [line.split("probe: ")[1] for line in result.stderr.splitlines() if "probe: " in line]
    assert probes == ["GET /inbox/ 200", "task raised"]
