"""Which namespace a request acts in.

Until API keys exist (the security issue), every request acts in
``ANIMA_DEFAULT_NAMESPACE``. Views ask this function and nothing else, so keys that map
to namespaces, and the admin scope's ``X-Anima-Namespace``, change only this module.
"""

from django.conf import settings


def request_namespace(request) -> str:
    return settings.ANIMA_DEFAULT_NAMESPACE
