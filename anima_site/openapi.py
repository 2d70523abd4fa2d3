"""OpenAPI descriptions of the envelope, so that the schema at /api/schema/ is exact.

Every ``/api/v1`` operation documents its success body as
``{"success": true, "data": <its data>, "meta": {...}}`` and every error status it may
answer as ``{"success": false, "error": {...}, "meta": {...}}``. Views use
:func:`api_responses`; schemathesis checks the live answers against the result.
"""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

ERROR_CODES = [
    "VALIDATION_ERROR",
    "INVALID_TIER",
    "UNAUTHORIZED",
    "FORBIDDEN",
    "MEMORY_NOT_FOUND",
    "NOT_FOUND",
    "METHOD_NOT_ALLOWED",
    "CONFLICT",
    "PAYLOAD_TOO_LARGE",
    "UNSUPPORTED_MEDIA_TYPE",
    "RATE_LIMITED",
    "EMBEDDING_UNAVAILABLE",
    "DATABASE_UNAVAILABLE",
    "INTERNAL_ERROR",
]


class ResponseMeta(serializers.Serializer):
    requestId = serializers.CharField()
    timestamp = serializers.DateTimeField()


class ErrorDetail(serializers.Serializer):
    code = serializers.ChoiceField(choices=ERROR_CODES)
    message = serializers.CharField()
    details = serializers.DictField(required=False)


class ErrorEnvelope(serializers.Serializer):
    success = serializers.BooleanField()
    error = ErrorDetail()
    meta = ResponseMeta()


_ERROR_TEXT = {
    400: "Invalid input (the fields are named in error.details.fields)",
    401: "No, unknown or revoked API key",
    403: "The key's scope does not allow this",
    404: "No such memory in this namespace",
    409: "Another memory of the namespace has this content",
    413: "Request body too large",
    415: "Bodies are JSON",
    429: "Too many requests for this key (Retry-After)",
    500: "Internal error (no details are shown)",
    503: "The database or the embedding provider is unavailable; nothing was written",
}
COMMON_ERRORS = (400, 401, 403, 429, 500, 503)
BODY_ERRORS = (413, 415)


def envelope(name: str, data) -> serializers.Serializer:
    return inline_serializer(
        name=name, fields={"success": serializers.BooleanField(), "data": data, "meta": ResponseMeta()}
    )


def api_responses(ok: dict, *, extra_errors=(), body: bool = False) -> dict:
    """``ok``: {status: (schema name, data serializer)} plus the error envelopes."""
    responses = {status: envelope(name, data) for status, (name, data) in ok.items()}
    for status in sorted({*COMMON_ERRORS, *extra_errors, *(BODY_ERRORS if body else ())}):
        responses[status] = OpenApiResponse(response=ErrorEnvelope, description=_ERROR_TEXT[status])
    return responses


class EnvelopeAutoSchema(AutoSchema):
    """No Anima route answers a bare JSON array: never wrap a ``list`` action's response in one."""

    def _is_list_view(self, serializer=None):
        return False

    def get_operation_id(self):
        operation_id = super().get_operation_id()
        if getattr(self.view, "action", None) == "list" and operation_id.endswith("_retrieve"):
            operation_id = operation_id.removesuffix("_retrieve") + "_list"
        return operation_id
