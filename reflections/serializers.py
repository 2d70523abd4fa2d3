"""HTTP shapes of the reflection and handshake endpoints: the inputs they validate and the
``data`` they answer — the views render with the ``…Data`` serializers, and the same
classes document the responses (``anima_site.openapi`` wraps them in the envelope)."""

from rest_framework import serializers

from anima_site.serializers import JsonBooleanField, JsonCharField, JsonIntegerField, JsonObjectField, StrictSerializer
from memories.serializers.fields import MAX_CONVERSATION_ID_CHARS
from reflections.models import ReflectionType
from reflections.services.reflections import METRIC_KEYS, METRIC_MAX

MAX_REFLECTION_LIMIT = 50
MAX_HISTORY_LIMIT = 100


class SessionMetricsField(JsonObjectField):
    """A JSON object stored as sent (``JsonObjectField`` decides what can be stored); the
    known counters must be numbers from 0 to ``METRIC_MAX``."""

    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        for key in METRIC_KEYS:
            value = data.get(key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= METRIC_MAX:
                raise serializers.ValidationError(f"{key} must be a number from 0 to {METRIC_MAX:.0e}.")
        accessed, loaded = data.get("memories_accessed"), data.get("memories_loaded")
        if isinstance(accessed, (int, float)) and isinstance(loaded, (int, float)) and accessed > loaded > 0:
            raise serializers.ValidationError("memories_accessed cannot exceed memories_loaded.")
        return data


# The inputs' ``source``s are the keyword arguments of the service or selector they feed:
# a view passes what ``validated`` returns on as it is.


def _conversation_id(required: bool):
    return JsonCharField(
        source="conversation_id", min_length=1, max_length=MAX_CONVERSATION_ID_CHARS, required=required
    )


def _conversation_id_param():
    return serializers.CharField(
        source="conversation_id", min_length=1, max_length=MAX_CONVERSATION_ID_CHARS, required=False
    )


class ConversationEndInput(StrictSerializer):
    conversationId = _conversation_id(required=True)
    sessionMetrics = SessionMetricsField(source="session_metrics", required=False, default=dict)


class ManualReflectionInput(StrictSerializer):
    conversationId = _conversation_id(required=False)
    sessionMetrics = SessionMetricsField(source="session_metrics", required=False, default=dict)


class ReflectionQueryInput(StrictSerializer):
    conversationId = _conversation_id_param()
    reflectionType = serializers.ChoiceField(source="reflection_type", choices=ReflectionType.values, required=False)
    limit = serializers.IntegerField(min_value=1, max_value=MAX_REFLECTION_LIMIT, required=False, default=1)


class MetaReflectionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    reflectionType = serializers.CharField(source="reflection_type")
    conversationId = serializers.CharField(source="conversation_id", allow_null=True)
    sessionMetrics = serializers.JSONField(source="session_metrics")
    metrics = serializers.JSONField()
    insights = serializers.ListField(child=serializers.CharField())
    recommendations = serializers.ListField(child=serializers.CharField())
    createdAt = serializers.DateTimeField(source="created_at")


def _score(source: str):
    return JsonIntegerField(source=source, min_value=1, max_value=10, required=False, allow_null=True)


def _notes(max_length: int, **source):
    return JsonCharField(max_length=max_length, required=False, allow_blank=True, default="", **source)


class ConversationReflectionInput(StrictSerializer):
    conversationId = _conversation_id(required=True)
    contextQuality = _score(source="context_quality")
    continuityScore = _score(source="continuity_score")
    neededCorrection = JsonBooleanField(source="needed_correction", required=False, default=False)
    hadEmergenceMoment = JsonBooleanField(source="had_emergence_moment", required=False, default=False)
    surprises = _notes(max_length=1000)
    frictionNotes = _notes(max_length=1000, source="friction_notes")
    generalNotes = _notes(max_length=2000, source="general_notes")


class ConversationReflectionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    conversationId = serializers.CharField(source="conversation_id")
    contextQuality = serializers.IntegerField(source="context_quality", allow_null=True)
    continuityScore = serializers.IntegerField(source="continuity_score", allow_null=True)
    neededCorrection = serializers.BooleanField(source="needed_correction")
    hadEmergenceMoment = serializers.BooleanField(source="had_emergence_moment")
    surprises = serializers.CharField()
    frictionNotes = serializers.CharField(source="friction_notes")
    generalNotes = serializers.CharField(source="general_notes")
    reflectedAt = serializers.DateTimeField(source="reflected_at")


class ReflectionHistoryInput(StrictSerializer):
    conversationId = _conversation_id_param()
    minQuality = serializers.IntegerField(source="min_quality", min_value=1, max_value=10, required=False)
    limit = serializers.IntegerField(min_value=1, max_value=MAX_HISTORY_LIMIT, required=False, default=10)


# Reads a ``reflections.selectors.ReflectionStats``.
class ReflectionStatsOutput(serializers.Serializer):
    totalReflections = serializers.IntegerField(source="total_reflections")
    avgContextQuality = serializers.FloatField(source="avg_context_quality", allow_null=True)
    avgContinuityScore = serializers.FloatField(source="avg_continuity_score", allow_null=True)
    correctionsNeeded = serializers.IntegerField(source="corrections_needed")
    emergenceMoments = serializers.IntegerField(source="emergence_moments")
    firstReflectionAt = serializers.DateTimeField(source="first_reflection_at", allow_null=True)
    lastReflectionAt = serializers.DateTimeField(source="last_reflection_at", allow_null=True)


class HandshakeGenerateInput(StrictSerializer):
    force = JsonBooleanField(required=False, default=True)


class HandshakeHistoryInput(StrictSerializer):
    limit = serializers.IntegerField(min_value=1, max_value=MAX_HISTORY_LIMIT, required=False, default=10)


class HandshakeOutput(serializers.Serializer):
    id = serializers.IntegerField(allow_null=True, help_text="null: composed for a read-only key and not kept.")
    promptText = serializers.CharField(source="prompt_text")
    topMemories = serializers.JSONField(source="top_memories")
    createdAt = serializers.DateTimeField(source="created_at")
    expiresAt = serializers.DateTimeField(source="expires_at")


# --- the ``data`` of each answer -----------------------------------------------------------


class ReflectionData(serializers.Serializer):
    reflection = MetaReflectionOutput()


class ReflectionListData(serializers.Serializer):
    reflections = MetaReflectionOutput(many=True)
    count = serializers.IntegerField()


class ConversationReflectionData(serializers.Serializer):
    reflection = ConversationReflectionOutput()


class ConversationReflectionListData(serializers.Serializer):
    reflections = ConversationReflectionOutput(many=True)
    count = serializers.IntegerField()


class HandshakeData(serializers.Serializer):
    handshake = HandshakeOutput()
    created = serializers.BooleanField()


class HandshakeListData(serializers.Serializer):
    handshakes = HandshakeOutput(many=True)
    count = serializers.IntegerField()
