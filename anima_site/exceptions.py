"""The one exception handler: every error a view raises, in the envelope of ``anima_site.api``.

``exception_handler`` (``REST_FRAMEWORK["EXCEPTION_HANDLER"]``) first maps the domain's
exceptions (memory not found or merged, content conflict, supersession refused, embedder down) and the
database's to their API errors, lets DRF's own handler run (it keeps headers such as
``Retry-After`` and rolls back the atomic block), then shapes every error into
``{"success": false, "error": {"code", "message", "details"?}, "meta": {...}}``. It is
the foundation's one module that knows the domain's exceptions (the settings name it).
"""

import logging

from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, InterfaceError, OperationalError, transaction
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from anima_site.api import (
    ApiError,
    Conflict,
    DatabaseUnavailable,
    EmbeddingUnavailable,
    MemoryNotFound,
    PayloadTooLarge,
    error_body,
)
from memories.embeddings.base import EmbeddingError
from memories.errors import (
    ContentConflictError,
    InvalidSupersessionError,
    MemoryNotFoundError,
    SupersessionConflictError,
)

logger = logging.getLogger("anima.api")

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
    request = context.get("request")
    if isinstance(exc, MemoryNotFoundError):
        details = {"memoryId": str(exc.memory_id)}
        if exc.merged_into:
            details["mergedInto"] = str(exc.merged_into)
        exc = MemoryNotFound("Memory not found." if not exc.merged_into else "Memory was merged into another.", details=details)
    elif isinstance(exc, ContentConflictError):
        exc = Conflict("Another memory of this namespace has this content.", details={"existingId": str(exc.existing_id)})
    elif isinstance(exc, SupersessionConflictError):
        details = {"memoryId": str(exc.memory_id), "supersededBy": str(exc.superseded_by) if exc.superseded_by else None}
        successor = f" by {exc.superseded_by}" if exc.superseded_by else ""
        exc = Conflict(f"Memory {exc.memory_id} is already superseded{successor}; correct the current one.", details=details)
    elif isinstance(exc, InvalidSupersessionError):
        exc = exceptions.ValidationError({exc.field: [exc.message]})
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
