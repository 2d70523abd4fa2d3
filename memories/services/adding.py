"""``memory_add``: store a memory once per namespace, counting re-statements as accesses.

The duplicate check comes before any embedding, so a duplicate costs no model call.
Correctness under concurrency rests on the partial unique constraint
``(namespace, content_hash) WHERE deleted_at IS NULL``: the insert is
``INSERT … ON CONFLICT DO NOTHING``; when a concurrent add won, this one waits for it
to commit, inserts nothing and answers as a duplicate. No prior SELECT decides.

A new memory leaves consolidation and catalyst-detection work in the same transaction
(``memories.background``); the response does not wait for it.
"""

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from memories.background import work_after_add
from memories.embeddings import embed_texts
from memories.models import LIVE, Memory, MemoryEmbedding, Tier
from memories.ranking import CATALYST_PHI
from memories.services.access import memories_record_access
from memories.text import content_hash, normalized_hash

MESSAGE_CREATED = "Memory stored."
MESSAGE_DUPLICATE = "This memory already exists; its access was counted and nothing else changed."
#: A duplicate touch can miss when the existing memory is deleted in between; the insert
#: then runs again. Two rounds always settle it; three is a safety margin.
_MAX_ROUNDS = 3


@dataclass(frozen=True)
class AddResult:
    memory: Memory
    is_duplicate: bool
    #: ``local``/``openai``/``cache``; ``None`` for a duplicate (nothing was embedded).
    embedding_provider: str | None
    embedding_truncated: bool
    promotions: list


def _touch_existing(*, namespace: str, digest: str) -> AddResult | None:
    existing_id = (
        Memory.objects.filter(LIVE, namespace=namespace, content_hash=digest).values_list("id", flat=True).first()
    )
    if existing_id is None:
        return None
    access = memories_record_access(namespace=namespace, memory_ids=[existing_id])
    memory = access.memories.get(existing_id)
    if memory is None:  # deleted between the lookup and the update
        return None
    truncated = MemoryEmbedding.objects.filter(memory_id=existing_id).values_list("truncated", flat=True).first()
    return AddResult(
        memory=memory,
        is_duplicate=True,
        embedding_provider=None,
        embedding_truncated=bool(truncated),
        promotions=access.promotions,
    )


def memory_add(
    *,
    namespace: str,
    content: str,
    category: str | None = None,
    tags: list[str] | None = None,
    source: str | None = None,
    is_catalyst: bool = False,
    metadata: dict | None = None,
    occurred_at: datetime | None = None,
) -> AddResult:
    digest = content_hash(content)
    embedded = None
    for _ in range(_MAX_ROUNDS):
        duplicate = _touch_existing(namespace=namespace, digest=digest)
        if duplicate is not None:
            return duplicate
        if embedded is None:
            embedded = embed_texts([content], namespace=namespace)  # EmbeddingError propagates: nothing written
        embedding = embedded.embeddings[0]
        item = BatchItem(
            content=content,
            category=category,
            tags=tags,
            source=source,
            is_catalyst=is_catalyst,
            metadata=metadata,
            occurred_at=occurred_at,
        )
        memory = _new_memory(namespace, item, digest, timezone.now())
        with transaction.atomic():
            Memory.objects.bulk_create([memory], ignore_conflicts=True)
            if Memory.objects.filter(pk=memory.pk).exists():
                MemoryEmbedding.objects.create(
                    memory=memory,
                    namespace=namespace,
                    embedding=embedding.vector,
                    embedding_model=embedded.model_id,
                    truncated=embedding.truncated,
                )
                work_after_add(namespace=namespace, memories=[memory])
                return AddResult(
                    memory=memory,
                    is_duplicate=False,
                    embedding_provider=embedded.provider_label,
                    embedding_truncated=embedding.truncated,
                    promotions=[],
                )
        # A concurrent add of the same content committed first: count this one as its duplicate.
    raise RuntimeError(f"memory_add did not settle after {_MAX_ROUNDS} rounds for one content hash")


@dataclass(frozen=True)
class BatchItem:
    content: str
    category: str | None = None
    tags: list[str] | None = None
    source: str | None = None
    is_catalyst: bool = False
    metadata: dict | None = None
    #: When the remembered thing happened; None: when it is stored.
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class BatchOutcome:
    status: str  # "created" | "duplicate"
    memory_id: UUID


