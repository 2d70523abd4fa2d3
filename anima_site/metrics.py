"""Anima's own Prometheus metrics: the one module that defines and records them.

Counters and histograms are recorded where things happen (``record_*`` functions below,
called by services). Values that live in the database — memories per namespace and
tier, the task queue, background work waiting and its age, cluster restarts — are read
at scrape time by :class:`DatabaseCollector` from small tables (the trigger-maintained
tier counts, the broker queue, the work rows), never by counting memories.

Several processes: when ``PROMETHEUS_MULTIPROC_DIR`` is set (``manage.py serve`` sets
it for gunicorn and the worker), prometheus_client writes each process's samples there
and ``/metrics`` merges them (``MultiProcessCollector``); gunicorn's ``child_exit`` hook
marks dead workers.
"""

import hmac
import ipaddress
import os

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import REGISTRY, CONTENT_TYPE_LATEST
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

EMBEDDING_CACHE_LOOKUPS = Counter(
    "anima_embedding_cache_lookups_total", "Embedding cache lookups by result", ["result"]
)
EMBEDDING_SECONDS = Histogram(
    "anima_embedding_seconds",
    "Time to embed one batch, by provider",
    ["provider"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
PROMOTIONS = Counter("anima_promotions_total", "Tier changes", ["from_tier", "to_tier", "reason"])
CONSOLIDATIONS = Counter("anima_consolidations_total", "Consolidation outcomes", ["outcome"])
PURGES = Counter("anima_purges_total", "Purges by kind (memory, namespace, retention)", ["kind"])
PURGED_MEMORIES = Counter("anima_purged_memories_total", "Memories removed for good")
CACHE_ERRORS = Counter("anima_cache_errors_total", "Cache calls that failed (Redis down)", ["operation"])
COOCCURRENCE_PAIRS = Counter("anima_cooccurrence_pairs_total", "Co-occurrence pairs recorded")


def record_cache_lookups(*, hits: int, misses: int) -> None:
    if hits:
        EMBEDDING_CACHE_LOOKUPS.labels(result="hit").inc(hits)
    if misses:
        EMBEDDING_CACHE_LOOKUPS.labels(result="miss").inc(misses)


def record_promotions(promotions, *, reason: str) -> None:
    for promotion in promotions:
        PROMOTIONS.labels(from_tier=promotion.from_tier, to_tier=promotion.to_tier, reason=reason).inc()


def record_consolidation(outcome: str) -> None:
    CONSOLIDATIONS.labels(outcome=outcome).inc()


def record_cooccurrence_pairs(count: int) -> None:
    if count:
        COOCCURRENCE_PAIRS.inc(count)


class DatabaseCollector:
    """Gauges read at scrape time from small tables."""

    def collect(self):
        from django.db import DatabaseError

        from memories.background import pending_by_kind
        from memories.models import TierCount
        from meta.models import ClusterRestart
        from meta.selectors import queue_stats

        memories = GaugeMetricFamily("anima_memories", "Live memories", labels=["namespace", "tier"])
        queued = GaugeMetricFamily("anima_task_queue_depth", "Tasks waiting in the broker")
        failed = GaugeMetricFamily("anima_task_failures", "Failed tasks kept by django-q2")
        pending = GaugeMetricFamily("anima_background_pending", "Background work rows waiting", labels=["kind"])
        lag = GaugeMetricFamily(
            "anima_background_lag_seconds", "Age of the oldest background work waiting (0: none)", labels=["kind"]
        )
        restarts = CounterMetricFamily(
            "anima_task_cluster_restarts", "Task clusters restarted by serve for making no progress"
        )
        try:
            for namespace, tier, count in TierCount.objects.values_list("namespace", "tier", "count"):
                memories.add_metric([namespace, tier], count)
            queue = queue_stats()
            queued.add_metric([], queue["queued"])
            failed.add_metric([], queue["failed"])
            for kind, stats in pending_by_kind().items():
                pending.add_metric([kind], stats["pending"])
                lag.add_metric([kind], stats["oldestSeconds"])
            restarts.add_metric([], ClusterRestart.objects.count())
        except DatabaseError:
            return
        yield from (memories, queued, failed, pending, lag, restarts)


def _registry():
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_GlobalRegistry())
    registry.register(DatabaseCollector())
    return registry


class _GlobalRegistry:
    """This process's metrics (django-prometheus's and ours) when not in multiprocess mode."""

    def collect(self):
        return REGISTRY.collect()


#: Headers a proxy adds: a request carrying one is not local, whatever REMOTE_ADDR says.
PROXY_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")
METRICS_FORBIDDEN = (
    "/metrics answers only loopback clients: set ANIMA_METRICS_TOKEN (or ANIMA_METRICS_PUBLIC=true) to scrape it from elsewhere."
)
METRICS_UNAUTHORIZED = "/metrics needs 'Authorization: Bearer <ANIMA_METRICS_TOKEN>'."


def is_loopback_client(request) -> bool:
    """REMOTE_ADDR in 127.0.0.0/8 or ::1 (also as ::ffff:127.x), and no proxy header."""
    if any(name in request.headers for name in PROXY_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def metrics_view(request):
    """``GET /metrics`` in the Prometheus text format.

    It names every namespace, so: ANIMA_METRICS_TOKEN set → the bearer token from everyone
    (401 otherwise); unset → loopback clients only (403 otherwise), unless ANIMA_METRICS_PUBLIC.
    """
    from anima_site.api import error_body

    token = settings.ANIMA_METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            response = JsonResponse(error_body(request, "UNAUTHORIZED", METRICS_UNAUTHORIZED), status=401)
            response["WWW-Authenticate"] = 'Bearer realm="anima-metrics"'
            return response
    elif not settings.ANIMA_METRICS_PUBLIC and not is_loopback_client(request):
        return JsonResponse(error_body(request, "FORBIDDEN", METRICS_FORBIDDEN), status=403)
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
