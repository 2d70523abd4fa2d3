"""HTTP shapes of ``POST /namespaces/purge``."""

from rest_framework import serializers

from anima_site.serializers import JsonCharField, StrictSerializer


class NamespacePurgeInput(StrictSerializer):
    confirm = JsonCharField(help_text="The namespace being purged, typed again.")


class NamespacePurged(serializers.Serializer):
    namespace = serializers.CharField()
    counts = serializers.DictField(child=serializers.IntegerField())
