"""``memory_add``: store a memory once per namespace, counting re-statements as accesses.

The duplicate check comes before any embedding, so a duplicate costs no model call.
Correctness under concurrency rests on the partial unique constraint
``(namespace, content_hash) WHERE deleted_at IS NULL``: the insert is
``INSERT … ON CONFLICT DO NOTHING``; when a concurrent add won, this one waits for it
to commit, inserts nothing and answers as a duplicate. No prior SELECT decides.

After a new memory commits, consolidation and catalyst detection are enqueued
(``memories.tasks``); the response does not wait for them.
"""

from dataclasses import dataclass


from django.db import transaction
from django.utils import timezone

from memories.embeddings import embed_texts
from memories.models import LIVE, Memory, MemoryEmbedding, Tier
from memories.services.access import memories_record_access
from memories.tasks import enqueue_after_add
from memories.text import content_hash, normalized_hash

CATALYST_INITIAL_PHI = 1.0
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
) -> AddResult:
    digest = content_hash(content)
    embedded = None
    for _ in range(_MAX_ROUNDS):
        duplicate = _touch_existing(namespace=namespace, digest=digest)
        if duplicate is not None:
            return duplicate
        if embedded is None:
            embedded = embed_texts([content])  # EmbeddingError propagates: nothing written
        embedding = embedded.embeddings[0]
        now = timezone.now()
        memory = Memory(
            namespace=namespace,
            content=content,
            content_hash=digest,
            normalized_hash=normalized_hash(content),
            tier=Tier.ACTIVE,
            tier_last_updated=now,
            last_accessed=now,
            resonance_phi=CATALYST_INITIAL_PHI if is_catalyst else 0.0,
            is_catalyst=is_catalyst,
            category=category,
            tags=list(tags or []),
            source=source,
            metadata=dict(metadata or {}),
            created_at=now,
        )
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
                enqueue_after_add(memory_id=memory.pk, is_catalyst=is_catalyst)
                return AddResult(
                    memory=memory,
                    is_duplicate=False,
                    embedding_provider=embedded.provider_label,
                    embedding_truncated=embedding.truncated,
                    promotions=[],
                )
        # A concurrent add of the same content committed first: count this one as its duplicate.
    raise RuntimeError(f"memory_add did not settle after {_MAX_ROUNDS} rounds for one content hash")
