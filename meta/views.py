"""HTTP for the operations endpoints ``/meta/cache-stats`` and ``/meta/metrics``: validate, read, shape."""

from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action

from anima_site.api import success
from anima_site.tenancy import request_namespace
from memories.serializers_dynamics import EmptyInput
from memories.views.core import validated
from meta import schema
from meta.selectors import cache_recommendation, embedding_cache_stats, system_metrics


class MetaViewSet(viewsets.ViewSet):
    @extend_schema(responses=schema.CACHE_STATS, summary="Embedding cache statistics")
    @action(detail=False, methods=["get"], url_path="cache-stats")
    def cache_stats(self, request):
        validated(EmptyInput, request.query_params.dict())
        stats = embedding_cache_stats()
        return success(request, {"cache": stats, "recommendation": cache_recommendation(stats)})

    @extend_schema(responses=schema.SYSTEM_METRICS, summary="Cache, database, queue, memories")
    @action(detail=False, methods=["get"], url_path="metrics")
    def metrics(self, request):
        validated(EmptyInput, request.query_params.dict())
        return success(request, system_metrics(namespace=request_namespace(request)))
