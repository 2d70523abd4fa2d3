"""The operations layer's reads about the service itself: the embedding cache, the database, the task queue.

Each returns a frozen dataclass; ``meta.serializers`` renders them (camelCase) for the API.
"""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.cache import caches
from django.db import connection
from django.utils import timezone

from memories import embeddings
from memories.selectors.tiers import tier_counts

CACHE_HEALTHY_HIT_RATE = 0.8
CACHE_RECOMMEND_BELOW = 0.5
DATABASE_PRESSURE_WAITING = 5


@dataclass(frozen=True)
class CacheStats:
    hits: int
    misses: int
    hit_rate: float
    #: None when the backend cannot tell without a key scan.
    size: int | None
    max_size: int

    @property
    def status(self) -> str:
        return "healthy" if self.hit_rate > CACHE_HEALTHY_HIT_RATE else "warming_up"

    @property
    def recommendation(self) -> str:
        if self.hits + self.misses == 0:
            return "No embedding lookups yet."
        if self.hit_rate < CACHE_RECOMMEND_BELOW:
            return (
                "The hit rate is below 50 %: enlarge the cache (ANIMA_EMBEDDING_CACHE_SIZE) or its TTL "
                "(ANIMA_EMBEDDING_CACHE_TTL) if the same texts recur."
            )
        return "The cache is serving repeated texts well."


@dataclass(frozen=True)
class DatabaseStats:
    connections_in_use: int
    idle: int
    #: Active connections waiting on a lock.
    waiting: int

    @property
    def status(self) -> str:
        return "under_pressure" if self.waiting > DATABASE_PRESSURE_WAITING else "ok"


@dataclass(frozen=True)
class QueueStats:
    queued: int
    failed: int


@dataclass(frozen=True)
class SystemMetrics:
    cache: CacheStats
    database: DatabaseStats
    queue: QueueStats
    #: The namespace's live memories per tier and ``total`` (``memories.selectors.tiers.tier_counts``).
    memories: dict[str, int]
    timestamp: datetime


def embedding_cache_stats() -> CacheStats:
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
    return CacheStats(
        hits=hits,
        misses=misses,
        hit_rate=round(hits / lookups, 4) if lookups else 0.0,
        size=size,
        max_size=settings.ANIMA_EMBEDDING_CACHE_SIZE,
    )


def database_stats() -> DatabaseStats:
    """Connections to this database by state (Anima keeps persistent connections, no pool)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE state = 'active'), count(*) FILTER (WHERE state LIKE 'idle%%'), "
            "count(*) FILTER (WHERE state = 'active' AND wait_event_type = 'Lock') "
            "FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend'"
        )
        active, idle, waiting = cursor.fetchone()
    return DatabaseStats(connections_in_use=active, idle=idle, waiting=waiting)


def queue_stats() -> QueueStats:
    """Queued and failed tasks of the django-q2 broker."""
    from django_q.brokers import get_broker
    from django_q.models import Failure

    broker = get_broker()
    return QueueStats(queued=broker.queue_size() or 0, failed=Failure.objects.count())


def system_metrics(*, namespace: str) -> SystemMetrics:
    return SystemMetrics(
        cache=embedding_cache_stats(),
        database=database_stats(),
        queue=queue_stats(),
        memories=tier_counts(namespace=namespace),
        timestamp=timezone.now(),
    )
