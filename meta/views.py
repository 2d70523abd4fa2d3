"""HTTP for the operations endpoints ``/meta/cache-stats`` and ``/meta/metrics``: validate,
read (``meta.selectors``), render the ``data`` shape (``meta.serializers``)."""

from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action

from anima_site.api import success
from anima_site.http import validated
from anima_site.openapi import api_responses
from anima_site.serializers import EmptyInput
from anima_site.tenancy import request_namespace
from meta.selectors import embedding_cache_stats, system_metrics
from meta.serializers import CacheStatsData, SystemMetricsData

CACHE_STATS = api_responses({200: ("CacheStats", CacheStatsData())})
SYSTEM_METRICS = api_responses({200: ("SystemMetrics", SystemMetricsData())})


class MetaViewSet(viewsets.ViewSet):
    @extend_schema(responses=CACHE_STATS, summary="Embedding cache statistics")
    @action(detail=False, methods=["get"], url_path="cache-stats")
    def cache_stats(self, request):
        validated(EmptyInput, request.query_params.dict())
        return success(request, CacheStatsData(embedding_cache_stats()).data)

    @extend_schema(responses=SYSTEM_METRICS, summary="Cache, database, queue, memories")
    @action(detail=False, methods=["get"], url_path="metrics")
    def metrics(self, request):
        validated(EmptyInput, request.query_params.dict())
        return success(request, SystemMetricsData(system_metrics(namespace=request_namespace(request))).data)
