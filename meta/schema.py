"""OpenAPI shapes of the operations endpoints' ``data`` (documentation only; see anima_site.openapi)."""

from rest_framework import serializers

from anima_site.openapi import api_responses


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


CACHE_STATS = api_responses({200: ("CacheStats", CacheStatsData())})
SYSTEM_METRICS = api_responses({200: ("SystemMetrics", SystemMetricsData())})
