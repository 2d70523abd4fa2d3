"""Prometheus' side of the operations layer: the collector read at scrape time and ``GET /metrics``.

The counters and histograms are defined and recorded in ``anima_site.metrics``. Values
that live in the database — memories per namespace and tier, the task queue,
background work waiting and its age, cluster restarts — are read at scrape time by
:class:`DatabaseCollector` from small tables (the trigger-maintained tier counts, the
broker queue, the work rows), never by counting memories.

Several processes: when ``PROMETHEUS_MULTIPROC_DIR`` is set (``manage.py serve`` sets
it for gunicorn and the worker), prometheus_client writes each process's samples there
and ``/metrics`` merges them (``MultiProcessCollector``); gunicorn's ``child_exit`` hook
marks dead workers.
"""

import hmac
import ipaddress
import os

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpResponse, JsonResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from anima_site.api import error_body
from memories.background import pending_by_kind
from memories.models import TierCount
from meta.models import ClusterRestart
from meta.selectors import queue_stats


class DatabaseCollector:
    """Gauges read at scrape time from small tables."""

    def collect(self):
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
            queued.add_metric([], queue.queued)
            failed.add_metric([], queue.failed)
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
