"""HTTP shapes of a namespace's φ: ``GET /memories/catalysts`` and ``GET /memories/stats``."""

from rest_framework import serializers

from anima_site.serializers import StrictSerializer

MAX_CATALYST_LIMIT = 100


class CatalystsInput(StrictSerializer):
    limit = serializers.IntegerField(min_value=1, max_value=MAX_CATALYST_LIMIT, required=False, default=10)


class CatalystOutput(serializers.Serializer):
    id = serializers.UUIDField()
    content = serializers.CharField()
    tier = serializers.CharField()
    category = serializers.CharField(allow_null=True)
    phi = serializers.FloatField(source="resonance_phi")
    isCatalyst = serializers.BooleanField(source="is_catalyst")
    accessCount = serializers.IntegerField(source="access_count")
    lastAccessed = serializers.DateTimeField(source="last_accessed")


class CatalystsData(serializers.Serializer):
    catalysts = CatalystOutput(many=True)
    count = serializers.IntegerField()


# A ``memories.selectors.resonance.CategoryPhi``.
class TopCategory(serializers.Serializer):
    category = serializers.CharField()
    totalPhi = serializers.FloatField(source="total_phi")
    memoryCount = serializers.IntegerField(source="memory_count")


# A ``memories.selectors.resonance.PhiStats``.
class StatsData(serializers.Serializer):
    totalPhi = serializers.FloatField(source="total_phi")
    avgPhi = serializers.FloatField(source="avg_phi")
    maxPhi = serializers.FloatField(source="max_phi")
    catalystCount = serializers.IntegerField(source="catalyst_count")
    totalMemories = serializers.IntegerField(source="total_memories")
    topCategory = TopCategory(source="top_category", allow_null=True)
