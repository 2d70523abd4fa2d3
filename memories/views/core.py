"""The core routes: add, query, feedback, bootstrap."""

from drf_spectacular.utils import extend_schema
from rest_framework.decorators import action

from anima_site.api import success
from anima_site.tenancy import request_namespace
from memories.serializers import (
    FeedbackMemoryOutput,
    MemoryAddBatchInput,
    MemoryAddInput,
    MemoryBootstrapInput,
    MemoryFeedbackInput,
    MemoryOutput,
    MemoryQueryInput,
    QueryHitOutput,
)
from memories import schema
from memories.filters import MemoryFilters
from memories.selectors import memories_bootstrap
from memories.services.adding import (
    MESSAGE_CREATED,
    MESSAGE_DUPLICATE,
    BatchItem,
    memories_add_batch,
    memory_add,
)
from memories.services.feedback import memory_feedback
from memories.services.querying import memory_query


def promotions_output(promotions) -> list[dict]:
    return [{"memoryId": str(p.memory_id), "fromTier": p.from_tier, "toTier": p.to_tier} for p in promotions]


BATCH_STATUSES = ("created", "duplicate", "invalid")


def _checked_item(raw) -> tuple[BatchItem | None, dict | None]:
    """(item, None) when ``raw`` is a valid add body, else (None, {field, message})."""
    serializer = MemoryAddInput(data=raw)
    if serializer.is_valid():
        body = serializer.validated_data
        item = BatchItem(
            content=body["content"],
            category=body.get("category"),
            tags=body.get("tags"),
            source=body.get("source"),
            is_catalyst=body["isCatalyst"],
            metadata=body.get("metadata"),
            occurred_at=body.get("occurredAt"),
        )
        return item, None
    field, messages = next(iter(serializer.errors.items()))
    message = messages[0] if isinstance(messages, list) and messages else str(messages)
    return None, {"field": field, "message": str(message)}


def validated(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class CoreMemoryActions:
    """``/memories/add``, ``/memories/query``, ``/memories/feedback``, ``/memories/bootstrap``."""

    #: A query changes only counters, φ and tiers: a read-scope key may run it. Feedback
    #: is a deliberate write of φ: it needs a write key, as add does.
    action_scopes = {"query": "read", "feedback": "write"}

    @extend_schema(request=MemoryAddInput, responses=schema.ADD, summary="Store a memory")
    @action(detail=False, methods=["post"], url_path="add")
    def add(self, request):
        body = validated(MemoryAddInput, request.data)
        result = memory_add(
            namespace=request_namespace(request),
            content=body["content"],
            category=body.get("category"),
            tags=body.get("tags"),
            source=body.get("source"),
            is_catalyst=body["isCatalyst"],
            metadata=body.get("metadata"),
            occurred_at=body.get("occurredAt"),
        )
        result.memory.embedding_truncated = result.embedding_truncated
        data = {
            "memory": MemoryOutput(result.memory).data,
            "isDuplicate": result.is_duplicate,
            "message": MESSAGE_DUPLICATE if result.is_duplicate else MESSAGE_CREATED,
        }
        meta = {"embeddingProvider": result.embedding_provider}
        if result.promotions:
            meta["promotions"] = promotions_output(result.promotions)
        return success(request, data, status_code=200 if result.is_duplicate else 201, **meta)

    @extend_schema(request=MemoryAddBatchInput, responses=schema.ADD_BATCH, summary="Store up to 100 memories")
    @action(detail=False, methods=["post"], url_path="add-batch")
    def add_batch(self, request):
        body = validated(MemoryAddBatchInput, request.data)
        checked = [_checked_item(raw) for raw in body["items"]]
        valid = [(index, item) for index, (item, _) in enumerate(checked) if item is not None]
        result = memories_add_batch(namespace=request_namespace(request), items=[item for _, item in valid])
        outcomes = dict(zip((index for index, _ in valid), result.outcomes))
        listed = []
        for index, (item, error) in enumerate(checked):
            if item is None:
                listed.append({"index": index, "status": "invalid", "memoryId": None, **error})
            else:
                outcome = outcomes[index]
                listed.append({"index": index, "status": outcome.status, "memoryId": str(outcome.memory_id)})
        counts = {status: sum(entry["status"] == status for entry in listed) for status in BATCH_STATUSES}
        meta = {"embeddingProvider": result.embedding_provider}
        if result.promotions:
            meta["promotions"] = promotions_output(result.promotions)
        status_code = 201 if counts["created"] else 200
        return success(request, {"items": listed, "counts": counts}, status_code=status_code, **meta)

    @extend_schema(request=MemoryQueryInput, responses=schema.QUERY, summary="Find memories")
    @action(detail=False, methods=["post"], url_path="query")
    def query(self, request):
        body = validated(MemoryQueryInput, request.data)
        result = memory_query(
            namespace=request_namespace(request),
            query=body["query"],
            limit=body["limit"],
            similarity_threshold=body.get("similarityThreshold"),
            filters=MemoryFilters(
                tiers=body.get("tiers"),
                category=body.get("category"),
                tags=body.get("tags"),
                metadata=body.get("metadata"),
                source=body.get("source"),
                created_after=body.get("createdAfter"),
                created_before=body.get("createdBefore"),
                last_accessed_after=body.get("lastAccessedAfter"),
                occurred_after=body.get("occurredAfter"),
                occurred_before=body.get("occurredBefore"),
            ),
            conversation_id=body.get("conversationId"),
            mode=body["mode"],
            recency_half_life_days=body.get("recencyHalfLifeDays"),
        )
        for memory, candidate in result.hits:
            memory.similarity = candidate.similarity
            memory.relevance = candidate.relevance
            memory.structural_weight = candidate.weight
            memory.embedding_truncated = candidate.truncated
        # One serializer for the list: its fields are built (deep-copied) once, not per hit.
        memories = QueryHitOutput([memory for memory, _ in result.hits], many=True).data
        for shown, (_, candidate) in zip(memories, result.hits):
            if candidate.text_score is not None:
                shown["textScore"] = round(candidate.text_score, 6)
        meta = {"queryTime": round(result.query_time_ms, 2), "embeddingProvider": result.embedding_provider}
        if result.promotions:
            meta["promotions"] = promotions_output(result.promotions)
        return success(request, {"memories": memories, "count": len(memories), "query": body["query"]}, **meta)

    @extend_schema(request=MemoryFeedbackInput, responses=schema.FEEDBACK, summary="Mark memories useful or not")
    @action(detail=False, methods=["post"], url_path="feedback")
    def feedback(self, request):
        body = validated(MemoryFeedbackInput, request.data)
        result = memory_feedback(
            namespace=request_namespace(request),
            memory_ids=body["memoryIds"],
            useful=body["useful"],
            conversation_id=body.get("conversationId"),
        )
        data = {
            "updated": FeedbackMemoryOutput(result.updated, many=True).data,
            "notFound": [str(memory_id) for memory_id in result.not_found],
            "useful": body["useful"],
        }
        meta = {"promotions": promotions_output(result.promotions)} if result.promotions else {}
        return success(request, data, **meta)

    @extend_schema(parameters=[MemoryBootstrapInput], responses=schema.BOOTSTRAP, summary="Bootstrap")
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
        )
        data = {
            "memories": {
                "pinned": MemoryOutput(result.pinned, many=True).data,
                "active": MemoryOutput(result.active, many=True).data,
                "thread": MemoryOutput(result.thread, many=True).data,
                "stable": MemoryOutput(result.stable, many=True).data,
            },
            "distribution": result.distribution,
        }
        return success(request, data)
