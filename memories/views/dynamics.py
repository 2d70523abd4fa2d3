"""``/memories/update-tier``, ``/memories/catalysts``, ``/memories/stats``."""

from drf_spectacular.utils import extend_schema
from rest_framework.decorators import action

from anima_site.api import InvalidTier, success
from anima_site.tenancy import request_namespace
from memories import schema
from memories.models import Tier
from memories.selectors_dynamics import memories_catalysts, memories_phi_stats
from memories.serializers import MemoryOutput
from memories.serializers_dynamics import (
    CatalystOutput,
    CatalystsInput,
    EmptyInput,
    PromotionOutput,
    UpdateTierInput,
)
from memories.services.tiers import MESSAGE_MOVED, MESSAGE_UNCHANGED, memory_update_tier
from memories.views.core import validated


class DynamicsMemoryActions:
    @extend_schema(request=UpdateTierInput, responses=schema.UPDATE_TIER, summary="Move a memory to a tier")
    @action(detail=False, methods=["post"], url_path="update-tier")
    def update_tier(self, request):
        body = validated(UpdateTierInput, request.data)
        if body["tier"] not in Tier.values:
            raise InvalidTier(
                f"Unknown tier {body['tier']!r}; one of: {', '.join(Tier.values)}.", details={"field": "tier"}
            )
        change = memory_update_tier(
            namespace=request_namespace(request), memory_id=body["memoryId"], tier=body["tier"], reason=body["reason"]
        )
        data = {
            "memory": MemoryOutput(change.memory).data,
            "promotion": PromotionOutput(change.promotion).data if change.promotion else None,
            "message": MESSAGE_MOVED if change.promotion else MESSAGE_UNCHANGED,
        }
        return success(request, data)

    @extend_schema(parameters=[CatalystsInput], responses=schema.CATALYSTS, summary="Top memories by φ")
    @action(detail=False, methods=["get"], url_path="catalysts")
    def catalysts(self, request):
        params = validated(CatalystsInput, request.query_params.dict())
        memories = memories_catalysts(namespace=request_namespace(request), limit=params["limit"])
        return success(request, {"catalysts": CatalystOutput(memories, many=True).data, "count": len(memories)})

    @extend_schema(responses=schema.STATS, summary="φ statistics of the namespace")
    @action(detail=False, methods=["get"], url_path="stats")
    def stats(self, request):
        validated(EmptyInput, request.query_params.dict())
        return success(request, memories_phi_stats(namespace=request_namespace(request)))
