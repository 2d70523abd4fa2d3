"""``GET /health``: liveness and readiness in one answer.

Each check reports ``status`` (``ok``/``fail``), ``latencyMs`` and, on failure, an
``error`` that names the problem without a trace. 200 when every check passes, else
503 with ``failing`` naming the checks that did not. ``background`` also reports
``oldestPendingSeconds`` (null when nothing waits) and fails with ``BackgroundStalled``
when the oldest pending work is older than ``ANIMA_BACKGROUND_STALL_SECONDS``: the task
side is down or wedged.
"""

import time
import uuid

from django.conf import settings
from django.core.cache import caches
from django.db import connection
from django.http import JsonResponse

from memories import embeddings
from memories.background import oldest_pending_seconds
from memories.checks import MIN_PGVECTOR, _version
from meta.selectors import queue_stats


def _database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _pgvector():
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        row = cursor.fetchone()
    if row is None:
        raise RuntimeError("the vector extension is not installed")
    if _version(row[0]) < MIN_PGVECTOR:
        raise RuntimeError(f"pgvector {row[0]} is older than 0.8")


def _embedding():
    embeddings.get_provider().check_ready()


def _cache():
    cache = caches[embeddings.CACHE_ALIAS]
    key = f"anima:health:{uuid.uuid4()}"
    cache.set(key, b"ok", timeout=10)
    if cache.get(key) != b"ok":
        raise RuntimeError("the embedding cache did not return what was stored")
    cache.delete(key)


def _queue():
    queue_stats()


class BackgroundStalled(RuntimeError):
    pass


def _background():
    age = oldest_pending_seconds()
    extra = {"oldestPendingSeconds": None if age is None else round(age, 1)}
    if age is not None and age > settings.ANIMA_BACKGROUND_STALL_SECONDS:
        raise BackgroundStalled(extra)
    return extra


CHECKS = {
    "database": _database,
    "pgvector": _pgvector,
    "embedding": _embedding,
    "cache": _cache,
    "queue": _queue,
    "background": _background,
}


def run_checks() -> dict:
    results = {}
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            results[name] = {"status": "ok", **(check() or {})}
        except BackgroundStalled as exc:
            results[name] = {"status": "fail", "error": type(exc).__name__, **exc.args[0]}
        except Exception as exc:  # a health check reports every failure; it never raises
            # The type only: /health needs no key, so no address or message is shown.
            results[name] = {"status": "fail", "error": type(exc).__name__}
        results[name]["latencyMs"] = round((time.perf_counter() - started) * 1000, 2)
    return results


def health_view(request):
    checks = run_checks()
    failing = [name for name, result in checks.items() if result["status"] != "ok"]
    body = {"status": "fail" if failing else "ok", "checks": checks}
    if failing:
        body["failing"] = failing
    return JsonResponse(body, status=503 if failing else 200)
