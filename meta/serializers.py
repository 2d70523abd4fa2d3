"""The ``data`` of the operations endpoints: the views render ``meta.selectors``' dataclasses
with these, and the same classes document the responses (``anima_site.openapi`` wraps them
in the envelope)."""

from rest_framework import serializers


# Reads a ``meta.selectors.CacheStats``.
class CacheStatsOutput(serializers.Serializer):
    hits = serializers.IntegerField()
    misses = serializers.IntegerField()
    hitRate = serializers.FloatField(source="hit_rate")
    size = serializers.IntegerField(allow_null=True)
    maxSize = serializers.IntegerField(source="max_size")


# Reads a ``CacheStats``: the counters under ``cache``, and its recommendation.
class CacheStatsData(serializers.Serializer):
    cache = CacheStatsOutput(source="*")
    recommendation = serializers.CharField()


class CacheWithStatus(CacheStatsOutput):
    status = serializers.ChoiceField(choices=["healthy", "warming_up"])


class DatabaseOutput(serializers.Serializer):
    connectionsInUse = serializers.IntegerField(source="connections_in_use")
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


# Reads a ``meta.selectors.SystemMetrics``.
class SystemMetricsData(serializers.Serializer):
    cache = CacheWithStatus()
    database = DatabaseOutput()
    queue = QueueOutput()
    memories = TierCountsOutput()
    timestamp = serializers.DateTimeField()
