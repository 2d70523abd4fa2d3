"""Which namespace a request acts in: its API key's.

A key with the ``admin`` scope may act in another namespace with the header
``X-Anima-Namespace`` (an application with many end users keeps one namespace per end
user); any other key sending that header is refused (403). Without a key (only when
``ANIMA_REQUIRE_API_KEY=false``) the request acts in ``ANIMA_DEFAULT_NAMESPACE``.
Views ask this function and nothing else.
"""

import re

from django.conf import settings
from rest_framework import exceptions

NAMESPACE_HEADER = "X-Anima-Namespace"
_NAMESPACE = re.compile(r"^[-a-zA-Z0-9_]{1,64}$")


def request_namespace(request) -> str:
    key = getattr(request, "auth", None)
    asked = request.headers.get(NAMESPACE_HEADER)
    if asked is not None:
        if not _NAMESPACE.match(asked):
            raise exceptions.ValidationError({NAMESPACE_HEADER: ["A namespace is 1-64 letters, digits, '-' or '_'."]})
        if key is not None and not key.allows("admin"):
            raise exceptions.PermissionDenied(f"Only an admin-scope key may use {NAMESPACE_HEADER}.")
        if key is not None or not settings.ANIMA_REQUIRE_API_KEY:
            return asked
    if key is not None:
        return key.namespace
    return settings.ANIMA_DEFAULT_NAMESPACE
