"""``/memories/query``, ``/memories/feedback``, ``/memories/bootstrap``: recalling memories
for a conversation and saying whether they helped (a mixin of ``MemoryViewSet``)."""

from drf_spectacular.utils import extend_schema
from rest_framework.decorators import action

from anima_site.api import success
from anima_site.http import validated
from anima_site.openapi import api_responses
from anima_site.tenancy import request_namespace
from memories.selectors.bootstrap import memories_bootstrap
from memories.serializers.bootstrap import BootstrapData, Distribution, MemoryBootstrapInput
from memories.serializers.memories import memory_filters
from memories.serializers.recall import (
    FeedbackData,
    MemoryFeedbackInput,
    MemoryQueryInput,
    QueryData,
    query_hits_output,
)
from memories.serializers.tiers import promotions_meta
from memories.services.feedback import memory_feedback
from memories.services.querying import memory_query


QUERY_RESPONSES = api_responses({200: ("QueryResult", QueryData())}, body=True)
FEEDBACK_RESPONSES = api_responses({200: ("FeedbackResult", FeedbackData())}, body=True)
BOOTSTRAP_RESPONSES = api_responses({200: ("BootstrapResult", BootstrapData())})


class MemoryRecallActions:
    @extend_schema(request=MemoryQueryInput, responses=QUERY_RESPONSES, summary="Find memories")
    @action(detail=False, methods=["post"], url_path="query")
    def query(self, request):
        body = validated(MemoryQueryInput, request.data)
        result = memory_query(
            namespace=request_namespace(request),
            query=body["query"],
            limit=body["limit"],
            similarity_threshold=body.get("similarityThreshold"),
            filters=memory_filters(body),
            conversation_id=body.get("conversationId"),
            mode=body["mode"],
            recency_half_life_days=body.get("recencyHalfLifeDays"),
        )
        # QueryData, the memories already as MemoryOutput shows them (the schema's serializer).
        data = {"memories": query_hits_output(result.hits), "count": len(result.hits), "query": body["query"]}
        meta = {"queryTime": round(result.query_time_ms, 2), "embeddingProvider": result.embedding_provider}
        return success(request, data, **meta, **promotions_meta(result.promotions))

    @extend_schema(request=MemoryFeedbackInput, responses=FEEDBACK_RESPONSES, summary="Mark memories useful or not")
    @action(detail=False, methods=["post"], url_path="feedback")
    def feedback(self, request):
        body = validated(MemoryFeedbackInput, request.data)
        namespace, conversation_id = request_namespace(request), body.get("conversationId")
        result = memory_feedback(
            namespace=namespace, memory_ids=body["memoryIds"], useful=body["useful"], conversation_id=conversation_id
        )
        data = FeedbackData({"updated": result.updated, "notFound": result.not_found, "useful": body["useful"]}).data
        return success(request, data, **promotions_meta(result.promotions))

    @extend_schema(parameters=[MemoryBootstrapInput], responses=BOOTSTRAP_RESPONSES, summary="Bootstrap")
    @action(detail=False, methods=["get"], url_path="bootstrap")
    def bootstrap(self, request):
        params = validated(MemoryBootstrapInput, request.query_params.dict())
        result = memories_bootstrap(
            namespace=request_namespace(request),
            limit=params["limit"],
            include_active=params["includeActive"],
            include_thread=params["includeThread"],
            include_stable=params["includeStable"],
            active_limit=params.get("activeLimit"),
            max_chars=params.get("maxChars"),
            as_json=True,  # each memory as MemoryOutput shows it, written by PostgreSQL
        )
        branches = {"pinned": result.pinned, "active": result.active, "thread": result.thread, "stable": result.stable}
        return success(request, {"memories": branches, "distribution": Distribution(result.distribution).data})
