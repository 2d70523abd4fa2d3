"""DRF authentication and permissions by API key (``Authorization: Bearer`` or ``X-API-Key``).

With ``ANIMA_REQUIRE_API_KEY=false`` (local experiments only) a request without a key
acts in ``ANIMA_DEFAULT_NAMESPACE`` with every scope; a request that does send a key is
still checked.
"""

from django.conf import settings
from rest_framework import authentication, exceptions, permissions

from meta.models import Scope
from meta.services.keys import api_key_authenticate

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
