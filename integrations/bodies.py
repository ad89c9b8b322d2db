"""Reading a webhook's raw body with a size limit, with or without a Content-Length.

Django reads a request body by CONTENT_LENGTH: a body sent with Transfer-Encoding: chunked
(no length) reads as b"", so a correctly signed chunked webhook failed its signature
check (401), and a 10 MB one was a 401 too instead of a 413. gunicorn decodes chunked
bodies and marks its input as ending where the body ends (wsgi.input_terminated, PEP
3333's extension), so the body can be read from the WSGI input itself; a server that
does not say so would block reading a stream with no end, so that request is refused
with 411 Length Required instead.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.utils.translation import gettext as _

from leadflow.api.errors import error_response

CHUNK = 64 * 1024


class BodyTooLarge(Exception):
    """More than the limit was declared or sent (413)."""


class LengthRequired(Exception):
    """A body without a length, on a server that cannot say where it ends (411)."""


def body_read(request: HttpRequest, *, limit: int) -> bytes:
    """The raw body, at most `limit` bytes: BodyTooLarge past it (declared or sent, never
    more than limit + 1 bytes read), LengthRequired when it cannot be read safely."""
    meta = request.META
    try:
        declared = int(meta.get("CONTENT_LENGTH") or -1)
    except ValueError:
        declared = -1
    if declared > limit:
        raise BodyTooLarge()
    if declared >= 0:
        # request.read stops at the declared length: a body longer than it said is cut
        # there, and one byte past the limit is all that is ever read.
        body = request.read(limit + 1)
    elif "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower():
        if not meta.get("wsgi.input_terminated"):
            raise LengthRequired()
        body = _read_terminated(meta["wsgi.input"], limit + 1)
    else:
        body = b""  # neither a length nor chunks: HTTP says there is no body
    if len(body) > limit:
        raise BodyTooLarge()
    return body


def _read_terminated(stream, most: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    while size < most:
        part = stream.read(min(CHUNK, most - size))
        if not part:
            break
        parts.append(part)
        size += len(part)
    return b"".join(parts)


def length_required() -> JsonResponse:
    """The 411 answer, in the API's error shape, for both webhook doors."""
    return error_response(
        "length_required",
        _("Send the body with a Content-Length (this server cannot read chunked bodies)."),
        411,
    )