STATUS_CREATED = "created"
STATUS_DUPLICATE = "duplicate"


@dataclass(frozen=True)
class BatchResult:
    outcomes: list[BatchOutcome]
    embedding_provider: str | None
    promotions: list


def memories_add_batch(*, namespace: str, items: list[BatchItem]) -> BatchResult:
    """Add many memories with the rules of :func:`memory_add`, in a constant number of steps.

    One lookup finds contents already stored; the new distinct contents are embedded in
    ONE provider call and inserted in ONE transaction (``ON CONFLICT DO NOTHING``: a
    concurrent add of the same content makes this item a duplicate). Every other
    occurrence — stored before, or repeated within the batch — counts one access, as a
    duplicate add does; a memory repeated k times gets k accesses.
    """
    digests = [content_hash(item.content) for item in items]
    existing = dict(
        Memory.objects.filter(LIVE, namespace=namespace, content_hash__in=set(digests)).values_list("content_hash", "id")
    )
    first_of: dict[str, int] = {}
    for index, digest in enumerate(digests):
        first_of.setdefault(digest, index)
    new_indices = [index for digest, index in first_of.items() if digest not in existing]
    created: dict[str, UUID] = {}
    provider_label = None
    if new_indices:
        embedded = embed_texts([items[index].content for index in new_indices], namespace=namespace)  # EmbeddingError: nothing written
        provider_label = embedded.provider_label
        now = timezone.now()
        built = [_new_memory(namespace, items[index], digests[index], now) for index in new_indices]
        with transaction.atomic():
            Memory.objects.bulk_create(built, ignore_conflicts=True)
            inserted = set(Memory.objects.filter(pk__in=[m.pk for m in built]).values_list("pk", flat=True))
            MemoryEmbedding.objects.bulk_create(
                [
                    MemoryEmbedding(
                        memory=memory,
                        namespace=namespace,
                        embedding=embedding.vector,
                        embedding_model=embedded.model_id,
                        truncated=embedding.truncated,
                    )
                    for memory, embedding in zip(built, embedded.embeddings)
                    if memory.pk in inserted
                ]
            )
            for memory in built:
                if memory.pk in inserted:
                    created[memory.content_hash] = memory.pk
            work_after_add(namespace=namespace, memories=[m for m in built if m.pk in inserted])
        lost = {m.content_hash for m in built if m.pk not in inserted}  # a concurrent add won these
        if lost:
            existing.update(
                Memory.objects.filter(LIVE, namespace=namespace, content_hash__in=lost).values_list("content_hash", "id")
            )
    outcomes, accessed = [], []
    for index, digest in enumerate(digests):
        if digest in created and first_of[digest] == index:
            outcomes.append(BatchOutcome(status=STATUS_CREATED, memory_id=created[digest]))
            continue
        memory_id = created.get(digest) or existing[digest]
        outcomes.append(BatchOutcome(status=STATUS_DUPLICATE, memory_id=memory_id))
        accessed.append(memory_id)
    return BatchResult(
        outcomes=outcomes, embedding_provider=provider_label, promotions=_count_accesses(namespace, accessed)
    )


def _new_memory(namespace: str, item: BatchItem, digest: str, now) -> Memory:
    return Memory(
        namespace=namespace,
        content=item.content,
        content_hash=digest,
        normalized_hash=normalized_hash(item.content),
        tier=Tier.ACTIVE,
        tier_last_updated=now,
        last_accessed=now,
        resonance_phi=CATALYST_PHI if item.is_catalyst else 0.0,
        is_catalyst=item.is_catalyst,
        category=item.category,
        tags=list(item.tags or []),
        source=item.source,
        metadata=dict(item.metadata or {}),
        occurred_at=item.occurred_at or now,
        created_at=now,
    )


def _count_accesses(namespace: str, memory_ids: list[UUID]) -> list:
    """One access per occurrence: round k touches the memories seen at least k times."""
    counts = Counter(memory_ids)
    promotions = []
    for round_number in range(1, max(counts.values(), default=0) + 1):
        ids = [memory_id for memory_id, count in counts.items() if count >= round_number]
        promotions += memories_record_access(namespace=namespace, memory_ids=ids).promotions
    return promotions
