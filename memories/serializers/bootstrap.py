"""HTTP shapes of ``GET /memories/bootstrap``: its query string and its ``data``."""

from rest_framework import serializers

from anima_site.serializers import QueryBooleanField, StrictSerializer
from memories.serializers.fields import MAX_CONVERSATION_ID_CHARS
from memories.serializers.memories import MemoryOutput

MAX_BOOTSTRAP_LIMIT = 200


class MemoryBootstrapInput(StrictSerializer):
    conversationId = serializers.CharField(min_length=1, max_length=MAX_CONVERSATION_ID_CHARS, required=False)
    limit = serializers.IntegerField(min_value=1, max_value=MAX_BOOTSTRAP_LIMIT, required=False, default=50)
    includeActive = QueryBooleanField(required=False, default=True)
    includeThread = QueryBooleanField(required=False, default=True)
    includeStable = QueryBooleanField(required=False, default=True)
    activeLimit = serializers.IntegerField(min_value=0, max_value=MAX_BOOTSTRAP_LIMIT, required=False)
    maxChars = serializers.IntegerField(min_value=1, required=False)


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


# A ``memories.selectors.bootstrap.Bootstrap``.
class BootstrapData(serializers.Serializer):
    memories = BootstrapBranches(source="*")
    distribution = Distribution()
