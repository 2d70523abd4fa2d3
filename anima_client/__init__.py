"""Anima's Python client, command-line tool (``anima``) and MCP server (``anima-mcp``).

    from anima_client import AnimaClient, NotFound

    with AnimaClient() as anima:      # ANIMA_URL (default http://127.0.0.1:8000), ANIMA_API_KEY
        anima.add("Dana is allergic to peanuts.", category="health", tags=["dana"])
        hits = anima.query("What should Dana avoid?", conversation_id="conv-42").memories
"""

from anima_client.async_client import AsyncAnimaClient
from anima_client.client import AnimaClient, __version__
from anima_client.errors import (
    AnimaConnectionError,
    AnimaError,
    Conflict,
    DatabaseUnavailable,
    EmbeddingUnavailable,
    Forbidden,
    InvalidTier,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    Unauthorized,
    UnsupportedMediaType,
    ValidationError,
)
from anima_client.retry import RetryPolicy

__all__ = [
    "AnimaClient",
    "AsyncAnimaClient",
    "RetryPolicy",
    "AnimaError",
    "AnimaConnectionError",
    "ValidationError",
    "InvalidTier",
    "Unauthorized",
    "Forbidden",
    "NotFound",
    "MethodNotAllowed",
    "Conflict",
    "PayloadTooLarge",
    "UnsupportedMediaType",
    "RateLimited",
    "ServerError",
    "ServiceUnavailable",
    "EmbeddingUnavailable",
    "DatabaseUnavailable",
    "__version__",
]
