"""``/memories/update-tier``: moving a memory to a tier by hand (a mixin of ``MemoryViewSet``)."""

from drf_spectacular.utils import extend_schema
from rest_framework.decorators import action

from anima_site.api import InvalidTier, success
from anima_site.http import validated
from anima_site.openapi import api_responses
from anima_site.tenancy import request_namespace
from memories.models import Tier
from memories.serializers.tiers import UpdateTierData, UpdateTierInput
from memories.services.tiers import MESSAGE_MOVED, MESSAGE_UNCHANGED, memory_update_tier


UPDATE_TIER_RESPONSES = api_responses({200: ("TierUpdated", UpdateTierData())}, extra_errors=(404,), body=True)


class MemoryTierActions:
    @extend_schema(request=UpdateTierInput, responses=UPDATE_TIER_RESPONSES, summary="Move a memory to a tier")
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
        shown = {
            "memory": change.memory,
            "promotion": change.promotion,
            "message": MESSAGE_MOVED if change.promotion else MESSAGE_UNCHANGED,
        }
        return success(request, UpdateTierData(shown).data)
