"""HTTP shapes of the reflection and handshake endpoints (input validation and output)."""

from rest_framework import serializers

from memories.serializers import (
    MAX_CONVERSATION_ID_CHARS,
    JsonBooleanField,
    JsonCharField,
    JsonIntegerField,
    JsonObjectField,
    StrictSerializer,
)
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


def _conversation_id(required: bool):
    return JsonCharField(min_length=1, max_length=MAX_CONVERSATION_ID_CHARS, required=required)


class ConversationEndInput(StrictSerializer):
    conversationId = _conversation_id(required=True)
    sessionMetrics = SessionMetricsField(required=False, default=dict)


class ManualReflectionInput(StrictSerializer):
    conversationId = _conversation_id(required=False)
    sessionMetrics = SessionMetricsField(required=False, default=dict)


class ReflectionQueryInput(StrictSerializer):
    conversationId = serializers.CharField(min_length=1, max_length=MAX_CONVERSATION_ID_CHARS, required=False)
    reflectionType = serializers.ChoiceField(choices=ReflectionType.values, required=False)
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


def _score():
    return JsonIntegerField(min_value=1, max_value=10, required=False, allow_null=True)


class ConversationReflectionInput(StrictSerializer):
    conversationId = _conversation_id(required=True)
    contextQuality = _score()
    continuityScore = _score()
    neededCorrection = JsonBooleanField(required=False, default=False)
    hadEmergenceMoment = JsonBooleanField(required=False, default=False)
    surprises = JsonCharField(max_length=1000, required=False, allow_blank=True, default="")
    frictionNotes = JsonCharField(max_length=1000, required=False, allow_blank=True, default="")
    generalNotes = JsonCharField(max_length=2000, required=False, allow_blank=True, default="")


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
    conversationId = serializers.CharField(min_length=1, max_length=MAX_CONVERSATION_ID_CHARS, required=False)
    minQuality = serializers.IntegerField(min_value=1, max_value=10, required=False)
    limit = serializers.IntegerField(min_value=1, max_value=MAX_HISTORY_LIMIT, required=False, default=10)


class ReflectionStatsOutput(serializers.Serializer):
    totalReflections = serializers.IntegerField()
    avgContextQuality = serializers.FloatField(allow_null=True)
    avgContinuityScore = serializers.FloatField(allow_null=True)
    correctionsNeeded = serializers.IntegerField()
    emergenceMoments = serializers.IntegerField()
    firstReflectionAt = serializers.DateTimeField(allow_null=True)
    lastReflectionAt = serializers.DateTimeField(allow_null=True)


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
