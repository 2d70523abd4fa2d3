"""Semantic consolidation: re-statements of one fact become one memory; corrections stay.

After each add (a task) and in the ``consolidate`` sweep. The candidate for a memory is
another live memory of its namespace with the same ``normalized_hash``, else its nearest
neighbour (same embedding model, through the HNSW index, itself excluded) when the
similarity reaches ``ANIMA_CONSOLIDATION_SIMILARITY`` (0.95). Similarity alone does not
decide: :func:`memories.text.same_fact` must agree, and a pinned memory is never merged
away. Otherwise both stay visible and each lists the other in ``metadata.nearDuplicates``
(at most 10) for staff to judge. When in doubt, link — never erase a correction.

Only current facts take part (``models.CURRENT``): a superseded or expired memory is
neither consolidated nor a candidate. A linked pair whose differing words hold a negation
or a number (:func:`memories.text.may_correct`) is a *suggested* correction: the newer
memory gets ``metadata.correctionCandidate`` (``{"corrects": id, "similarity": s}``),
which staff confirm or dismiss in the admin and an assistant confirms through
``POST /memories/{id}/correct`` (``correctedBy``). A dismissed pair
(``metadata.correctionDismissed`` lists the id) is not suggested again.

A merge folds the newer memory into the older one in one transaction (see
:func:`memories_merge`). Everything here is idempotent: a merged memory is deleted and a
linked pair is already listed, so a re-run changes nothing.
"""

import enum
from contextlib import nullcontext
from dataclasses import dataclass
from uuid import UUID

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from memories import ranking
from memories.models import CURRENT, LIVE, MAX_TAGS, Memory, MemoryAccess, MemoryEmbedding
from memories.search import CandidateSearch, configure_hnsw, nearest_embeddings, needs_transaction
from memories.services.access import memories_record_access
from memories.services.associations import associations_move
from memories.services.supersession import CORRECTION_CANDIDATE, CORRECTION_DISMISSED, supersession_move
from memories.text import may_correct, same_fact

MAX_NEAR_DUPLICATES = 10


class Outcome(str, enum.Enum):
    MERGED = "merged"
    LINKED = "linked"
    NO_CANDIDATE = "no_candidate"
    SKIPPED = "skipped"  # the memory is gone (deleted, merged) or has no embedding


@dataclass(frozen=True)
class Candidate:
    memory_id: UUID
    similarity: float


def _similarity(first: UUID, second: UUID) -> float:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 - (a.embedding <=> b.embedding) FROM memories_memoryembedding a, memories_memoryembedding b "
            "WHERE a.memory_id = %s AND b.memory_id = %s AND a.embedding_model = b.embedding_model",
            [first, second],
        )
        row = cursor.fetchone()
    return float(row[0]) if row else 0.0


def find_candidate(memory: Memory, *, vector=None, model_id: str | None = None) -> Candidate | None:
    """The memory this one may duplicate: same normalised text first, else the nearest ≥ threshold.

    ``vector`` and ``model_id``: the memory's own embedding when the caller has it (an add),
    else it is read back."""
    same_text = (
        Memory.objects.filter(LIVE, CURRENT, namespace=memory.namespace, normalized_hash=memory.normalized_hash)
        .exclude(pk=memory.pk)
        .order_by("created_at", "id")
        .values_list("id", flat=True)
        .first()
    )
    if same_text is not None:
        return Candidate(memory_id=same_text, similarity=_similarity(memory.pk, same_text))
    if vector is None or model_id is None:
        own = MemoryEmbedding.objects.filter(memory_id=memory.pk).values_list("embedding", "embedding_model").first()
        if own is None:
            return None
        vector, model_id = own
    search = CandidateSearch(namespace=memory.namespace, vector=vector, model_id=model_id)
    with transaction.atomic() if needs_transaction(1) else nullcontext():
        configure_hnsw(1)
        nearest = nearest_embeddings(search=search, exclude=memory.pk).values_list("memory_id", "distance").first()
    if nearest is None or 1.0 - nearest[1] < settings.ANIMA_CONSOLIDATION_SIMILARITY:
        return None
    return Candidate(memory_id=nearest[0], similarity=1.0 - nearest[1])


def correction_suggested(memory: Memory, *, vector=None, model_id: str | None = None) -> list[UUID]:
    """``[id]`` of the memory ``memory`` may correct (its consolidation candidate, when
    :func:`memories.text.may_correct` says so), else ``[]``. Nothing is written.
    ``vector``/``model_id``: its embedding, when the caller has it (``find_candidate``)."""
    candidate = find_candidate(memory, vector=vector, model_id=model_id)
    if candidate is None:
        return []
    older = Memory.objects.filter(pk=candidate.memory_id).values_list("content", flat=True).first()
    return [candidate.memory_id] if older is not None and may_correct(older, memory.content) else []


