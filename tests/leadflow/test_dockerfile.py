"""The image builds what runs: the whole project is in place before LeadFlow is
installed (an app added later cannot be left out, as privacy/ was), and the static files
are collected with DEBUG off. There is no docker on CI to build it, so this reads it."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _instructions() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments left out."""
    text = re.sub(r"\\\n", "", (ROOT / "Dockerfile").read_text())
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


def test_leadflow_is_installed_only_once_all_of_it_is_copied():
    steps = _instructions()
    copied = steps.index("COPY . .")
    installs = [i for i, step in enumerate(steps) if re.match(r"RUN pip install\b.* \.$", step)]

    assert installs == [steps.index("RUN pip install --no-deps .")]
    assert copied < installs[0]


def test_the_dependency_layer_installs_what_pyproject_lists():
    steps = _instructions()
    layer = next(step for step in steps if "tomllib" in step)

    assert steps.index(layer) < steps.index("COPY . .")
    assert steps[steps.index(layer) - 1] == "COPY pyproject.toml README.md ./"
    assert "['project']['dependencies']" in layer
    assert "'pip', 'install', *deps" in layer


def test_collectstatic_runs_with_debug_off():
    build = next(step for step in _instructions() if "collectstatic" in step)

    assert build.startswith("RUN DEBUG=0 SECRET_KEY=")


def test_the_build_context_leaves_the_local_virtualenv_and_database_out():
    ignored = (ROOT / ".dockerignore").read_text().splitlines()

    assert {".venv", "db.sqlite3*", "var/", ".git"} <= set(ignored)
