"""``memories_add_batch`` and ``memory_add`` (a batch of one): store each content once per
namespace, counting re-statements as accesses. One insert path for both.

The duplicate check comes before any embedding, so a duplicate costs no model call.
Correctness under concurrency rests on the partial unique constraint
``(namespace, content_hash) WHERE deleted_at IS NULL``: the insert is
``INSERT … ON CONFLICT DO NOTHING``; when a concurrent add won, this one waits for it
to commit, inserts nothing and answers as a duplicate. No prior SELECT decides.

A new memory leaves consolidation and catalyst-detection work in the same transaction
(``memories.background``); the response does not wait for it.
"""

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from memories.background import work_after_add
from memories.embeddings import Embedding, embed_texts
from memories.models import LIVE, Memory, MemoryEmbedding, Tier
from memories.ranking import CATALYST_PHI
from memories.services.access import memories_record_access
from memories.services.consolidation import correction_suggested
from memories.services.supersession import locked_memories, memories_supersede
from memories.text import content_hash, normalized_hash

MESSAGE_CREATED = "Memory stored."
MESSAGE_DUPLICATE = "This memory already exists; its access was counted and nothing else changed."
STATUS_CREATED = "created"
STATUS_DUPLICATE = "duplicate"
#: A duplicate's access can miss when the existing memory is deleted in between, and a
#: lost insert's winner can be deleted before it is found; the content then goes round
#: again. Two rounds always settle it; three is a safety margin.
_MAX_ROUNDS = 3


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
    #: After this moment the memory behaves as superseded (kept, out of default reads).
    expires_at: datetime | None = None
    #: Since when the fact holds (not in the future); None: when it is stored.
    valid_from: datetime | None = None
    #: Memories this one corrects (``memories.services.supersession``).
    supersedes: list[UUID] | None = None


@dataclass(frozen=True)
class BatchOutcome:
    status: str  # "created" | "duplicate"
    memory_id: UUID
    #: The memory as this batch left it (as built when created, else after its access).
    memory: Memory = field(repr=False, compare=False)
    #: Created: whether the new embedding was truncated; a duplicate: None (not read).
    embedding_truncated: bool | None = None
    #: Created: the new memory's vector (in the model ``BatchResult.model_id``); a duplicate: None.
    vector: object = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class BatchResult:
    outcomes: list[BatchOutcome]
    embedding_provider: str | None
    promotions: list
    #: The model of the new memories' vectors (None when nothing was embedded).
    model_id: str | None = None


@dataclass(frozen=True)
class AddResult:
    memory: Memory
    is_duplicate: bool
    #: ``local``/``openai``/``cache``; ``None`` for a duplicate (nothing was embedded).
    embedding_provider: str | None
    embedding_truncated: bool
    promotions: list
    #: A new memory's nearest current neighbour when it may correct it (a near-duplicate
    #: whose differing words hold a negation or a number): ``[id]`` or ``[]``.
    possibly_corrects: list[UUID] = field(default_factory=list)


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
    expires_at: datetime | None = None,
    valid_from: datetime | None = None,
    supersedes: list[UUID] | None = None,
) -> AddResult:
    """Add one memory: :func:`memories_add_batch` with one item; a new memory also says
    which memory it may correct (``possibly_corrects``)."""
    item = BatchItem(
        content=content, category=category, tags=tags, source=source, is_catalyst=is_catalyst,
        metadata=metadata, occurred_at=occurred_at, expires_at=expires_at, valid_from=valid_from,
        supersedes=supersedes,
    )
    batch = memories_add_batch(namespace=namespace, items=[item])
    outcome = batch.outcomes[0]
    possibly_corrects = []
    if outcome.status == STATUS_CREATED:
        provider, truncated = batch.embedding_provider, outcome.embedding_truncated
        if not supersedes:
            # The vector in hand: the look needs no read of the row just written.
            possibly_corrects = correction_suggested(outcome.memory, vector=outcome.vector, model_id=batch.model_id)
    else:
        provider = None
        truncated = MemoryEmbedding.objects.filter(memory_id=outcome.memory_id).values_list("truncated", flat=True).first()
    return AddResult(
        memory=outcome.memory,
        is_duplicate=outcome.status == STATUS_DUPLICATE,
        embedding_provider=provider,
        embedding_truncated=bool(truncated),
        promotions=batch.promotions,
        possibly_corrects=possibly_corrects,
    )


def memories_add_batch(*, namespace: str, items: list[BatchItem]) -> BatchResult:
    """Add many memories (:func:`_add_batch`); items that name ``supersedes`` supersede
    those memories in the same transaction (``memories_supersede``: an error there undoes
    the whole batch and names the item)."""
    if not any(item.supersedes for item in items):
        return _add_batch(namespace=namespace, items=items)
    with transaction.atomic():
        result = _add_batch(namespace=namespace, items=items)
        # Every row the links touch, locked once in id order (no deadlock between batches).
        involved = {o.memory_id for o in result.outcomes} | {i for item in items for i in item.supersedes or []}
        locked_memories(namespace, sorted(involved))
        for index, (item, outcome) in enumerate(zip(items, result.outcomes)):
            if item.supersedes:
                prefix = "" if len(items) == 1 else f"items[{index}]."
                since = outcome.memory.valid_from if outcome.status == STATUS_CREATED else None
                successor = memories_supersede(
                    namespace=namespace,
                    successor_id=outcome.memory_id,
                    predecessor_ids=item.supersedes,
                    field=f"{prefix}supersedes",
                    now=since,
                    moment_field=f"{prefix}validFrom",
                )
                result.outcomes[index] = dataclasses.replace(outcome, memory=successor)  # as the links left it
    return result


