"""HTTP shapes of tier changes: ``POST /memories/update-tier`` and the ``meta.promotions``
list of the requests whose accesses moved memories."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from anima_site.serializers import JsonCharField, StrictSerializer
from memories.models import Tier
from memories.serializers.memories import MemoryOutput


@extend_schema_field({"type": "string", "enum": Tier.values})
class TierNameField(JsonCharField):
    """Checked by the view, not here: an unknown tier is INVALID_TIER, not VALIDATION_ERROR."""


class UpdateTierInput(StrictSerializer):
    memoryId = serializers.UUIDField()
    tier = TierNameField()
    reason = JsonCharField(min_length=1, max_length=200, required=False, default="manual")


# A ``TierPromotion`` row.
class PromotionOutput(serializers.Serializer):
    fromTier = serializers.CharField(source="from_tier")
    toTier = serializers.CharField(source="to_tier")
    reason = serializers.CharField()
    accessCountAtPromotion = serializers.IntegerField(source="access_count_at_promotion")
    createdAt = serializers.DateTimeField(source="created_at")


class UpdateTierData(serializers.Serializer):
    memory = MemoryOutput()
    promotion = PromotionOutput(allow_null=True)
    message = serializers.CharField()


# A ``memories.services.tiers.Promotion`` (not in the schema: ``meta`` is documented as
# requestId and timestamp only).
class PromotionMetaOutput(serializers.Serializer):
    memoryId = serializers.UUIDField(source="memory_id")
    fromTier = serializers.CharField(source="from_tier")
    toTier = serializers.CharField(source="to_tier")


def promotions_meta(promotions) -> dict:
    """``meta.promotions`` when the request moved memories between tiers, else nothing."""
    return {"promotions": PromotionMetaOutput(promotions, many=True).data} if promotions else {}
