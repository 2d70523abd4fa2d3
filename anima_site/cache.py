"""A Redis cache that degrades instead of failing.

When Redis is down, every cache call here logs (at most once a minute per process),
counts ``anima_cache_errors_total{operation}`` and answers as a miss: the embedding is
computed again, throttling lets the request through, a counter reads 0. Requests stay
on the slow path; they never become 500s. Short socket timeouts (``OPTIONS``) keep a
dead Redis from stalling requests.
"""

import logging
import time

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

from anima_site import metrics

logger = logging.getLogger("anima.cache")
_LOG_EVERY_SECONDS = 60


class ResilientRedisCache(RedisCache):
    _last_logged = 0.0

    def _failed(self, operation: str, exc: Exception) -> None:
        metrics.CACHE_ERRORS.labels(operation=operation).inc()
        now = time.monotonic()
        if now - ResilientRedisCache._last_logged > _LOG_EVERY_SECONDS:
            ResilientRedisCache._last_logged = now
            logger.warning("Redis cache unavailable (%s: %s); serving without it", operation, type(exc).__name__)

    def _guard(self, operation, default, call, *args, **kwargs):
        try:
            return call(*args, **kwargs)
        except RedisError as exc:
            self._failed(operation, exc)
            return default

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._guard("add", False, super().add, key, value, timeout, version=version)

    def get(self, key, default=None, version=None):
        return self._guard("get", default, super().get, key, default, version=version)

    def set(self, key, value, *args, **kwargs):
        return self._guard("set", None, super().set, key, value, *args, **kwargs)

    def get_many(self, keys, version=None):
        return self._guard("get_many", {}, super().get_many, keys, version=version)

    def set_many(self, data, *args, **kwargs):
        return self._guard("set_many", list(data), super().set_many, data, *args, **kwargs)

    def incr(self, key, delta=1, version=None):
        try:
            return super().incr(key, delta, version=version)
        except RedisError as exc:
            self._failed("incr", exc)
            return 0

    def delete(self, key, version=None):
        return self._guard("delete", False, super().delete, key, version=version)

    def clear(self):
        return self._guard("clear", False, super().clear)

    def estimated_size(self) -> int | None:
        """Keys in the Redis database (``DBSIZE``, O(1)): an upper bound on the cached embeddings."""
        try:
            return int(self._cache.get_client().dbsize())
        except RedisError as exc:
            self._failed("dbsize", exc)
            return None
