"""Which namespace a request acts in: its API key's.

A key with the ``admin`` scope may act in another namespace with the header
``X-Anima-Namespace`` (an application with many end users keeps one namespace per end
user); any other key sending that header is refused (403). Without a key (only when
``ANIMA_REQUIRE_API_KEY=false``) the request acts in ``ANIMA_DEFAULT_NAMESPACE``.
Views ask this function and nothing else.
"""

from django.conf import settings
from rest_framework import exceptions

from anima_site.namespaces import is_valid_namespace, namespace_error

NAMESPACE_HEADER = "X-Anima-Namespace"


def request_namespace(request) -> str:
    key = getattr(request, "auth", None)
    asked = request.headers.get(NAMESPACE_HEADER)
    if asked is not None:
        if not is_valid_namespace(asked):
            raise exceptions.ValidationError({NAMESPACE_HEADER: [namespace_error(asked)]})
        if key is not None and not key.allows("admin"):
            raise exceptions.PermissionDenied(f"Only an admin-scope key may use {NAMESPACE_HEADER}.")
        if key is not None or not settings.ANIMA_REQUIRE_API_KEY:
            return asked
    if key is not None:
        return key.namespace
    return settings.ANIMA_DEFAULT_NAMESPACE
