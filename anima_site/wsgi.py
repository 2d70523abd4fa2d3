"""WSGI entry point (gunicorn: ``anima_site.wsgi:application``) — the only one: Anima is
served under WSGI (there is no ASGI entry point, whose body handling this does not cover).

Django reads a body only as far as ``Content-Length``, so a ``Transfer-Encoding: chunked``
request (no length) would reach the views empty. ``ChunkedBodyApplication`` wraps Django:
when the server has already de-chunked the input (``wsgi.input_terminated``, as gunicorn
does) it reads the body, up to ``ANIMA_MAX_BODY_BYTES``,
and hands Django a sized one; a larger body is 413, and a server that cannot de-chunk
gets 411 — both in the API's error envelope. The unread rest of a refused body is the
server's to discard (gunicorn does so before the connection's next request).
"""

import io
import json
import os

from django.core.wsgi import get_wsgi_application

#: Read a chunked body in pieces of this size.
READ_BLOCK_BYTES = 64 * 1024
LENGTH_REQUIRED = "A chunked request body needs a server that de-chunks it; send Content-Length instead."


class ChunkedBodyApplication:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        codings = [coding.strip().lower() for coding in environ.get("HTTP_TRANSFER_ENCODING", "").split(",")]
        if "chunked" not in codings:
            return self.app(environ, start_response)
        if not environ.get("wsgi.input_terminated"):
            return _error(environ, start_response, "411 Length Required", "LENGTH_REQUIRED", LENGTH_REQUIRED)

        from django.conf import settings

        from anima_site.api import body_too_large_message

        limit = settings.ANIMA_MAX_BODY_BYTES
        body = _read_at_most(environ["wsgi.input"], limit + 1)
        if len(body) > limit:
            message = body_too_large_message()
            return _error(environ, start_response, "413 Payload Too Large", "PAYLOAD_TOO_LARGE", message)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ["wsgi.input"] = io.BytesIO(body)
        del environ["HTTP_TRANSFER_ENCODING"]
        return self.app(environ, start_response)


def _read_at_most(stream, size: int) -> bytes:
    parts, total = [], 0
    while total < size:
        part = stream.read(min(READ_BLOCK_BYTES, size - total))
        if not part:
            break
        parts.append(part)
        total += len(part)
    return b"".join(parts)


def _error(environ, start_response, status: str, code: str, message: str):
    """The API's error envelope, built without Django (no request object exists yet)."""
    from types import SimpleNamespace

    from anima_site.api import error_body
    from anima_site.middleware import request_id_for

    request = SimpleNamespace(request_id=request_id_for(environ.get("HTTP_X_REQUEST_ID", "")))
    payload = json.dumps(error_body(request, code, message)).encode()
    start_response(
        status,
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(payload))),
            ("X-Request-ID", request.request_id),
        ],
    )
    return [payload]


os.environ.setdefault("DJANGO_SETTINGS_MODULE", "anima_site.settings")
application = ChunkedBodyApplication(get_wsgi_application())
