"""API keys: made with their secret shown once, found by prefix, compared in constant time."""

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS
from django.db.models import QuerySet
from django.utils import timezone

from anima_site.db import CompiledRows
from anima_site.namespaces import is_valid_namespace, namespace_error
from keys.models import ApiKey

KEY_MARK = "anima"
#: last_used_at is written at most this often per key, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)
#: Far longer than any key made here (``anima_`` + 12 + ``_`` + 43 characters); longer is unknown.
MAX_KEY_CHARS = 256


def _digest(salt: str, secret: str) -> str:
    return hashlib.sha256(f"{salt}:{secret}".encode()).hexdigest()


def api_key_create(*, name: str, namespace: str, scope: str) -> tuple[ApiKey, str]:
    """Make a key; returns it and the full key string ``anima_<prefix>_<secret>`` (shown once).

    Raises ValidationError for a namespace the API would refuse (empty, ``../``, too long).
    """
    if not is_valid_namespace(namespace):
        raise ValidationError(namespace_error(namespace), code="invalid_namespace")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_hex(16)
    key = ApiKey.objects.create(
        name=name, prefix=prefix, salt=salt, secret_hash=_digest(salt, secret), namespace=namespace, scope=scope
    )
    return key, f"{KEY_MARK}_{prefix}_{secret}"


def api_keys_revoke(*, keys: QuerySet[ApiKey]) -> int:
    """Revoke the live keys among ``keys`` in one statement (the row stays: the audit trail); how many."""
    return keys.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())


def api_key_revoke(*, prefix: str) -> bool:
    return bool(api_keys_revoke(keys=ApiKey.objects.filter(prefix=prefix)))


def api_keys_forget_namespace(*, namespace: str) -> int:
    """Delete the namespace's keys (its purge: no key is left to act in it); how many."""
    deleted, _ = ApiKey.objects.filter(namespace=namespace).delete()
    return deleted


#: Every request's first read, compiled once (``CompiledRows``); rows become ``ApiKey``s.
_LOOKUP = CompiledRows()
_KEY_FIELDS = [field.attname for field in ApiKey._meta.concrete_fields]


def _live_key_queryset(*, prefix: str):
    return ApiKey.objects.filter(prefix=prefix, revoked_at__isnull=True).values_list(*_KEY_FIELDS)[:1]


def api_key_authenticate(raw: str) -> ApiKey | None:
    """The live key that ``raw`` is, or None. Unknown, malformed and revoked keys are alike.

    Only printable ASCII of a key's length reaches the database: a NUL, which some
    servers pass on in a header, would make psycopg raise (a 500 instead of a 401).
    """
    raw = raw.strip()
    if len(raw) > MAX_KEY_CHARS or not (raw.isascii() and raw.isprintable()):
        return None
    mark, _, rest = raw.partition("_")
    prefix, _, secret = rest.partition("_")
    if mark != KEY_MARK or not prefix or not secret:
        return None
    found = _LOOKUP.rows("live key by prefix", _live_key_queryset, prefix=prefix)
    key = ApiKey.from_db(DEFAULT_DB_ALIAS, _KEY_FIELDS, found[0]) if found else None
    if key is None or not hmac.compare_digest(_digest(key.salt, secret), key.secret_hash):
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key
