"""The `/api/v1` envelope, the error codes of SPEC §3, and the one exception handler.

Views raise; they never build error responses. ``exception_handler`` first lets DRF's
own handler run (it keeps headers such as ``Retry-After`` and rolls back the atomic
block), then shapes every error into
``{"success": false, "error": {"code", "message", "details"?}, "meta": {...}}``.
"""

import logging
from datetime import datetime, timezone

from django.db import DatabaseError, InterfaceError, OperationalError, transaction
from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger("anima.api")


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


_DRF_CODES = {
    exceptions.ParseError: ("VALIDATION_ERROR", "Malformed request body: {detail}"),
    exceptions.NotAuthenticated: ("UNAUTHORIZED", None),
    exceptions.AuthenticationFailed: ("UNAUTHORIZED", None),
    exceptions.PermissionDenied: ("FORBIDDEN", None),
    exceptions.NotFound: ("NOT_FOUND", None),
    exceptions.MethodNotAllowed: ("METHOD_NOT_ALLOWED", None),
    exceptions.UnsupportedMediaType: ("UNSUPPORTED_MEDIA_TYPE", None),
    exceptions.NotAcceptable: ("VALIDATION_ERROR", None),
    exceptions.Throttled: ("RATE_LIMITED", None),
}


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


def _validation_message(detail) -> tuple[str, dict]:
    """'Invalid field: limit, tags' plus {"fields": {name: [messages]}}."""
    if isinstance(detail, dict):
        fields = {name: _flatten(messages) for name, messages in detail.items()}
        names = ", ".join(fields)
        first = next(iter(fields.values()), [""])
        return f"Invalid {names}: {first[0] if first else ''}".strip(), {"fields": fields}
    messages = _flatten(detail)
    return (messages[0] if messages else "Invalid input."), {"fields": {"non_field_errors": messages}}


def _flatten(messages) -> list[str]:
    if isinstance(messages, dict):
        return [f"{key}: {text}" for key, value in messages.items() for text in _flatten(value)]
    if isinstance(messages, (list, tuple)):
        return [text for item in messages for text in _flatten(item)]
    return [str(messages)]


def exception_handler(exc, context):
    from memories.embeddings.base import EmbeddingError
    from memories.errors import ContentConflictError, MemoryNotFoundError

    request = context.get("request")
    if isinstance(exc, MemoryNotFoundError):
        details = {"memoryId": str(exc.memory_id)}
        if exc.merged_into:
            details["mergedInto"] = str(exc.merged_into)
        exc = MemoryNotFound("Memory not found." if not exc.merged_into else "Memory was merged into another.", details=details)
    elif isinstance(exc, ContentConflictError):
        exc = Conflict("Another memory of this namespace has this content.", details={"existingId": str(exc.existing_id)})
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, EmbeddingError):
        logger.warning("embedding provider unavailable: %s", exc)
        exc = EmbeddingUnavailable()
    elif isinstance(exc, (OperationalError, InterfaceError)):
        logger.warning("database unavailable: %s", type(exc).__name__)
        exc = DatabaseUnavailable()
    response = drf_exception_handler(exc, context)
    if response is None:
        # Not an API exception: log the trace here, never show it to the client.
        logger.error("unhandled error", exc_info=exc)
        if isinstance(exc, DatabaseError) and transaction.get_connection().in_atomic_block:
            transaction.set_rollback(True)
        return Response(
            error_body(request, "INTERNAL_ERROR", "Internal error. The request id identifies it in the logs."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    if isinstance(exc, ApiError):
        body = error_body(request, exc.code, str(exc.detail), exc.details)
    elif isinstance(exc, exceptions.ValidationError):
        message, details = _validation_message(exc.detail)
        body = error_body(request, "VALIDATION_ERROR", message, details)
    else:
        code, template = next(
            ((code, template) for kind, (code, template) in _DRF_CODES.items() if isinstance(exc, kind)),
            ("INTERNAL_ERROR" if response.status_code >= 500 else "VALIDATION_ERROR", None),
        )
        detail = str(exc.detail) if hasattr(exc, "detail") else str(exc)
        body = error_body(request, code, template.format(detail=detail) if template else detail)
    response.data = body
    return response


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
