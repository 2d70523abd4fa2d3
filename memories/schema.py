"""OpenAPI shapes of the memories endpoints' ``data`` (documentation only; see anima_site.openapi)."""

from rest_framework import serializers

from anima_site.openapi import api_responses
from memories.serializers import FeedbackMemoryOutput, MemoryDeletedOutput, MemoryOutput, MemoryPageOutput, QueryHitOutput
from memories.serializers_dynamics import CatalystOutput, PromotionOutput


class HybridHitOutput(QueryHitOutput):
    textScore = serializers.FloatField(
        required=False, help_text="Only in hybrid mode: the sum of the idf of the question's words this memory contains."
    )


class AddData(serializers.Serializer):
    memory = MemoryOutput()
    isDuplicate = serializers.BooleanField()
    message = serializers.CharField()


class BatchItemOutput(serializers.Serializer):
    index = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["created", "duplicate", "invalid"])
    memoryId = serializers.UUIDField(allow_null=True)
    field = serializers.CharField(required=False, help_text="Invalid items: the field at fault.")
    message = serializers.CharField(required=False)


class BatchCounts(serializers.Serializer):
    created = serializers.IntegerField()
    duplicate = serializers.IntegerField()
    invalid = serializers.IntegerField()


class AddBatchData(serializers.Serializer):
    items = BatchItemOutput(many=True)
    counts = BatchCounts()


class QueryData(serializers.Serializer):
    memories = HybridHitOutput(many=True)
    count = serializers.IntegerField()
    query = serializers.CharField()


class FeedbackData(serializers.Serializer):
    updated = FeedbackMemoryOutput(many=True)
    notFound = serializers.ListField(
        child=serializers.UUIDField(), help_text="Unknown, deleted, merged or of another namespace: unchanged."
    )
    useful = serializers.BooleanField()


class BootstrapBranches(serializers.Serializer):
    pinned = MemoryOutput(many=True)
    active = MemoryOutput(many=True)
    thread = MemoryOutput(many=True)
    stable = MemoryOutput(many=True)


class Distribution(serializers.Serializer):
    active = serializers.IntegerField()
    thread = serializers.IntegerField()
    stable = serializers.IntegerField()
    total = serializers.IntegerField()


class BootstrapData(serializers.Serializer):
    memories = BootstrapBranches()
    distribution = Distribution()


class MemoryData(serializers.Serializer):
    memory = MemoryOutput()
    message = serializers.CharField(required=False)


class UpdateTierData(serializers.Serializer):
    memory = MemoryOutput()
    promotion = PromotionOutput(allow_null=True)
    message = serializers.CharField()


class CatalystsData(serializers.Serializer):
    catalysts = CatalystOutput(many=True)
    count = serializers.IntegerField()


class TopCategory(serializers.Serializer):
    category = serializers.CharField()
    totalPhi = serializers.FloatField()
    memoryCount = serializers.IntegerField()


class StatsData(serializers.Serializer):
    totalPhi = serializers.FloatField()
    avgPhi = serializers.FloatField()
    maxPhi = serializers.FloatField()
    catalystCount = serializers.IntegerField()
    totalMemories = serializers.IntegerField()
    topCategory = TopCategory(allow_null=True)


class NeighbourOutput(serializers.Serializer):
    memoryId = serializers.UUIDField()
    content = serializers.CharField()
    tier = serializers.CharField()
    category = serializers.CharField(allow_null=True)
    tags = serializers.ListField(child=serializers.CharField())
    accessCount = serializers.IntegerField()
    coOccurrenceCount = serializers.IntegerField()
    strength = serializers.FloatField()
    firstCoOccurredAt = serializers.DateTimeField()
    lastCoOccurredAt = serializers.DateTimeField()
    conversationContexts = serializers.ListField(child=serializers.CharField())


class DiscoverData(serializers.Serializer):
    memoryId = serializers.UUIDField()
    associations = NeighbourOutput(many=True)
    count = serializers.IntegerField()


class HubOutput(serializers.Serializer):
    memoryId = serializers.UUIDField()
    content = serializers.CharField()
    tier = serializers.CharField()
    category = serializers.CharField(allow_null=True)
    phi = serializers.FloatField()
    totalConnections = serializers.IntegerField()
    totalCoOccurrences = serializers.IntegerField()
    avgStrength = serializers.FloatField()


class HubsData(serializers.Serializer):
    hubs = HubOutput(many=True)
    count = serializers.IntegerField()


class NetworkStatsData(serializers.Serializer):
    memoryId = serializers.UUIDField()
    totalAssociations = serializers.IntegerField()
    avgStrength = serializers.FloatField()
    maxStrength = serializers.FloatField()
    totalCoOccurrences = serializers.IntegerField()


ADD = api_responses({201: ("MemoryAdded", AddData()), 200: ("MemoryDuplicate", AddData())}, body=True)
ADD_BATCH = api_responses(
    {201: ("BatchAdded", AddBatchData()), 200: ("BatchNothingCreated", AddBatchData())}, body=True
)
QUERY = api_responses({200: ("QueryResult", QueryData())}, body=True)
FEEDBACK = api_responses({200: ("FeedbackResult", FeedbackData())}, body=True)
BOOTSTRAP = api_responses({200: ("BootstrapResult", BootstrapData())})
UPDATE_TIER = api_responses({200: ("TierUpdated", UpdateTierData())}, extra_errors=(404,), body=True)
CATALYSTS = api_responses({200: ("CatalystList", CatalystsData())})
STATS = api_responses({200: ("PhiStats", StatsData())})
DISCOVER = api_responses({200: ("AssociationDiscovery", DiscoverData())}, extra_errors=(404,))
HUBS = api_responses({200: ("AssociationHubs", HubsData())})
NETWORK_STATS = api_responses({200: ("AssociationNetworkStats", NetworkStatsData())}, extra_errors=(404,))
LIST = api_responses({200: ("MemoryPage", MemoryPageOutput())})
RETRIEVE = api_responses({200: ("MemoryDetail", MemoryData())}, extra_errors=(404,))
PATCH = api_responses({200: ("MemoryUpdated", MemoryData())}, extra_errors=(404, 409), body=True)
class PurgeCountsOutput(serializers.Serializer):
    memories = serializers.IntegerField()
    copiesScrubbed = serializers.IntegerField()
    handshakes = serializers.IntegerField()
    taskRecords = serializers.IntegerField()


class DeletedOrPurged(serializers.Serializer):
    id = serializers.UUIDField()
    deletedAt = serializers.DateTimeField(required=False)
    purged = serializers.BooleanField(required=False)
    counts = PurgeCountsOutput(required=False)
    message = serializers.CharField()


class NamespacePurged(serializers.Serializer):
    namespace = serializers.CharField()
    counts = serializers.DictField(child=serializers.IntegerField())


DELETE = api_responses({200: ("MemoryDeleted", DeletedOrPurged())}, extra_errors=(404,))
NAMESPACE_PURGE = api_responses({200: ("NamespacePurgeResult", NamespacePurged())}, body=True)
RESTORE = api_responses({200: ("MemoryRestored", MemoryData())}, extra_errors=(404, 409), body=True)
