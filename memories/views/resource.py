"""The memory resource: list, retrieve, PATCH, DELETE (soft) and restore.

The id in a URL is matched as a UUID (anything else is no route: 404 ``NOT_FOUND``).
PUT is not offered (405): PATCH changes the fields it names.
"""

from uuid import UUID

from drf_spectacular.utils import extend_schema
from rest_framework.decorators import action

from anima_site.api import success
from anima_site.tenancy import request_namespace
from memories import schema
from memories.filters import MemoryFilters
from memories.listing import memories_list, memory_get
from memories.serializers import (
    MemoryDeletedOutput,
    MemoryListInput,
    MemoryOutput,
    MemoryPageOutput,
    MemoryPatchInput,
    MemoryRestoreInput,
)
from memories.serializers import MemoryDeleteInput
from memories.services.forgetting import memory_purge
from memories.services.curation import (
    MESSAGE_DELETED,
    MESSAGE_NOT_DELETED,
    MESSAGE_RESTORED,
    MESSAGE_UPDATED,
    memory_restore,
    memory_soft_delete,
    memory_update_fields,
)
from memories.views.core import validated

MESSAGE_PURGED = "Memory removed for good, with every copy of its text."

UUID_PATTERN = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

#: PATCH body keys → ``memory_update_fields`` keywords.
_PATCH_FIELDS = {
    "content": "content",
    "category": "category",
    "tags": "tags",
    "source": "source",
    "metadata": "metadata",
    "isCatalyst": "is_catalyst",
    "pinned": "pinned",
    "occurredAt": "occurred_at",
}


class MemoryResourceActions:
    """``/memories/``, ``/memories/{id}/``, ``/memories/{id}/restore/``."""

    lookup_value_regex = UUID_PATTERN

    @extend_schema(parameters=[MemoryListInput], responses=schema.LIST, summary="List memories")
    def list(self, request):
        params = validated(MemoryListInput, request.query_params)
        page = memories_list(
            namespace=request_namespace(request),
            filters=MemoryFilters(
                tiers=[params["tier"]] if params.get("tier") else None,
                category=params.get("category"),
                tags=params.get("tag"),
                is_catalyst=params.get("isCatalyst"),
                source=params.get("source"),
                created_after=params.get("createdAfter"),
                created_before=params.get("createdBefore"),
                occurred_after=params.get("occurredAfter"),
                occurred_before=params.get("occurredBefore"),
            ),
            ordering=params["ordering"],
            page_size=params["limit"],
            cursor=params.get("cursor"),
        )
        data = {
            "memories": MemoryOutput(page.memories, many=True).data,
            "count": len(page.memories),
            "nextCursor": page.next_cursor,
            "previousCursor": page.previous_cursor,
        }
        return success(request, data)

    @extend_schema(responses=schema.RETRIEVE, summary="Get a memory")
    def retrieve(self, request, pk=None):
        memory = memory_get(namespace=request_namespace(request), memory_id=UUID(pk))
        return success(request, {"memory": MemoryOutput(memory).data})

    @extend_schema(request=MemoryPatchInput, responses=schema.PATCH, summary="Change a memory")
    def partial_update(self, request, pk=None):
        body = validated(MemoryPatchInput, request.data)
        result = memory_update_fields(
            namespace=request_namespace(request),
            memory_id=UUID(pk),
            **{_PATCH_FIELDS[key]: value for key, value in body.items()},
        )
        data = {"memory": MemoryOutput(result.memory).data, "message": MESSAGE_UPDATED}
        return success(request, data, embeddingProvider=result.embedding_provider)

    @extend_schema(parameters=[MemoryDeleteInput], responses=schema.DELETE, summary="Delete a memory (soft, or ?purge=true)")
    def destroy(self, request, pk=None):
        memory_id = UUID(pk)
        if validated(MemoryDeleteInput, request.query_params.dict())["purge"]:
            counts = memory_purge(namespace=request_namespace(request), memory_id=memory_id)
            data = {"id": str(memory_id), "purged": True, "counts": counts.as_dict(), "message": MESSAGE_PURGED}
            return success(request, data)
        deleted_at = memory_soft_delete(namespace=request_namespace(request), memory_id=memory_id)
        data = MemoryDeletedOutput({"id": memory_id, "deletedAt": deleted_at, "message": MESSAGE_DELETED}).data
        return success(request, data)

    @extend_schema(request=MemoryRestoreInput, responses=schema.RESTORE, summary="Restore a deleted memory")
    @action(detail=True, methods=["post"], url_path="restore")
    def restore(self, request, pk=None):
        validated(MemoryRestoreInput, request.data)
        memory, restored = memory_restore(namespace=request_namespace(request), memory_id=UUID(pk))
        data = {"memory": MemoryOutput(memory).data, "message": MESSAGE_RESTORED if restored else MESSAGE_NOT_DELETED}
        return success(request, data)
