"""Strict readers for environment variables.

Every reader names the variable in its error, so a typo in a deployment fails at
start-up with a message an operator can act on instead of a confusing error later.
"""

from __future__ import annotations

import os
import re
from collections.abc import MutableMapping
from pathlib import Path
from urllib.parse import urlparse

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name}={raw!r} is not a boolean; use one of 1/0, true/false, yes/no, on/off."
    )


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number.") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} is below the minimum of {minimum}.")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_url(name: str, default: str, *, schemes: set[str]) -> str:
    """A URL whose scheme must be one of `schemes` (e.g. a broker or database URL)."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip()
    scheme = urlparse(value).scheme
    if scheme not in schemes:
        allowed = ", ".join(sorted(schemes))
        raise ImproperlyConfigured(
            f"{name}={value!r} has scheme {scheme!r}; expected one of: {allowed}."
        )
    return value


def env_choice(name: str, default: str, *, choices: set[str]) -> str:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip()
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} is not one of: {', '.join(sorted(choices))}.")
    return value


# --- The local .env file ---------------------------------------------------------------
# `make run` writes <project>/.env (leadflow/localenv.py) so that `manage.py` in another
# terminal runs with the same settings. Variables of the real environment always win.

ENV_FILE_VARIABLE = "LEADFLOW_ENV_FILE"
_ENV_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def env_file_path(base_dir: Path, environ: MutableMapping[str, str] = os.environ) -> Path | None:
    """The env file the settings read, or None.

    LEADFLOW_ENV_FILE names it (a path; empty: none). Unset, it is <project>/.env, except
    on CI: a CI run's settings come from its script alone, and a .env left in the checkout
    (by `make run` in the smoke test, or a cached workspace) must not change what later
    steps see. The test settings set it empty for the same reason (tests/settings.py).
    """
    if ENV_FILE_VARIABLE in environ:
        raw = environ[ENV_FILE_VARIABLE].strip()
        return (base_dir / raw) if raw else None
    if environ.get("CI", "").strip().lower() not in _FALSE:
        return None
    return base_dir / ".env"


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines; `#` comments and blank lines are skipped, one pair of surrounding
    quotes is removed, nothing is expanded. Anything else is an error naming the line."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _ENV_LINE.match(stripped)
        if not match:
            raise ImproperlyConfigured(f"{path}:{number}: expected KEY=value, got {line!r}.")
        key, value = match.group(1), match.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key] = value
    return values


def load_env_file(path: Path | None, environ: MutableMapping[str, str] = os.environ) -> None:
    """Put the file's variables into the environment where they are not set already.

    A missing default .env is normal (a production server, a fresh clone before its first
    `make run`); a file named in LEADFLOW_ENV_FILE that is missing is a mistake."""
    if path is None:
        return
    if not path.is_file():
        if ENV_FILE_VARIABLE in environ:
            raise ImproperlyConfigured(f"{ENV_FILE_VARIABLE}={str(path)!r}: no such file.")
        return
    for key, value in read_env_file(path).items():
        environ.setdefault(key, value)
