"""Request id, response time and slow-request logging for every response."""

import logging
import re
import time
import uuid

from django.conf import settings
from django.http import JsonResponse

logger = logging.getLogger("anima.requests")

_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def request_id_for(client_id: str) -> str:
    """The client's ``X-Request-ID`` when it is sane, else a new UUID."""
    return client_id if _CLIENT_REQUEST_ID.match(client_id) else str(uuid.uuid4())


class RequestContextMiddleware:
    """Echo a sane ``X-Request-ID`` (or make one), add ``X-Response-Time: <ms>ms``, log slow requests."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        request.request_id = request_id_for(request.headers.get("X-Request-ID", ""))
        response = self.get_response(request)
        elapsed_ms = (time.perf_counter() - started) * 1000
        response["X-Request-ID"] = request.request_id
        response["X-Response-Time"] = f"{elapsed_ms:.1f}ms"
        if elapsed_ms > settings.ANIMA_SLOW_REQUEST_MS:
            logger.warning(
                "slow request %s %s %s %.1fms request_id=%s",
                request.method,
                request.path,
                response.status_code,
                elapsed_ms,
                request.request_id,
            )
        return response


class BodySizeLimitMiddleware:
    """Refuse a request body over ``ANIMA_MAX_BODY_BYTES`` before anything reads it (413).

    Requests that declare their length are refused up front; a chunked body is measured
    (and refused with the same 413) by ``anima_site.wsgi.ChunkedBodyApplication``, which
    gives it a ``Content-Length`` before Django sees it.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.ANIMA_MAX_BODY_BYTES:
            from anima_site.api import body_too_large_message, error_body

            return JsonResponse(error_body(request, "PAYLOAD_TOO_LARGE", body_too_large_message()), status=413)
        return self.get_response(request)
