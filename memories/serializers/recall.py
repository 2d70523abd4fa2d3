"""HTTP shapes of recall: ``POST /memories/query`` and ``POST /memories/feedback`` — the
bodies they take and the ``data`` they answer with."""

from rest_framework import serializers

from anima_site.serializers import (
    JsonBooleanField,
    JsonCharField,
    JsonFloatField,
    JsonIntegerField,
    JsonObjectField,
    JsonUUIDField,
    StrictSerializer,
)
from memories.models import Tier
from memories.serializers.fields import (
    AS_OF_HELP,
    INCLUDE_SUPERSEDED_HELP,
    EventTimeField,
    RoundedFloatField,
    check_range,
    check_validity,
    conversation_id_field,
    tags_field,
)
from memories.serializers.memories import MemoryOutput
from memories.services.querying import MODE_HYBRID, MODE_SEMANTIC

MAX_QUERY_CHARS = 5000
MAX_QUERY_LIMIT = 100


class MemoryQueryInput(StrictSerializer):
    query = JsonCharField(min_length=1, max_length=MAX_QUERY_CHARS, trim_whitespace=False)
    limit = JsonIntegerField(min_value=1, max_value=MAX_QUERY_LIMIT, required=False, default=20)
    similarityThreshold = JsonFloatField(min_value=0.0, max_value=1.0, required=False)
    tiers = serializers.ListField(child=serializers.ChoiceField(choices=Tier.values), required=False, allow_empty=False)
    conversationId = conversation_id_field()
    category = JsonCharField(max_length=100, required=False)
    tags = tags_field()
    mode = serializers.ChoiceField(
        choices=[MODE_HYBRID, MODE_SEMANTIC],
        required=False,
        default=MODE_HYBRID,
        help_text="hybrid (default): meaning and words; semantic: meaning only.",
    )
    metadata = JsonObjectField(
        required=False, help_text="JSON containment: memories whose metadata contains this object."
    )
    source = JsonCharField(max_length=100, required=False)
    createdAfter = serializers.DateTimeField(required=False)
    createdBefore = serializers.DateTimeField(required=False)
    lastAccessedAfter = serializers.DateTimeField(required=False)
    occurredAfter = EventTimeField(required=False, help_text="Only memories that happened at or after this time.")
    occurredBefore = EventTimeField(required=False, help_text="Only memories that happened before this time.")
    asOf = EventTimeField(required=False, help_text=AS_OF_HELP)
    includeSuperseded = JsonBooleanField(required=False, default=False, help_text=INCLUDE_SUPERSEDED_HELP)
    recencyHalfLifeDays = JsonFloatField(
        min_value=0.001, max_value=36500, required=False, help_text="Weight × 0.5 ** (days since last access / this)."
    )

    def validate_query(self, value):
        if not value.strip():
            raise serializers.ValidationError("This field may not be blank.")
        return value

    def validate(self, attrs):
        check_range(attrs, "occurredAfter", "occurredBefore")
        check_validity(attrs)
        return attrs


# A ``memories.services.querying.QueryHit``: the memory's fields, then its scores.
class HybridHitOutput(MemoryOutput):
    from_result = True

    similarity = serializers.SerializerMethodField()
    relevance = serializers.SerializerMethodField()
    structuralWeight = serializers.SerializerMethodField()
    textScore = RoundedFloatField(
        digits=6,
        source="text_score",
        required=False,
        help_text="Only in hybrid mode: the sum of the idf of the question's words this memory contains.",
    )

    def get_similarity(self, hit) -> float:
        return round(hit.similarity, 6)

    def get_relevance(self, hit) -> float:
        return round(hit.relevance, 6)

    def get_structuralWeight(self, hit) -> float:
        return round(hit.weight, 6)


class QueryData(serializers.Serializer):
    memories = HybridHitOutput(many=True)
    count = serializers.IntegerField()
    query = serializers.CharField()


def query_hits_output(hits) -> list[dict]:
    """``HybridHitOutput`` of ``QueryHit``s whose memory is already as ``MemoryOutput``
    shows it (written by PostgreSQL, ``memories.services.access``): its flag and the
    scores, each rounded as the serializer's fields round them, added in its order."""
    shown = []
    for hit in hits:
        memory = dict(hit.memory)
        memory["embeddingTruncated"] = hit.embedding_truncated
        memory["similarity"] = round(hit.similarity, 6)
        memory["relevance"] = round(hit.relevance, 6)
        memory["structuralWeight"] = round(hit.weight, 6)
        if hit.text_score is not None:
            memory["textScore"] = round(hit.text_score, 6)
        shown.append(memory)
    return shown


MAX_FEEDBACK_IDS = 100


class MemoryFeedbackInput(StrictSerializer):
    """``POST /memories/feedback``: the ids as sent (1-100), repeats counted once."""

    memoryIds = serializers.ListField(child=JsonUUIDField(), min_length=1, max_length=MAX_FEEDBACK_IDS)
    useful = JsonBooleanField(help_text="true: the memories helped (φ up); false: they misled (φ down).")
    conversationId = conversation_id_field()

    def validate_memoryIds(self, value):
        return list(dict.fromkeys(value))


class FeedbackMemoryOutput(serializers.Serializer):
    memoryId = serializers.UUIDField(source="id")
    resonancePhi = serializers.FloatField(source="resonance_phi")
    accessCount = serializers.IntegerField(source="access_count")


class FeedbackData(serializers.Serializer):
    updated = FeedbackMemoryOutput(many=True)
    notFound = serializers.ListField(
        child=serializers.UUIDField(), help_text="Unknown, deleted, merged or of another namespace: unchanged."
    )
    useful = serializers.BooleanField()
