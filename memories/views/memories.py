"""``/memories/``: the memory resource — add, add-batch, list, get, PATCH, DELETE (soft, or
``?purge=true``, ``&chain=true``), restore, correct — and ``MemoryViewSet``, which also serves the sub-resources of
``memory_recall``, ``memory_tiers`` and ``memory_resonance`` under the same prefix.

The id in a URL is matched as a UUID (anything else is no route: 404 ``NOT_FOUND``).
PUT is not offered (405): PATCH changes the fields it names.
"""

from uuid import UUID

from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action

from anima_site.api import success
from anima_site.http import validated
from anima_site.openapi import api_responses
from anima_site.tenancy import request_namespace
from memories.selectors.memories import memories_list, memory_get
from memories.serializers.memories import (
    AddBatchData,
    AddData,
    CorrectData,
    DeletedOrPurged,
    MemoryAddBatchInput,
    MemoryAddInput,
    MemoryCorrectInput,
    MemoryData,
    MemoryDeleteInput,
    MemoryListInput,
    MemoryPageOutput,
    MemoryPatchInput,
    MemoryRestoreInput,
    batch_item_checked,
    memory_filters,
    memory_keywords,
)
from memories.serializers.tiers import promotions_meta
from memories.services.adding import MESSAGE_CREATED, MESSAGE_DUPLICATE, BatchItem, memories_add_batch, memory_add
from memories.services.correcting import memory_correct
from memories.services.curation import (
    MESSAGE_DELETED,
    MESSAGE_NOT_DELETED,
    MESSAGE_RESTORED,
    MESSAGE_UPDATED,
    memory_restore,
    memory_soft_delete,
    memory_update_fields,
)
from memories.services.forgetting import memory_purge
from memories.views.memory_recall import MemoryRecallActions
from memories.views.memory_resonance import MemoryResonanceActions
from memories.views.memory_tiers import MemoryTierActions

MESSAGE_PURGED = "Memory removed for good, with every copy of its text."
MESSAGE_PURGED_CHAIN = "Memory and its chain of corrections removed for good, with every copy of their text."
MESSAGE_CORRECTED = "Memory corrected: it is superseded and kept in the history."

UUID_PATTERN = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

BATCH_STATUSES = ("created", "duplicate", "invalid")

ADD_RESPONSES = api_responses({201: ("MemoryAdded", AddData()), 200: ("MemoryDuplicate", AddData())}, body=True)
ADD_BATCH_RESPONSES = api_responses(
    {201: ("BatchAdded", AddBatchData()), 200: ("BatchNothingCreated", AddBatchData())}, body=True
)
LIST_RESPONSES = api_responses({200: ("MemoryPage", MemoryPageOutput())})
RETRIEVE_RESPONSES = api_responses({200: ("MemoryDetail", MemoryData())}, extra_errors=(404,))
PATCH_RESPONSES = api_responses({200: ("MemoryUpdated", MemoryData())}, extra_errors=(404, 409), body=True)
DELETE_RESPONSES = api_responses({200: ("MemoryDeleted", DeletedOrPurged())}, extra_errors=(404,))
RESTORE_RESPONSES = api_responses({200: ("MemoryRestored", MemoryData())}, extra_errors=(404, 409), body=True)
CORRECT_RESPONSES = api_responses(
    {201: ("MemoryCorrected", CorrectData()), 200: ("MemoryCorrectedBy", CorrectData())}, extra_errors=(404, 409), body=True
)

#: What the OpenAPI schema has always said of every ``/memories/…`` operation (it was the
#: first docstring of the viewset's classes); kept so that the published schema does not change.
OPERATIONS_DESCRIPTION = "``/memories/add``, ``/memories/query``, ``/memories/feedback``, ``/memories/bootstrap``."


