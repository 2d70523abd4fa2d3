"""``/memories/catalysts``, ``/memories/stats``: the namespace's φ — its top memories and
its statistics (a mixin of ``MemoryViewSet``)."""

from drf_spectacular.utils import extend_schema
from rest_framework.decorators import action

from anima_site.api import success
from anima_site.http import validated
from anima_site.openapi import api_responses
from anima_site.serializers import EmptyInput
from anima_site.tenancy import request_namespace
from memories.selectors.resonance import memories_catalysts, memories_phi_stats
from memories.serializers.resonance import CatalystsData, CatalystsInput, StatsData


CATALYSTS_RESPONSES = api_responses({200: ("CatalystList", CatalystsData())})
STATS_RESPONSES = api_responses({200: ("PhiStats", StatsData())})


class MemoryResonanceActions:
    @extend_schema(parameters=[CatalystsInput], responses=CATALYSTS_RESPONSES, summary="Top memories by φ")
    @action(detail=False, methods=["get"], url_path="catalysts")
    def catalysts(self, request):
        params = validated(CatalystsInput, request.query_params.dict())
        memories = memories_catalysts(namespace=request_namespace(request), limit=params["limit"])
        return success(request, CatalystsData({"catalysts": memories, "count": len(memories)}).data)

    @extend_schema(responses=STATS_RESPONSES, summary="φ statistics of the namespace")
    @action(detail=False, methods=["get"], url_path="stats")
    def stats(self, request):
        validated(EmptyInput, request.query_params.dict())
        return success(request, StatsData(memories_phi_stats(namespace=request_namespace(request))).data)