def memory_consolidate(*, memory_id: UUID) -> Outcome:
    memory = Memory.objects.filter(LIVE, CURRENT, pk=memory_id).defer("search_vector").first()
    if memory is None:
        return Outcome.SKIPPED
    candidate = find_candidate(memory)
    if candidate is None:
        return Outcome.NO_CANDIDATE
    with transaction.atomic():
        pair = list(
            Memory.objects.select_for_update(no_key=True)
            .filter(LIVE, CURRENT, pk__in=[memory.pk, candidate.memory_id])
            .defer("search_vector")
            .order_by("pk")
        )
        if len(pair) != 2:  # one of them was deleted or merged meanwhile
            return Outcome.SKIPPED
        older, newer = sorted(pair, key=lambda m: (m.created_at, str(m.pk)))
        if same_fact(older.content, newer.content) and not newer.pinned:
            memories_merge(survivor=older, merged=newer, similarity=candidate.similarity)
            return Outcome.MERGED
        _link_near_duplicates(older, newer, candidate.similarity)
        if may_correct(older.content, newer.content):
            _suggest_correction(older=older, newer=newer, similarity=candidate.similarity)
        return Outcome.LINKED


def _with_near_duplicate(metadata: dict, other: UUID, similarity: float) -> dict | None:
    """The metadata with ``other`` listed, or None when it already is (nothing to write)."""
    listed = list(metadata.get("nearDuplicates") or [])
    if any(entry.get("id") == str(other) for entry in listed):
        return None
    listed.append({"id": str(other), "similarity": round(similarity, 4)})
    return {**metadata, "nearDuplicates": listed[-MAX_NEAR_DUPLICATES:]}


def _link_near_duplicates(first: Memory, second: Memory, similarity: float) -> None:
    for memory, other in ((first, second), (second, first)):
        metadata = _with_near_duplicate(memory.metadata or {}, other.pk, similarity)
        if metadata is not None:
            Memory.objects.filter(pk=memory.pk).update(metadata=metadata)


def _suggest_correction(*, older: Memory, newer: Memory, similarity: float) -> None:
    """Record on ``newer`` that it may correct ``older``, unless staff dismissed that pair."""
    metadata = Memory.objects.filter(pk=newer.pk).values_list("metadata", flat=True).first() or {}
    if str(older.pk) in (metadata.get(CORRECTION_DISMISSED) or []):
        return
    suggestion = {"corrects": str(older.pk), "similarity": round(similarity, 4)}
    if metadata.get(CORRECTION_CANDIDATE) != suggestion:
        Memory.objects.filter(pk=newer.pk).update(metadata={**metadata, CORRECTION_CANDIDATE: suggestion})


def memories_merge(*, survivor: Memory, merged: Memory, similarity: float) -> Memory:
    """Fold ``merged`` into ``survivor`` (both locked by the caller's transaction).

    survivor: φ += ``ranking.merge_phi_step`` (0.1 × (1.0 if similarity ≥ 0.98 else 0.9),
    1.0 instead of 0.1 when the merged memory was a catalyst), capped at 5; one access (the
    promotion rule applies); catalyst flag and tags carried over; the merged content
    appended to ``metadata.semanticVariants``; the merged memory's associations
    (``associations_move``), supersessions (``supersession_move``) and access rows moved over. merged: soft-deleted with
    ``merged_into`` set.
    """
    now = timezone.now()
    contribution = ranking.merge_phi_step(similarity=similarity, was_catalyst=merged.is_catalyst)
    with transaction.atomic():
        phi_before = survivor.resonance_phi
        access = memories_record_access(
            namespace=survivor.namespace, memory_ids=[survivor.pk], phi_increment=contribution
        )
        survivor = access.memories[survivor.pk]
        variants = list((survivor.metadata or {}).get("semanticVariants") or [])
        variants.append(
            {
                "content": merged.content,
                "mergedAt": now.isoformat(),
                "phiContributed": round(ranking.clamp_phi(phi_before + contribution) - phi_before, 6),
                "similarity": round(similarity, 4),
                "wasCatalyst": merged.is_catalyst,
            }
        )
        survivor.metadata = {**(survivor.metadata or {}), "semanticVariants": variants}
        survivor.is_catalyst = survivor.is_catalyst or merged.is_catalyst
        survivor.tags = list(dict.fromkeys(list(survivor.tags) + list(merged.tags)))[:MAX_TAGS]
        Memory.objects.filter(pk=survivor.pk).update(
            metadata=survivor.metadata, is_catalyst=survivor.is_catalyst, tags=survivor.tags, updated_at=now
        )
        associations_move(merged_id=merged.pk, survivor_id=survivor.pk)
        supersession_move(merged_id=merged.pk, survivor_id=survivor.pk)
        MemoryAccess.objects.filter(memory_id=merged.pk).update(memory_id=survivor.pk)
        Memory.objects.filter(pk=merged.pk).update(deleted_at=now, merged_into=survivor.pk, updated_at=now)
    return survivor
