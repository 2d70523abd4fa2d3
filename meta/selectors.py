"""The operations layer's reads about the service itself: the embedding cache, the database, the task queue."""

from django.conf import settings
from django.core.cache import caches
from django.db import connection
from django.utils import timezone

from memories import embeddings
from memories.selectors import tier_counts

CACHE_HEALTHY_HIT_RATE = 0.8
CACHE_RECOMMEND_BELOW = 0.5
DATABASE_PRESSURE_WAITING = 5


def embedding_cache_stats() -> dict:
    """Hit/miss counters (shared through the cache backend) and the cache's size.

    ``size`` is exact for the local-memory cache (this process's entries) and an estimate
    for a shared backend; it is never a key scan.
    """
    hits, misses = embeddings.cache_counters()
    lookups = hits + misses
    cache = caches[embeddings.CACHE_ALIAS]
    entries = getattr(cache, "_cache", None)
    if hasattr(cache, "estimated_size"):
        size = cache.estimated_size()
    elif not isinstance(entries, dict):
        size = None
    else:  # the hit/miss counters live in the same cache; they are not embeddings
        counters = sum(cache.make_key(key) in entries for key in (embeddings.HITS_KEY, embeddings.MISSES_KEY))
        size = len(entries) - counters
    return {
        "hits": hits,
        "misses": misses,
        "hitRate": round(hits / lookups, 4) if lookups else 0.0,
        "size": size,
        "maxSize": settings.ANIMA_EMBEDDING_CACHE_SIZE,
    }


def cache_recommendation(stats: dict) -> str:
    if stats["hits"] + stats["misses"] == 0:
        return "No embedding lookups yet."
    if stats["hitRate"] < CACHE_RECOMMEND_BELOW:
        return (
            "The hit rate is below 50 %: enlarge the cache (ANIMA_EMBEDDING_CACHE_SIZE) or its TTL "
            "(ANIMA_EMBEDDING_CACHE_TTL) if the same texts recur."
        )
    return "The cache is serving repeated texts well."


def database_stats() -> dict:
    """Connections to this database by state (Anima keeps persistent connections, no pool)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE state = 'active'), count(*) FILTER (WHERE state LIKE 'idle%%'), "
            "count(*) FILTER (WHERE state = 'active' AND wait_event_type = 'Lock') "
            "FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend'"
        )
        active, idle, waiting = cursor.fetchone()
    return {
        "connectionsInUse": active,
        "idle": idle,
        "waiting": waiting,
        "status": "under_pressure" if waiting > DATABASE_PRESSURE_WAITING else "ok",
    }


def queue_stats() -> dict:
    """Queued and failed tasks of the django-q2 broker."""
    from django_q.brokers import get_broker
    from django_q.models import Failure

    broker = get_broker()
    return {"queued": broker.queue_size() or 0, "failed": Failure.objects.count()}


def system_metrics(*, namespace: str) -> dict:
    cache = embedding_cache_stats()
    cache["status"] = "healthy" if cache["hitRate"] > CACHE_HEALTHY_HIT_RATE else "warming_up"
    return {
        "cache": cache,
        "database": database_stats(),
        "queue": queue_stats(),
        "memories": tier_counts(namespace=namespace),
        "timestamp": timezone.now().isoformat().replace("+00:00", "Z"),
    }
