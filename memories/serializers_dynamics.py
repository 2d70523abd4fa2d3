"""HTTP shapes of the dynamics endpoints (update-tier, catalysts, stats, associations)."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from memories.models import Tier

from memories.serializers import JsonCharField, StrictSerializer

MAX_CATALYST_LIMIT = 100
MAX_DISCOVER_LIMIT = 100
MAX_HUBS_LIMIT = 50


@extend_schema_field({"type": "string", "enum": Tier.values})
class TierNameField(JsonCharField):
    """Checked by the view, not here: an unknown tier is INVALID_TIER, not VALIDATION_ERROR."""


class UpdateTierInput(StrictSerializer):
    memoryId = serializers.UUIDField()
    tier = TierNameField()
    reason = JsonCharField(min_length=1, max_length=200, required=False, default="manual")


class CatalystsInput(StrictSerializer):
    limit = serializers.IntegerField(min_value=1, max_value=MAX_CATALYST_LIMIT, required=False, default=10)


class DiscoverInput(StrictSerializer):
    memoryId = serializers.UUIDField()
    minStrength = serializers.FloatField(min_value=0.0, max_value=1.0, required=False, default=0.1)
    limit = serializers.IntegerField(min_value=1, max_value=MAX_DISCOVER_LIMIT, required=False, default=20)


class HubsInput(StrictSerializer):
    limit = serializers.IntegerField(min_value=1, max_value=MAX_HUBS_LIMIT, required=False, default=10)
    minConnections = serializers.IntegerField(min_value=1, required=False, default=5)


class NetworkStatsInput(StrictSerializer):
    memoryId = serializers.UUIDField()


class EmptyInput(StrictSerializer):
    pass


class CatalystOutput(serializers.Serializer):
    id = serializers.UUIDField()
    content = serializers.CharField()
    tier = serializers.CharField()
    category = serializers.CharField(allow_null=True)
    phi = serializers.FloatField(source="resonance_phi")
    isCatalyst = serializers.BooleanField(source="is_catalyst")
    accessCount = serializers.IntegerField(source="access_count")
    lastAccessed = serializers.DateTimeField(source="last_accessed")


class PromotionOutput(serializers.Serializer):
    fromTier = serializers.CharField(source="from_tier")
    toTier = serializers.CharField(source="to_tier")
    reason = serializers.CharField()
    accessCountAtPromotion = serializers.IntegerField(source="access_count_at_promotion")
    createdAt = serializers.DateTimeField(source="created_at")


def neighbour_output(neighbour) -> dict:
    memory, pair = neighbour.memory, neighbour.association
    return {
        "memoryId": str(memory.pk),
        "content": memory.content,
        "tier": memory.tier,
        "category": memory.category,
        "tags": list(memory.tags),
        "accessCount": memory.access_count,
        "coOccurrenceCount": pair.co_occurrence_count,
        "strength": round(pair.strength, 4),
        "firstCoOccurredAt": serializers.DateTimeField().to_representation(pair.first_co_occurred_at),
        "lastCoOccurredAt": serializers.DateTimeField().to_representation(pair.last_co_occurred_at),
        "conversationContexts": list(pair.conversation_contexts),
    }


def hub_output(hub) -> dict:
    return {
        "memoryId": str(hub.memory.pk),
        "content": hub.memory.content,
        "tier": hub.memory.tier,
        "category": hub.memory.category,
        "phi": hub.memory.resonance_phi,
        "totalConnections": hub.total_connections,
        "totalCoOccurrences": hub.total_co_occurrences,
        "avgStrength": round(hub.avg_strength, 4),
    }
