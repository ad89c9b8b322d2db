"""The file behind a CSV dry run, kept so "import these rows" imports exactly it.

The browser cannot be asked to send the file again (a file input cannot be prefilled),
and a second upload could be another file than the one previewed. So the dry run keeps
the bytes, with the source and event it was checked with, in the cache:

- one preview per user (a new dry run replaces the previous one), so a user holds at
  most one file of at most the upload limit;
- bound to the user by the key and to the page by a random token, so another user, or an
  older preview page of the same user, cannot import it;
- gone after `PREVIEW_SECONDS` or once imported.

With REDIS_URL the cache is shared by every web process; without it (the local-memory
cache) it is the one development server's memory, which is all `make run` starts.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.core.cache import caches

PREVIEW_SECONDS = 30 * 60


@dataclass(frozen=True)
class CsvPreview:
    token: str
    data: bytes
    source: str
    event: str
    filename: str


def _key(user_id: int | None) -> str:
    return f"csv-import-preview:{user_id}"


def csv_preview_keep(
    *, user_id: int | None, data: bytes, source: str, event: str, filename: str
) -> str:
    """Keep the file for the confirm step; returns the token the confirm form sends."""
    token = secrets.token_urlsafe(24)
    preview = CsvPreview(token=token, data=data, source=source, event=event, filename=filename)
    caches["default"].set(_key(user_id), preview, timeout=PREVIEW_SECONDS)
    return token


def csv_preview_take(*, user_id: int | None, token: str) -> CsvPreview | None:
    """The user's kept file if `token` names it (and forget it), else None."""
    cache = caches["default"]
    preview = cache.get(_key(user_id))
    if not isinstance(preview, CsvPreview) or not secrets.compare_digest(preview.token, token):
        return None
    # delete() says whether this call removed it: of two confirms at once (a double
    # click), only one gets the file.
    if not cache.delete(_key(user_id)):
        return None
    return preview
