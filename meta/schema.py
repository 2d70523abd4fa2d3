"""OpenAPI shapes of the meta endpoints' ``data`` (documentation only; see anima_site.openapi)."""

from rest_framework import serializers

from anima_site.openapi import api_responses
from meta.serializers import (
    ConversationReflectionOutput,
    HandshakeOutput,
    MetaReflectionOutput,
    ReflectionStatsOutput,
)


class CacheStatsOutput(serializers.Serializer):
    hits = serializers.IntegerField()
    misses = serializers.IntegerField()
    hitRate = serializers.FloatField()
    size = serializers.IntegerField(allow_null=True)
    maxSize = serializers.IntegerField()


class CacheStatsData(serializers.Serializer):
    cache = CacheStatsOutput()
    recommendation = serializers.CharField()


class CacheWithStatus(CacheStatsOutput):
    status = serializers.ChoiceField(choices=["healthy", "warming_up"])


class DatabaseOutput(serializers.Serializer):
    connectionsInUse = serializers.IntegerField()
    idle = serializers.IntegerField()
    waiting = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["ok", "under_pressure"])


class QueueOutput(serializers.Serializer):
    queued = serializers.IntegerField()
    failed = serializers.IntegerField()


class TierCountsOutput(serializers.Serializer):
    active = serializers.IntegerField()
    thread = serializers.IntegerField()
    stable = serializers.IntegerField()
    network = serializers.IntegerField()
    total = serializers.IntegerField()


class SystemMetricsData(serializers.Serializer):
    cache = CacheWithStatus()
    database = DatabaseOutput()
    queue = QueueOutput()
    memories = TierCountsOutput()
    timestamp = serializers.DateTimeField()


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


CACHE_STATS = api_responses({200: ("CacheStats", CacheStatsData())})
SYSTEM_METRICS = api_responses({200: ("SystemMetrics", SystemMetricsData())})
REFLECT = api_responses({201: ("MetaReflectionCreated", ReflectionData())}, body=True)
REFLECTIONS = api_responses({200: ("MetaReflectionList", ReflectionListData())})
HANDSHAKE = api_responses({200: ("HandshakeResult", HandshakeData())})
HANDSHAKE_GENERATE = api_responses({200: ("HandshakeGenerated", HandshakeData())}, body=True)
HANDSHAKES = api_responses({200: ("HandshakeList", HandshakeListData())})
CONVERSATION_REFLECT = api_responses({201: ("ConversationReflectionCreated", ConversationReflectionData())}, body=True)
CONVERSATION_REFLECTIONS = api_responses({200: ("ConversationReflectionList", ConversationReflectionListData())})
CONVERSATION_STATS = api_responses({200: ("ConversationReflectionStats", ReflectionStatsOutput())})
