"""API keys: made with their secret shown once, found by prefix, compared in constant time."""

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.utils import timezone

# The API's namespace rule (X-Anima-Namespace), applied here too: one definition.
from anima_site.tenancy import _NAMESPACE as NAMESPACE_RULE
from meta.models import ApiKey

KEY_MARK = "anima"
#: last_used_at is written at most this often per key, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)
INVALID_NAMESPACE = "Invalid namespace {namespace!r}: a namespace is 1-64 letters, digits, '-' or '_'."


def _digest(salt: str, secret: str) -> str:
    return hashlib.sha256(f"{salt}:{secret}".encode()).hexdigest()


def api_key_create(*, name: str, namespace: str, scope: str) -> tuple[ApiKey, str]:
    """Make a key; returns it and the full key string ``anima_<prefix>_<secret>`` (shown once).

    Raises ValidationError for a namespace the API would refuse (empty, ``../``, too long).
    """
    if not isinstance(namespace, str) or not NAMESPACE_RULE.fullmatch(namespace):
        raise ValidationError(INVALID_NAMESPACE.format(namespace=namespace), code="invalid_namespace")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_hex(16)
    key = ApiKey.objects.create(
        name=name, prefix=prefix, salt=salt, secret_hash=_digest(salt, secret), namespace=namespace, scope=scope
    )
    return key, f"{KEY_MARK}_{prefix}_{secret}"


def api_key_revoke(*, prefix: str) -> bool:
    return bool(ApiKey.objects.filter(prefix=prefix, revoked_at__isnull=True).update(revoked_at=timezone.now()))


def api_key_authenticate(raw: str) -> ApiKey | None:
    """The live key that ``raw`` is, or None. Unknown, malformed and revoked keys are alike."""
    mark, _, rest = raw.strip().partition("_")
    prefix, _, secret = rest.partition("_")
    if mark != KEY_MARK or not prefix or not secret:
        return None
    key = ApiKey.objects.filter(prefix=prefix, revoked_at__isnull=True).first()
    if key is None or not hmac.compare_digest(_digest(key.salt, secret), key.secret_hash):
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key
