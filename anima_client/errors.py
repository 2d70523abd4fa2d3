"""Typed errors: one class per error code of the API (SPEC §3), all under ``AnimaError``.

Every error carries what the envelope said — ``code``, ``message``, ``details`` — plus the
HTTP ``status`` and the ``request_id`` that finds the request in the service's log.
``error_from_response`` is the one place that maps a response to a class.
"""

from __future__ import annotations

from email.utils import parsedate_to_datetime
from datetime import datetime, timezone
from typing import Any

import httpx


class AnimaError(Exception):
    """Base class: an answer from Anima that is not a success (or no answer at all)."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "ERROR",
        status: int | None = None,
        details: dict[str, Any] | None = None,
        request_id: str | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.details = details or {}
        self.request_id = request_id

    def __str__(self) -> str:
        where = f" (request {self.request_id})" if self.request_id else ""
        return f"{self.code}: {self.message}{where}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, status={self.status!r}, message={self.message!r})"

    @property
    def memory_id(self) -> str | None:
        """The memory the error is about, when it names one (``details.memoryId``)."""
        return self.details.get("memoryId")


class ValidationError(AnimaError):
    """400 ``VALIDATION_ERROR``: ``fields`` names every bad field and why."""

    @property
    def fields(self) -> dict[str, list[str]]:
        return dict(self.details.get("fields") or {})


class InvalidTier(ValidationError):
    """400 ``INVALID_TIER`` (update-tier with an unknown tier)."""


class Unauthorized(AnimaError):
    """401: no key, or an unknown or revoked one."""


class Forbidden(AnimaError):
    """403: the key's scope does not allow this request (e.g. a ``read`` key adding)."""


class NotFound(AnimaError):
    """404 ``MEMORY_NOT_FOUND`` or ``NOT_FOUND``. ``merged_into`` is set for a merged memory."""

    @property
    def merged_into(self) -> str | None:
        return self.details.get("mergedInto")


class MethodNotAllowed(AnimaError):
    """405."""


class Conflict(AnimaError):
    """409 ``CONFLICT``: another memory of the namespace has this content (``existing_id``),
    or the memory to correct is already superseded (``memory_id``, ``superseded_by``)."""

    @property
    def existing_id(self) -> str | None:
        return self.details.get("existingId")

    @property
    def superseded_by(self) -> str | None:
        return self.details.get("supersededBy")


class PayloadTooLarge(AnimaError):
    """413."""


class UnsupportedMediaType(AnimaError):
    """415."""


class RateLimited(AnimaError):
    """429: over the key's rate. ``retry_after`` is the server's ``Retry-After`` in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(AnimaError):
    """5xx: ``INTERNAL_ERROR`` or a server that did not answer with an envelope."""


class ServiceUnavailable(ServerError):
    """503: the service cannot answer now; retried by the client before it is raised."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class EmbeddingUnavailable(ServiceUnavailable):
    """503 ``EMBEDDING_UNAVAILABLE``: the embedding provider is down; nothing was written."""


class DatabaseUnavailable(ServiceUnavailable):
    """503 ``DATABASE_UNAVAILABLE``."""


class AnimaConnectionError(AnimaError):
    """No HTTP answer at all (refused, reset, timed out) after the retries."""


_BY_CODE: dict[str, type[AnimaError]] = {
    "VALIDATION_ERROR": ValidationError,
    "INVALID_TIER": InvalidTier,
    "UNAUTHORIZED": Unauthorized,
    "FORBIDDEN": Forbidden,
    "MEMORY_NOT_FOUND": NotFound,
    "NOT_FOUND": NotFound,
    "METHOD_NOT_ALLOWED": MethodNotAllowed,
    "CONFLICT": Conflict,
    "PAYLOAD_TOO_LARGE": PayloadTooLarge,
    "UNSUPPORTED_MEDIA_TYPE": UnsupportedMediaType,
    "RATE_LIMITED": RateLimited,
    "EMBEDDING_UNAVAILABLE": EmbeddingUnavailable,
    "DATABASE_UNAVAILABLE": DatabaseUnavailable,
    "INTERNAL_ERROR": ServerError,
}

_BY_STATUS: dict[int, tuple[str, type[AnimaError]]] = {
    400: ("VALIDATION_ERROR", ValidationError),
    401: ("UNAUTHORIZED", Unauthorized),
    403: ("FORBIDDEN", Forbidden),
    404: ("NOT_FOUND", NotFound),
    405: ("METHOD_NOT_ALLOWED", MethodNotAllowed),
    409: ("CONFLICT", Conflict),
    413: ("PAYLOAD_TOO_LARGE", PayloadTooLarge),
    415: ("UNSUPPORTED_MEDIA_TYPE", UnsupportedMediaType),
    429: ("RATE_LIMITED", RateLimited),
    503: ("SERVICE_UNAVAILABLE", ServiceUnavailable),
}


def retry_after_seconds(response: httpx.Response) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date), or None when absent or unreadable."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def error_from_response(response: httpx.Response) -> AnimaError:
    """The typed error for a non-success response (an envelope or, from a proxy, anything else)."""
    request_id = response.headers.get("X-Request-ID")
    body: Any = None
    try:
        body = response.json()
    except ValueError:
        pass
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and "code" in error:
        code = str(error["code"])
        message = str(error.get("message") or code)
        details = error.get("details") if isinstance(error.get("details"), dict) else {}
        meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
        request_id = meta.get("requestId") or request_id
        cls = _BY_CODE.get(code) or _BY_STATUS.get(response.status_code, ("", _fallback_class(response.status_code)))[1]
    else:
        code, cls = _BY_STATUS.get(response.status_code, (f"HTTP_{response.status_code}", _fallback_class(response.status_code)))
        message = f"HTTP {response.status_code} {response.reason_phrase or ''}".strip()
        details = {}
    kwargs: dict[str, Any] = {"code": code, "status": response.status_code, "details": details, "request_id": request_id}
    if issubclass(cls, (RateLimited, ServiceUnavailable)):
        kwargs["retry_after"] = retry_after_seconds(response)
    return cls(message, **kwargs)


def _fallback_class(status: int) -> type[AnimaError]:
    return ServerError if status >= 500 else AnimaError
