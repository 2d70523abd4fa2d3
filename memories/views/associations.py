"""``/associations/discover``, ``/associations/hubs``, ``/associations/network-stats``."""

from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action

from anima_site.api import success
from anima_site.http import validated
from anima_site.openapi import api_responses
from anima_site.tenancy import request_namespace
from memories.selectors.associations import association_network_stats, associations_discover, associations_hubs
from memories.serializers.associations import (
    DiscoverData,
    DiscoverInput,
    HubsData,
    HubsInput,
    NetworkStatsData,
    NetworkStatsInput,
)


DISCOVER_RESPONSES = api_responses({200: ("AssociationDiscovery", DiscoverData())}, extra_errors=(404,))
HUBS_RESPONSES = api_responses({200: ("AssociationHubs", HubsData())})
NETWORK_STATS_RESPONSES = api_responses(
    {200: ("AssociationNetworkStats", NetworkStatsData())}, extra_errors=(404,)
)


class AssociationViewSet(viewsets.ViewSet):
    @extend_schema(parameters=[DiscoverInput], responses=DISCOVER_RESPONSES, summary="A memory's associated memories")
    @action(detail=False, methods=["get"], url_path="discover")
    def discover(self, request):
        params = validated(DiscoverInput, request.query_params.dict())
        namespace, memory_id = request_namespace(request), params["memoryId"]
        neighbours = associations_discover(
            namespace=namespace, memory_id=memory_id, min_strength=params["minStrength"], limit=params["limit"]
        )
        shown = {"memoryId": memory_id, "associations": neighbours, "count": len(neighbours)}
        return success(request, DiscoverData(shown).data)

    @extend_schema(parameters=[HubsInput], responses=HUBS_RESPONSES, summary="The most connected memories")
    @action(detail=False, methods=["get"], url_path="hubs")
    def hubs(self, request):
        params = validated(HubsInput, request.query_params.dict())
        hubs = associations_hubs(
            namespace=request_namespace(request), min_connections=params["minConnections"], limit=params["limit"]
        )
        return success(request, HubsData({"hubs": hubs, "count": len(hubs)}).data)

    @extend_schema(
        parameters=[NetworkStatsInput], responses=NETWORK_STATS_RESPONSES, summary="A memory's association totals"
    )
    @action(detail=False, methods=["get"], url_path="network-stats")
    def network_stats(self, request):
        params = validated(NetworkStatsInput, request.query_params.dict())
        stats = association_network_stats(namespace=request_namespace(request), memory_id=params["memoryId"])
        return success(request, NetworkStatsData(stats).data)
