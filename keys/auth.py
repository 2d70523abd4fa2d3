"""DRF authentication and permissions by API key (``Authorization: Bearer`` or ``X-API-Key``).

With ``ANIMA_REQUIRE_API_KEY=false`` (local experiments only) a request without a key
acts in ``ANIMA_DEFAULT_NAMESPACE`` with every scope; a request that does send a key is
still checked. ``ApiKeyScheme`` describes the authentication in the OpenAPI schema.
"""

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions, throttling

from keys.models import Scope
from keys.services import api_key_authenticate

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class KeyHolder:
    """``request.user`` for a request authenticated by an API key."""

    is_authenticated = True
    is_staff = False

    def __init__(self, key):
        self.key = key

    def __str__(self):
        return f"api-key:{self.key.prefix}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        raw = request.headers.get("X-API-Key", "")
        header = request.headers.get("Authorization", "")
        if not raw and header:
            kind, _, value = header.partition(" ")
            if kind.lower() != "bearer" or not value.strip():
                raise exceptions.AuthenticationFailed("Use 'Authorization: Bearer <key>' or 'X-API-Key: <key>'.")
            raw = value
        if not raw:
            return None
        key = api_key_authenticate(raw)
        if key is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
        return KeyHolder(key), key

    def authenticate_header(self, request):
        return 'Bearer realm="anima"'


class ScopePermission(permissions.BasePermission):
    """Safe methods need ``read``, the rest ``write``; a view may name others per action
    in ``action_scopes`` (e.g. ``{"query": "read"}``: a query changes only counters)."""

    message = "This API key's scope does not allow this request."

    def has_permission(self, request, view):
        key = request.auth
        if key is None:
            if settings.ANIMA_REQUIRE_API_KEY:
                raise exceptions.NotAuthenticated("An API key is required: 'Authorization: Bearer <key>'.")
            return True
        needed = getattr(view, "action_scopes", {}).get(getattr(view, "action", None))
        if needed is None:
            needed = Scope.READ if request.method in SAFE_METHODS else Scope.WRITE
        return key.allows(needed)


class ApiKeyRateThrottle(throttling.SimpleRateThrottle):
    """Requests per API key (``ANIMA_RATE_LIMIT``, e.g. ``1200/min``); over it: 429 with Retry-After.

    Counts live in the default cache: per process with the local-memory cache, shared
    across processes when the cache is Redis. Requests without a key are counted by
    client address.
    """

    scope = "api_key"

    def get_rate(self):
        rate = settings.ANIMA_RATE_LIMIT
        return None if rate in ("", "off") else rate

    def get_cache_key(self, request, view):
        key = getattr(request, "auth", None)
        ident = f"key:{key.prefix}" if key is not None else f"ip:{self.get_ident(request)}"
        return f"anima:throttle:{ident}"


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = ApiKeyAuthentication
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An Anima API key (anima_<prefix>_<secret>); X-API-Key: <key> works too.",
        }
