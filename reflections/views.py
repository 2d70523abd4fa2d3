"""HTTP for reflections and handshakes: validate, call one service, shape the output.

Three resources at the URLs of SPEC §3: ``MetaReflectionViewSet`` (``/meta/conversation-end``,
``/meta/manual-reflection``, ``/meta/reflection``: the service's own numbers),
``HandshakeViewSet`` (``/meta/handshake``, ``…/generate``, ``…/history``) and
``ConversationReflectionViewSet`` (``/reflection/…``: the assistant's own view).
"""

from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action

from anima_site.api import success
from anima_site.tenancy import request_namespace
from keys.models import Scope
from memories.serializers_dynamics import EmptyInput
from memories.views.core import validated
from reflections import schema
from reflections import serializers as s
from reflections.models import ReflectionType
from reflections.services.handshakes import handshake_current, handshakes_history
from reflections.services.reflections import (
    conversation_reflection_record,
    conversation_reflections_history,
    conversation_reflections_stats,
    reflection_record,
    reflections_latest,
)


class MetaReflectionViewSet(viewsets.ViewSet):
    @extend_schema(request=s.ConversationEndInput, responses=schema.REFLECT, summary="Reflect on a conversation")
    @action(detail=False, methods=["post"], url_path="conversation-end")
    def conversation_end(self, request):
        body = validated(s.ConversationEndInput, request.data)
        reflection = reflection_record(
            namespace=request_namespace(request),
            reflection_type=ReflectionType.CONVERSATION_END,
            conversation_id=body["conversationId"],
            session_metrics=body["sessionMetrics"],
        )
        return success(request, {"reflection": s.MetaReflectionOutput(reflection).data}, status_code=201)

    @extend_schema(request=s.ManualReflectionInput, responses=schema.REFLECT, summary="Reflect now")
    @action(detail=False, methods=["post"], url_path="manual-reflection")
    def manual_reflection(self, request):
        body = validated(s.ManualReflectionInput, request.data)
        reflection = reflection_record(
            namespace=request_namespace(request),
            reflection_type=ReflectionType.MANUAL,
            conversation_id=body.get("conversationId"),
            session_metrics=body["sessionMetrics"],
        )
        return success(request, {"reflection": s.MetaReflectionOutput(reflection).data}, status_code=201)

    @extend_schema(parameters=[s.ReflectionQueryInput], responses=schema.REFLECTIONS, summary="Latest reflections")
    @action(detail=False, methods=["get"], url_path="reflection")
    def reflection(self, request):
        params = validated(s.ReflectionQueryInput, request.query_params.dict())
        reflections = reflections_latest(
            namespace=request_namespace(request),
            conversation_id=params.get("conversationId"),
            reflection_type=params.get("reflectionType"),
            limit=params["limit"],
        )
        data = s.MetaReflectionOutput(reflections, many=True).data
        return success(request, {"reflections": data, "count": len(data)})


class HandshakeViewSet(viewsets.ViewSet):
    @extend_schema(responses=schema.HANDSHAKE, summary="The current handshake")
    @action(detail=False, methods=["get"], url_path="handshake", url_name="current")
    def handshake(self, request):
        validated(EmptyInput, request.query_params.dict())
        # A read-only key gets the current handshake, or one composed now and not kept.
        writer = request.auth is None or request.auth.allows(Scope.WRITE)
        handshake, created = handshake_current(namespace=request_namespace(request), save=writer)
        return success(request, {"handshake": s.HandshakeOutput(handshake).data, "created": created})

    @extend_schema(request=s.HandshakeGenerateInput, responses=schema.HANDSHAKE_GENERATE, summary="Generate a handshake")
    @action(detail=False, methods=["post"], url_path="handshake/generate", url_name="generate")
    def handshake_generate(self, request):
        body = validated(s.HandshakeGenerateInput, request.data)
        handshake, created = handshake_current(namespace=request_namespace(request), force=body["force"])
        return success(request, {"handshake": s.HandshakeOutput(handshake).data, "created": created})

    @extend_schema(parameters=[s.HandshakeHistoryInput], responses=schema.HANDSHAKES, summary="Past handshakes")
    @action(detail=False, methods=["get"], url_path="handshake/history", url_name="history")
    def handshake_history(self, request):
        params = validated(s.HandshakeHistoryInput, request.query_params.dict())
        handshakes = handshakes_history(namespace=request_namespace(request), limit=params["limit"])
        data = s.HandshakeOutput(handshakes, many=True).data
        return success(request, {"handshakes": data, "count": len(data)})


class ConversationReflectionViewSet(viewsets.ViewSet):
    @extend_schema(request=s.ConversationReflectionInput, responses=schema.CONVERSATION_REFLECT, summary="Record how a conversation felt")
    @action(detail=False, methods=["post"], url_path="conversation-end")
    def conversation_end(self, request):
        body = validated(s.ConversationReflectionInput, request.data)
        reflection = conversation_reflection_record(
            namespace=request_namespace(request),
            conversation_id=body["conversationId"],
            context_quality=body.get("contextQuality"),
            continuity_score=body.get("continuityScore"),
            needed_correction=body["neededCorrection"],
            had_emergence_moment=body["hadEmergenceMoment"],
            surprises=body["surprises"],
            friction_notes=body["frictionNotes"],
            general_notes=body["generalNotes"],
        )
        return success(request, {"reflection": s.ConversationReflectionOutput(reflection).data}, status_code=201)

    @extend_schema(parameters=[s.ReflectionHistoryInput], responses=schema.CONVERSATION_REFLECTIONS, summary="Past reflections")
    @action(detail=False, methods=["get"], url_path="history")
    def history(self, request):
        params = validated(s.ReflectionHistoryInput, request.query_params.dict())
        rows = conversation_reflections_history(
            namespace=request_namespace(request),
            conversation_id=params.get("conversationId"),
            min_quality=params.get("minQuality"),
            limit=params["limit"],
        )
        data = s.ConversationReflectionOutput(rows, many=True).data
        return success(request, {"reflections": data, "count": len(data)})

    @extend_schema(responses=schema.CONVERSATION_STATS, summary="Reflection averages")
    @action(detail=False, methods=["get"], url_path="stats")
    def stats(self, request):
        validated(EmptyInput, request.query_params.dict())
        stats = conversation_reflections_stats(namespace=request_namespace(request))
        return success(request, s.ReflectionStatsOutput(stats).data)