def _add_batch(*, namespace: str, items: list[BatchItem]) -> BatchResult:
    """Add many memories in a constant number of steps (for a batch that settles in one round).

    One lookup finds contents already stored; the new distinct contents are embedded in
    ONE provider call and inserted in ONE transaction (``ON CONFLICT DO NOTHING``: a
    concurrent add of the same content makes this item a duplicate). Every other
    occurrence — stored before, or repeated within the batch — counts one access, as a
    duplicate add does; a memory repeated k times gets k accesses.
    """
    digests = [content_hash(item.content) for item in items]
    occurrences = Counter(digests)
    first_of: dict[str, int] = {}
    for index, digest in enumerate(digests):
        first_of.setdefault(digest, index)
    created: dict[str, Memory] = {}
    settled: dict[str, UUID] = {}
    accessed: dict[UUID, Memory] = {}
    vectors: dict[str, Embedding] = {}
    model_id = provider_label = None
    promotions: list = []
    pending = list(first_of)
    for _ in range(_MAX_ROUNDS):
        existing = _live_ids(namespace=namespace, digests=pending)
        new = [digest for digest in pending if digest not in existing]
        missing = [digest for digest in new if digest not in vectors]
        if missing:
            texts = [items[first_of[digest]].content for digest in missing]
            embedded = embed_texts(texts, namespace=namespace)  # EmbeddingError propagates: nothing written
            vectors.update(zip(missing, embedded.embeddings))
            model_id, provider_label = embedded.model_id, embedded.provider_label
        if new:
            now = timezone.now()
            built = {digest: _new_memory(namespace, items[first_of[digest]], digest, now) for digest in new}
            won = _insert(namespace=namespace, built=built, vectors=vectors, model_id=model_id)
            created.update(won)
            settled.update((digest, memory.pk) for digest, memory in won.items())
            lost = [digest for digest in new if digest not in won]  # a concurrent add won these
            if lost:
                existing.update(_live_ids(namespace=namespace, digests=lost))
        # One access per occurrence but a created memory's first.
        touches: Counter = Counter()
        for digest in pending:
            if digest in created:
                touches[created[digest].pk] += occurrences[digest] - 1
            elif digest in existing:
                touches[existing[digest]] += occurrences[digest]
        promotions += _count_accesses(namespace, touches, accessed=accessed)
        settled.update((digest, existing[digest]) for digest in pending if existing.get(digest) in accessed)
        pending = [digest for digest in pending if digest not in settled]
        if not pending:
            break
    else:
        raise RuntimeError(f"memories_add_batch did not settle after {_MAX_ROUNDS} rounds")
    outcomes = []
    for index, digest in enumerate(digests):
        memory_id = settled[digest]
        memory = accessed.get(memory_id) or created[digest]
        if digest in created and first_of[digest] == index:
            embedded = vectors[digest]
            outcomes.append(BatchOutcome(STATUS_CREATED, memory_id, memory, embedded.truncated, embedded.vector))
        else:
            outcomes.append(BatchOutcome(STATUS_DUPLICATE, memory_id, memory))
    return BatchResult(outcomes=outcomes, embedding_provider=provider_label, promotions=promotions, model_id=model_id)


def _live_ids(*, namespace: str, digests: list[str]) -> dict[str, UUID]:
    rows = Memory.objects.filter(LIVE, namespace=namespace, content_hash__in=set(digests))
    return dict(rows.values_list("content_hash", "id"))


def _insert(
    *, namespace: str, built: dict[str, Memory], vectors: dict[str, Embedding], model_id: str
) -> dict[str, Memory]:
    """Insert the built memories with their vectors in one transaction, skipping a content a
    concurrent add stored first; returns the inserted ones by content hash."""
    with transaction.atomic():
        Memory.objects.bulk_create(list(built.values()), ignore_conflicts=True)
        inserted = set(Memory.objects.filter(pk__in=[m.pk for m in built.values()]).values_list("pk", flat=True))
        won = {digest: memory for digest, memory in built.items() if memory.pk in inserted}
        MemoryEmbedding.objects.bulk_create(
            [
                MemoryEmbedding(
                    memory=memory,
                    namespace=namespace,
                    embedding=vectors[digest].vector,
                    embedding_model=model_id,
                    truncated=vectors[digest].truncated,
                )
                for digest, memory in won.items()
            ]
        )
        work_after_add(namespace=namespace, memories=list(won.values()))
    return won


def _new_memory(namespace: str, item: BatchItem, digest: str, now: datetime) -> Memory:
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
        expires_at=item.expires_at,
        valid_from=item.valid_from or now,
        created_at=now,
    )


def _count_accesses(namespace: str, touches: Counter, *, accessed: dict[UUID, Memory]) -> list:
    """``touches[id]`` accesses of each memory: round k touches the memories counted at least
    k times. The memories as they are after the last round go into ``accessed``."""
    promotions = []
    for round_number in range(1, max(touches.values(), default=0) + 1):
        ids = [memory_id for memory_id, count in touches.items() if count >= round_number]
        access = memories_record_access(namespace=namespace, memory_ids=ids)
        accessed.update(access.memories)
        promotions += access.promotions
    return promotions
