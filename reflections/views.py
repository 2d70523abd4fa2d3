"""HTTP for reflections and handshakes: validate, call one service or selector, render the ``data`` shape.

Three resources at the URLs of SPEC §3: ``MetaReflectionViewSet`` (``/meta/conversation-end``,
``/meta/manual-reflection``, ``/meta/reflection``: the service's own numbers),
``HandshakeViewSet`` (``/meta/handshake``, ``…/generate``, ``…/history``) and
``ConversationReflectionViewSet`` (``/reflection/…``: the assistant's own view).
"""

from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action

from anima_site.api import success
from anima_site.http import validated
from anima_site.openapi import api_responses
from anima_site.serializers import EmptyInput
from anima_site.tenancy import request_namespace
from keys.models import Scope
from reflections import serializers as s
from reflections.models import ReflectionType
from reflections.selectors import (
    conversation_reflections_history,
    conversation_reflections_stats,
    handshakes_history,
    reflections_latest,
)
from reflections.services.handshakes import handshake_current
from reflections.services.reflections import conversation_reflection_record, reflection_record

REFLECT = api_responses({201: ("MetaReflectionCreated", s.ReflectionData())}, body=True)
REFLECTIONS = api_responses({200: ("MetaReflectionList", s.ReflectionListData())})
HANDSHAKE = api_responses({200: ("HandshakeResult", s.HandshakeData())})
HANDSHAKE_GENERATE = api_responses({200: ("HandshakeGenerated", s.HandshakeData())}, body=True)
HANDSHAKES = api_responses({200: ("HandshakeList", s.HandshakeListData())})
CONVERSATION_REFLECT = api_responses(
    {201: ("ConversationReflectionCreated", s.ConversationReflectionData())}, body=True
)
CONVERSATION_REFLECTIONS = api_responses({200: ("ConversationReflectionList", s.ConversationReflectionListData())})
CONVERSATION_STATS = api_responses({200: ("ConversationReflectionStats", s.ReflectionStatsOutput())})


class MetaReflectionViewSet(viewsets.ViewSet):
    @extend_schema(request=s.ConversationEndInput, responses=REFLECT, summary="Reflect on a conversation")
    @action(detail=False, methods=["post"], url_path="conversation-end")
    def conversation_end(self, request):
        return self._reflect(request, s.ConversationEndInput, ReflectionType.CONVERSATION_END)

    @extend_schema(request=s.ManualReflectionInput, responses=REFLECT, summary="Reflect now")
    @action(detail=False, methods=["post"], url_path="manual-reflection")
    def manual_reflection(self, request):
        return self._reflect(request, s.ManualReflectionInput, ReflectionType.MANUAL)

    def _reflect(self, request, input_serializer, reflection_type: str):
        body = validated(input_serializer, request.data)
        reflection = reflection_record(namespace=request_namespace(request), reflection_type=reflection_type, **body)
        return success(request, s.ReflectionData({"reflection": reflection}).data, status_code=201)

    @extend_schema(parameters=[s.ReflectionQueryInput], responses=REFLECTIONS, summary="Latest reflections")
    @action(detail=False, methods=["get"], url_path="reflection")
    def reflection(self, request):
        params = validated(s.ReflectionQueryInput, request.query_params.dict())
        reflections = reflections_latest(namespace=request_namespace(request), **params)
        return success(request, s.ReflectionListData({"reflections": reflections, "count": len(reflections)}).data)


class HandshakeViewSet(viewsets.ViewSet):
    @extend_schema(responses=HANDSHAKE, summary="The current handshake")
    @action(detail=False, methods=["get"], url_path="handshake", url_name="current")
    def handshake(self, request):
        validated(EmptyInput, request.query_params.dict())
        # A read-only key gets the current handshake, or one composed now and not kept.
        writer = request.auth is None or request.auth.allows(Scope.WRITE)
        handshake, created = handshake_current(namespace=request_namespace(request), save=writer)
        return success(request, s.HandshakeData({"handshake": handshake, "created": created}).data)

    @extend_schema(request=s.HandshakeGenerateInput, responses=HANDSHAKE_GENERATE, summary="Generate a handshake")
    @action(detail=False, methods=["post"], url_path="handshake/generate", url_name="generate")
    def handshake_generate(self, request):
        body = validated(s.HandshakeGenerateInput, request.data)
        handshake, created = handshake_current(namespace=request_namespace(request), **body)
        return success(request, s.HandshakeData({"handshake": handshake, "created": created}).data)

    @extend_schema(parameters=[s.HandshakeHistoryInput], responses=HANDSHAKES, summary="Past handshakes")
    @action(detail=False, methods=["get"], url_path="handshake/history", url_name="history")
    def handshake_history(self, request):
        params = validated(s.HandshakeHistoryInput, request.query_params.dict())
        handshakes = handshakes_history(namespace=request_namespace(request), **params)
        return success(request, s.HandshakeListData({"handshakes": handshakes, "count": len(handshakes)}).data)


class ConversationReflectionViewSet(viewsets.ViewSet):
    @extend_schema(
        request=s.ConversationReflectionInput, responses=CONVERSATION_REFLECT, summary="Record how a conversation felt"
    )
    @action(detail=False, methods=["post"], url_path="conversation-end")
    def conversation_end(self, request):
        body = validated(s.ConversationReflectionInput, request.data)
        reflection = conversation_reflection_record(namespace=request_namespace(request), **body)
        return success(request, s.ConversationReflectionData({"reflection": reflection}).data, status_code=201)

    @extend_schema(
        parameters=[s.ReflectionHistoryInput], responses=CONVERSATION_REFLECTIONS, summary="Past reflections"
    )
    @action(detail=False, methods=["get"], url_path="history")
    def history(self, request):
        params = validated(s.ReflectionHistoryInput, request.query_params.dict())
        reflections = conversation_reflections_history(namespace=request_namespace(request), **params)
        data = s.ConversationReflectionListData({"reflections": reflections, "count": len(reflections)}).data
        return success(request, data)

    @extend_schema(responses=CONVERSATION_STATS, summary="Reflection averages")
    @action(detail=False, methods=["get"], url_path="stats")
    def stats(self, request):
        validated(EmptyInput, request.query_params.dict())
        stats = conversation_reflections_stats(namespace=request_namespace(request))
        return success(request, s.ReflectionStatsOutput(stats).data)
