"""`make run`'s local .env: written on the first run, kept in step with PORT afterwards.

`make run` calls `python -m leadflow.localenv --port $PORT` before it migrates. The file
makes `.venv/bin/python manage.py …` in another terminal run with the settings of the
running instance (leadflow/env.py reads it; variables of the real environment win):

- DEBUG=1 and a SECRET_KEY generated once and then kept (a new key would log everybody
  out and invalidate signed links);
- PUBLIC_BASE_URL=http://127.0.0.1:<PORT>, rewritten when PORT changes, so the URLs that
  commands print and e-mails carry point at the server that runs. A value of any other
  form (an https tunnel for a vendor's webhooks) was put there by hand and is kept;
- DATABASE_URL and LEADFLOW_VAR_DIR with the defaults' absolute paths, so a command run
  from another directory finds the same SQLite file and filesystem broker queue.

Lines the developer added or changed are kept as they are.
"""

from __future__ import annotations

import argparse
import re
import secrets
import sys
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from leadflow.env import read_env_file

# The only PUBLIC_BASE_URL this writer owns: the one it derived from PORT.
_DERIVED_PUBLIC_URL = re.compile(r"^http://127\.0\.0\.1:\d+/?$")

_HEADER = """\
# Written by `make run` for local development; git-ignored. Read by the settings of every
# process started in this checkout (manage.py, the worker); real environment variables win.
# `make run` keeps PUBLIC_BASE_URL in step with PORT and leaves your own lines alone.
# Delete this file to start again with a new SECRET_KEY.
"""
_BROKER_NOTE = """\
# The broker is the default: REDIS_URL if set, else the filesystem queue under var/celery.
# CELERY_BROKER_URL=filesystem://
"""


def local_env_write(*, path: Path, port: int, base_dir: Path) -> list[str]:
    """Create or update the .env at `path`; return the names of the variables written."""
    if not 0 < port < 65536:
        raise ValueError(f"PORT={port} is not a TCP port (1-65535).")
    public_url = f"http://127.0.0.1:{port}"
    if not path.exists():
        values = {
            "DEBUG": "1",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "PUBLIC_BASE_URL": public_url,
            "DATABASE_URL": f"sqlite:///{base_dir / 'db.sqlite3'}",
            "LEADFLOW_VAR_DIR": str(base_dir / "var"),
        }
        lines = [f"{key}={value}" for key, value in values.items()]
        path.write_text(_HEADER + "\n".join(lines) + "\n" + _BROKER_NOTE, encoding="utf-8")
        path.chmod(0o600)  # it holds a secret key
        return list(values)

    current = read_env_file(path)
    updates: dict[str, str] = {}
    if "SECRET_KEY" not in current:
        updates["SECRET_KEY"] = secrets.token_urlsafe(50)
    known = current.get("PUBLIC_BASE_URL")
    if known is None or (_DERIVED_PUBLIC_URL.match(known) and known.rstrip("/") != public_url):
        updates["PUBLIC_BASE_URL"] = public_url
    if not updates:
        return []
    text = path.read_text(encoding="utf-8")
    for key, value in updates.items():
        line = f"{key}={value}"
        pattern = re.compile(rf"^(?:export\s+)?{key}=.*$", re.MULTILINE)
        found = pattern.search(text)
        if found:
            text = text[: found.start()] + line + text[found.end() :]
        else:
            text = text + ("" if text.endswith("\n") or not text else "\n") + line + "\n"
    path.write_text(text, encoding="utf-8")
    return list(updates)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", required=True, help="the port `make run` serves on")
    parser.add_argument("--file", type=Path, default=None, help="default: <project>/.env")
    args = parser.parse_args(argv)
    base_dir = Path(__file__).resolve().parent.parent
    path = args.file or base_dir / ".env"
    try:
        port = int(args.port)
    except ValueError:
        print(f"PORT={args.port!r} is not a whole number.", file=sys.stderr)
        return 2
    existed = path.exists()
    try:
        written = local_env_write(path=path, port=port, base_dir=base_dir)
    except (ValueError, ImproperlyConfigured) as error:
        print(error, file=sys.stderr)
        return 2
    if not existed:
        print(f"Wrote {path} for local development ({', '.join(written)}).")
    elif written:
        print(f"Updated {path}: {', '.join(written)}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
