"""OpenAPI shapes of the reflection and handshake endpoints' ``data`` (documentation only; see anima_site.openapi)."""

from rest_framework import serializers

from anima_site.openapi import api_responses
from reflections.serializers import (
    ConversationReflectionOutput,
    HandshakeOutput,
    MetaReflectionOutput,
    ReflectionStatsOutput,
)


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


REFLECT = api_responses({201: ("MetaReflectionCreated", ReflectionData())}, body=True)
REFLECTIONS = api_responses({200: ("MetaReflectionList", ReflectionListData())})
HANDSHAKE = api_responses({200: ("HandshakeResult", HandshakeData())})
HANDSHAKE_GENERATE = api_responses({200: ("HandshakeGenerated", HandshakeData())}, body=True)
HANDSHAKES = api_responses({200: ("HandshakeList", HandshakeListData())})
CONVERSATION_REFLECT = api_responses({201: ("ConversationReflectionCreated", ConversationReflectionData())}, body=True)
CONVERSATION_REFLECTIONS = api_responses({200: ("ConversationReflectionList", ConversationReflectionListData())})
CONVERSATION_STATS = api_responses({200: ("ConversationReflectionStats", ReflectionStatsOutput())})
