"""HTTP shapes of ``/associations/``: discover, hubs, network-stats."""

from rest_framework import serializers

from anima_site.serializers import StrictSerializer
from memories.serializers.fields import RoundedFloatField

MAX_DISCOVER_LIMIT = 100
MAX_HUBS_LIMIT = 50


class DiscoverInput(StrictSerializer):
    memoryId = serializers.UUIDField()
    minStrength = serializers.FloatField(min_value=0.0, max_value=1.0, required=False, default=0.1)
    limit = serializers.IntegerField(min_value=1, max_value=MAX_DISCOVER_LIMIT, required=False, default=20)


class HubsInput(StrictSerializer):
    limit = serializers.IntegerField(min_value=1, max_value=MAX_HUBS_LIMIT, required=False, default=10)
    minConnections = serializers.IntegerField(min_value=1, required=False, default=5)


class NetworkStatsInput(StrictSerializer):
    memoryId = serializers.UUIDField()


# The first fields of a result that names a memory (``.memory``): a neighbour, a hub.
class HeldMemoryOutput(serializers.Serializer):
    memoryId = serializers.UUIDField(source="memory.pk")
    content = serializers.CharField(source="memory.content")
    tier = serializers.CharField(source="memory.tier")
    category = serializers.CharField(source="memory.category", allow_null=True)


# A ``memories.selectors.associations.Neighbour``: the other memory and the pair's counts.
class NeighbourOutput(HeldMemoryOutput):
    tags = serializers.ListField(child=serializers.CharField(), source="memory.tags")
    accessCount = serializers.IntegerField(source="memory.access_count")
    coOccurrenceCount = serializers.IntegerField(source="association.co_occurrence_count")
    strength = RoundedFloatField(digits=4, source="association.strength")
    firstCoOccurredAt = serializers.DateTimeField(source="association.first_co_occurred_at")
    lastCoOccurredAt = serializers.DateTimeField(source="association.last_co_occurred_at")
    conversationContexts = serializers.ListField(
        child=serializers.CharField(), source="association.conversation_contexts"
    )


class DiscoverData(serializers.Serializer):
    memoryId = serializers.UUIDField()
    associations = NeighbourOutput(many=True)
    count = serializers.IntegerField()


# A ``memories.selectors.associations.Hub``.
class HubOutput(HeldMemoryOutput):
    phi = serializers.FloatField(source="memory.resonance_phi")
    totalConnections = serializers.IntegerField(source="total_connections")
    totalCoOccurrences = serializers.IntegerField(source="total_co_occurrences")
    avgStrength = RoundedFloatField(digits=4, source="avg_strength")


class HubsData(serializers.Serializer):
    hubs = HubOutput(many=True)
    count = serializers.IntegerField()


# A ``memories.selectors.associations.NetworkStats``.
class NetworkStatsData(serializers.Serializer):
    memoryId = serializers.UUIDField(source="memory_id")
    totalAssociations = serializers.IntegerField(source="total_associations")
    avgStrength = serializers.FloatField(source="avg_strength")
    maxStrength = serializers.FloatField(source="max_strength")
    totalCoOccurrences = serializers.IntegerField(source="total_co_occurrences")
