"""The image builds what runs: every package is copied before `pip install .`, and the
static files are collected with DEBUG off (there is no docker on CI to build it)."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _lines_before(marker: str) -> list[str]:
    lines = [line.strip() for line in DOCKERFILE.splitlines()]
    return lines[: lines.index(marker)]


def test_every_installed_package_is_copied_before_the_install():
    found = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = [pattern.rstrip("*") for pattern in found["packages"]["find"]["include"]]
    before = _lines_before("RUN pip install .")

    missing = [name for name in packages if f"COPY {name} ./{name}" not in before]

    assert packages, "pyproject.toml lists the packages"
    assert missing == []


def test_collectstatic_runs_with_debug_off():
    build = re.search(r"^RUN (.*collectstatic.*)$", DOCKERFILE, re.MULTILINE)

    assert build is not None
    assert build.group(1).startswith("DEBUG=0 SECRET_KEY=")


def test_the_build_context_leaves_the_local_virtualenv_and_database_out():
    ignored = (ROOT / ".dockerignore").read_text().splitlines()

    assert {".venv", "db.sqlite3*", "var/", ".git"} <= set(ignored)
