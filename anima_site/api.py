"""The `/api/v1` envelope and the error codes of SPEC §3 (imports no app).

A success is ``{"success": true, "data": ..., "meta": {...}}`` (``success``), an error
``{"success": false, "error": {"code", "message", "details"?}, "meta": {...}}``
(``error_body``). Views raise ``ApiError`` subclasses, never build error responses: the
one exception handler (``anima_site.exceptions``) shapes them. The Django-level 400,
403, 404 and 500 views answer in the same envelope.
"""

from datetime import datetime, timezone

from django.http import JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response


class ApiError(exceptions.APIException):
    """An API error with one of the documented codes."""

    code = "INTERNAL_ERROR"
    status_code = status.HTTP_500_INTERNAL_SERVER_ERROR
    default_detail = "Internal error."

    def __init__(self, message: str | None = None, *, details: dict | None = None):
        super().__init__(message or self.default_detail)
        self.details = details


class EmbeddingUnavailable(ApiError):
    code = "EMBEDDING_UNAVAILABLE"
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The embedding provider is unavailable; nothing was written. Retry later."


class DatabaseUnavailable(ApiError):
    code = "DATABASE_UNAVAILABLE"
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The database is unavailable. Retry later."


class MemoryNotFound(ApiError):
    code = "MEMORY_NOT_FOUND"
    status_code = status.HTTP_404_NOT_FOUND
    default_detail = "Memory not found."


class InvalidTier(ApiError):
    code = "INVALID_TIER"
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "Invalid tier."


class PayloadTooLarge(ApiError):
    code = "PAYLOAD_TOO_LARGE"
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."


def body_too_large_message() -> str:
    """The 413's message wherever a body is refused for its size (middleware, WSGI wrapper)."""
    from django.conf import settings

    return f"The request body is larger than {settings.ANIMA_MAX_BODY_BYTES} bytes."


class Conflict(ApiError):
    code = "CONFLICT"
    status_code = status.HTTP_409_CONFLICT
    default_detail = "Conflict."


def request_meta(request, **extra) -> dict:
    meta = {
        "requestId": getattr(request, "request_id", None),
        "timestamp": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
    }
    meta.update(extra)
    return meta


def success(request, data, *, status_code: int = 200, **meta) -> Response:
    """The success envelope; ``meta`` keys are added to ``requestId`` and ``timestamp``."""
    return Response({"success": True, "data": data, "meta": request_meta(request, **meta)}, status=status_code)


def error_body(request, code: str, message: str, details=None) -> dict:
    error = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"success": False, "error": error, "meta": request_meta(request)}


def not_found_view(request, exception=None):
    """Django-level 404 (no route matched) in the envelope."""
    return JsonResponse(error_body(request, "NOT_FOUND", "No such route."), status=404)


def bad_request_view(request, exception=None):
    """Django-level 400 (e.g. too many query fields, a malformed header) in the envelope."""
    return JsonResponse(error_body(request, "VALIDATION_ERROR", "Malformed request."), status=400)


def forbidden_view(request, exception=None):
    return JsonResponse(error_body(request, "FORBIDDEN", "Forbidden."), status=403)


def server_error_view(request):
    return JsonResponse(
        error_body(request, "INTERNAL_ERROR", "Internal error. The request id identifies it in the logs."), status=500
    )
