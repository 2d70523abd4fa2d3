"""``memory_correct``: ``POST /memories/{id}/correct`` — correct a memory by a new one
(through the normal add path: a duplicate of a live memory is a 409 and nothing is
written) or by an existing one (``corrected_by``: a suggested correction confirmed), then
``memories.services.supersession.memories_supersede``, all in one transaction. The old
memory is locked first, so of two concurrent corrections one wins and the other answers
409 naming the winner.
"""

from dataclasses import dataclass
from uuid import UUID

from django.db import transaction

from memories.errors import ContentConflictError, InvalidSupersessionError, SupersessionConflictError
from memories.models import Memory
from memories.selectors.memories import memory_not_found
from memories.services.adding import STATUS_DUPLICATE, BatchItem, memories_add_batch
from memories.services.supersession import locked_memories, memories_supersede


@dataclass(frozen=True)
class Correction:
    """What ``memory_correct`` did: the new memory, the corrected one (both as left), and
    the add's embedding provider (None when an existing memory corrected it)."""

    memory: Memory
    corrected: Memory
    embedding_provider: str | None
    embedding_truncated: bool


def memory_correct(
    *, namespace: str, memory_id: UUID, item: BatchItem | None = None, corrected_by: UUID | None = None
) -> Correction:
    """Correct ``memory_id`` by a new memory (``item``, through the add path) or by an
    existing one (``corrected_by``): exactly one of the two."""
    if (item is None) == (corrected_by is None):
        raise ValueError("give item or corrected_by")
    with transaction.atomic():
        locked = locked_memories(namespace, [memory_id])
        if memory_id not in locked:
            raise memory_not_found(namespace=namespace, memory_id=memory_id)
        old = locked[memory_id]
        if old.valid_until is not None:
            raise SupersessionConflictError(memory_id, old.superseded_by_id)
        provider, truncated = None, False
        if item is not None:
            batch = memories_add_batch(namespace=namespace, items=[item])
            outcome = batch.outcomes[0]
            if outcome.memory_id == memory_id:
                raise InvalidSupersessionError("content", "This is the memory's own content: a correction must differ.")
            if outcome.status == STATUS_DUPLICATE:
                raise ContentConflictError(outcome.memory_id)  # rolls back the duplicate's access
            corrected_by, provider, truncated = outcome.memory_id, batch.embedding_provider, bool(outcome.embedding_truncated)
        # A new memory takes over the moment it is valid from: no gap, no overlap.
        since = outcome.memory.valid_from if item is not None else None
        field = "content" if item is not None else "correctedBy"
        successor = memories_supersede(
            namespace=namespace, successor_id=corrected_by, predecessor_ids=[memory_id], field=field, now=since
        )  # a validFrom before the old memory's own is refused: nothing of this is kept
        corrected = Memory.objects.defer("search_vector").get(pk=memory_id)
    return Correction(memory=successor, corrected=corrected, embedding_provider=provider, embedding_truncated=truncated)
