"""``/associations/discover``, ``/associations/hubs``, ``/associations/network-stats``."""

from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action

from anima_site.api import success
from anima_site.tenancy import request_namespace
from memories import schema
from memories.selectors_dynamics import associations_discover, associations_hubs, association_network_stats
from memories.serializers_dynamics import DiscoverInput, HubsInput, NetworkStatsInput, hub_output, neighbour_output
from memories.views.core import validated


class AssociationViewSet(viewsets.ViewSet):
    @extend_schema(parameters=[DiscoverInput], responses=schema.DISCOVER, summary="A memory's associated memories")
    @action(detail=False, methods=["get"], url_path="discover")
    def discover(self, request):
        params = validated(DiscoverInput, request.query_params.dict())
        neighbours = associations_discover(
            namespace=request_namespace(request),
            memory_id=params["memoryId"],
            min_strength=params["minStrength"],
            limit=params["limit"],
        )
        associations = [neighbour_output(n) for n in neighbours]
        return success(request, {"memoryId": str(params["memoryId"]), "associations": associations, "count": len(associations)})

    @extend_schema(parameters=[HubsInput], responses=schema.HUBS, summary="The most connected memories")
    @action(detail=False, methods=["get"], url_path="hubs")
    def hubs(self, request):
        params = validated(HubsInput, request.query_params.dict())
        hubs = associations_hubs(
            namespace=request_namespace(request), min_connections=params["minConnections"], limit=params["limit"]
        )
        return success(request, {"hubs": [hub_output(h) for h in hubs], "count": len(hubs)})

    @extend_schema(parameters=[NetworkStatsInput], responses=schema.NETWORK_STATS, summary="A memory's association totals")
    @action(detail=False, methods=["get"], url_path="network-stats")
    def network_stats(self, request):
        params = validated(NetworkStatsInput, request.query_params.dict())
        stats = association_network_stats(namespace=request_namespace(request), memory_id=params["memoryId"])
        return success(request, {"memoryId": str(params["memoryId"]), **stats})