# ``/memories/``, ``/memories/{id}/``, ``/memories/{id}/restore/``, ``/memories/add``,
# ``/memories/add-batch``; the mixins add the rest of ``/memories/…``.
@extend_schema(description=OPERATIONS_DESCRIPTION)
class MemoryViewSet(MemoryRecallActions, MemoryTierActions, MemoryResonanceActions, viewsets.ViewSet):
    lookup_value_regex = UUID_PATTERN
    #: A query changes only counters, φ and tiers: a read-scope key may run it. Feedback
    #: is a deliberate write of φ: it needs a write key, as add does.
    action_scopes = {"query": "read", "feedback": "write"}

    @extend_schema(request=MemoryAddInput, responses=ADD_RESPONSES, summary="Store a memory")
    @action(detail=False, methods=["post"], url_path="add")
    def add(self, request):
        body = validated(MemoryAddInput, request.data)
        result = memory_add(namespace=request_namespace(request), **memory_keywords(body))
        message = MESSAGE_DUPLICATE if result.is_duplicate else MESSAGE_CREATED
        data = AddData({"memory": result, "isDuplicate": result.is_duplicate, "message": message}).data
        meta = {"embeddingProvider": result.embedding_provider, **promotions_meta(result.promotions)}
        if result.possibly_corrects:
            meta["possiblyCorrects"] = [str(memory_id) for memory_id in result.possibly_corrects]
        return success(request, data, status_code=200 if result.is_duplicate else 201, **meta)

    @extend_schema(request=MemoryAddBatchInput, responses=ADD_BATCH_RESPONSES, summary="Store up to 100 memories")
    @action(detail=False, methods=["post"], url_path="add-batch")
    def add_batch(self, request):
        body = validated(MemoryAddBatchInput, request.data)
        checked = [batch_item_checked(raw) for raw in body["items"]]
        valid = [(index, item) for index, (item, _) in enumerate(checked) if item is not None]
        result = memories_add_batch(namespace=request_namespace(request), items=[item for _, item in valid])
        outcomes = dict(zip((index for index, _ in valid), result.outcomes))
        items = [
            {"index": index, "status": "invalid", "memoryId": None, **error}
            if item is None
            else {"index": index, "status": outcomes[index].status, "memoryId": outcomes[index].memory_id}
            for index, (item, error) in enumerate(checked)
        ]
        counts = {status: sum(entry["status"] == status for entry in items) for status in BATCH_STATUSES}
        meta = {"embeddingProvider": result.embedding_provider, **promotions_meta(result.promotions)}
        data = AddBatchData({"items": items, "counts": counts}).data
        return success(request, data, status_code=201 if counts["created"] else 200, **meta)

    @extend_schema(parameters=[MemoryListInput], responses=LIST_RESPONSES, summary="List memories")
    def list(self, request):
        params = validated(MemoryListInput, request.query_params)
        page = memories_list(
            namespace=request_namespace(request),
            filters=memory_filters(params),
            ordering=params["ordering"],
            page_size=params["limit"],
            cursor=params.get("cursor"),
        )
        return success(request, MemoryPageOutput(page).data)

    @extend_schema(responses=RETRIEVE_RESPONSES, summary="Get a memory")
    def retrieve(self, request, pk=None):
        memory = memory_get(namespace=request_namespace(request), memory_id=UUID(pk))
        return success(request, MemoryData({"memory": memory}).data)

    @extend_schema(request=MemoryPatchInput, responses=PATCH_RESPONSES, summary="Change a memory")
    def partial_update(self, request, pk=None):
        body = validated(MemoryPatchInput, request.data)
        namespace = request_namespace(request)
        result = memory_update_fields(namespace=namespace, memory_id=UUID(pk), **memory_keywords(body))
        data = MemoryData({"memory": result.memory, "message": MESSAGE_UPDATED}).data
        return success(request, data, embeddingProvider=result.embedding_provider)

    @extend_schema(
        parameters=[MemoryDeleteInput], responses=DELETE_RESPONSES, summary="Delete a memory (soft, or ?purge=true)"
    )
    def destroy(self, request, pk=None):
        namespace, memory_id = request_namespace(request), UUID(pk)
        params = validated(MemoryDeleteInput, request.query_params.dict())
        if params["purge"]:
            counts = memory_purge(namespace=namespace, memory_id=memory_id, chain=params["chain"])
            message = MESSAGE_PURGED_CHAIN if params["chain"] else MESSAGE_PURGED
            shown = {"id": memory_id, "purged": True, "counts": counts, "message": message}
        else:
            deleted_at = memory_soft_delete(namespace=namespace, memory_id=memory_id)
            shown = {"id": memory_id, "deletedAt": deleted_at, "message": MESSAGE_DELETED}
        return success(request, DeletedOrPurged(shown).data)

    @extend_schema(request=MemoryRestoreInput, responses=RESTORE_RESPONSES, summary="Restore a deleted memory")
    @action(detail=True, methods=["post"], url_path="restore")
    def restore(self, request, pk=None):
        validated(MemoryRestoreInput, request.data)
        memory, restored = memory_restore(namespace=request_namespace(request), memory_id=UUID(pk))
        message = MESSAGE_RESTORED if restored else MESSAGE_NOT_DELETED
        return success(request, MemoryData({"memory": memory, "message": message}).data)

    @extend_schema(request=MemoryCorrectInput, responses=CORRECT_RESPONSES, summary="Correct a memory (supersede it)")
    @action(detail=True, methods=["post"], url_path="correct")
    def correct(self, request, pk=None):
        body = validated(MemoryCorrectInput, request.data)
        corrected_by = body.pop("correctedBy", None)
        item = None if corrected_by is not None else BatchItem(**memory_keywords(body))
        result = memory_correct(
            namespace=request_namespace(request), memory_id=UUID(pk), item=item, corrected_by=corrected_by
        )
        data = CorrectData({"memory": result, "corrected": result.corrected, "message": MESSAGE_CORRECTED}).data
        return success(request, data, status_code=201 if item is not None else 200, embeddingProvider=result.embedding_provider)
