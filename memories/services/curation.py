"""Curation of stored memories, by the API (PATCH, DELETE, restore) and by staff (the admin).

- ``memory_update_fields`` changes category, tags, source, metadata, the catalyst flag
  and the content. New content is re-hashed (exact and normalised hash) and re-embedded
  before anything is written (an unreachable provider writes nothing); the per-namespace
  uniqueness of live contents rests on the partial unique constraint
  ``memory_live_hash_uniq`` (a prior SELECT only spares the model call).
- Deletion is soft (``deleted_at``); the API and bootstrap no longer see the memory.
- Restore brings a deleted memory back unless a live memory of its namespace has its
  content now. A memory that consolidation merged into another stays merged: it
  answers as not found, naming the survivor.
- Staff may merge two memories (the newer into the older) through consolidation's own
  merge, ``memories_merge``.
- The catalyst flag is only a flag here (as in ``catalysts.catalyst_confirm``): φ is
  left alone, it grows with use.

``namespace=None`` (admin only) acts on the given ids in whatever namespace they are.
"""

from dataclasses import dataclass, field
from datetime import datetime
from functools import reduce
from operator import or_
from uuid import UUID

from django.db import IntegrityError, transaction
from django.db.models import Q, Subquery
from django.utils import timezone
from pgvector.django import CosineDistance

from memories.background import work_after_add
from memories.embeddings import embed_texts
from memories.errors import ContentConflictError, MemoryNotFoundError
from memories.selectors.memories import memory_get, memory_not_found
from memories.locks import quotes_lock
from memories.models import LIVE, Memory, MemoryEmbedding
from memories.services.consolidation import memories_merge
from memories.signals import memory_edited
from memories.text import content_hash, normalized_hash

UNIQUE_CONTENT_CONSTRAINT = "memory_live_hash_uniq"
MESSAGE_UPDATED = "Memory updated."
MESSAGE_DELETED = "Memory deleted."
MESSAGE_RESTORED = "Memory restored."
MESSAGE_NOT_DELETED = "Memory was not deleted; nothing changed."


class _Unset:
    """Marks a field the caller did not give (``None`` is a value: it clears category/source)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset()


@dataclass(frozen=True)
class MemoryUpdate:
    #: The memory after the change, with ``embedding_truncated`` set.
    memory: Memory
    content_changed: bool
    #: ``local``/``openai``/``cache`` when the content was re-embedded, else ``None``.
    embedding_provider: str | None


def _violates(exc: IntegrityError, constraint: str) -> bool:
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None) == constraint


def _live_holder(*, namespace: str, digest: str, exclude: UUID | None = None) -> UUID | None:
    rows = Memory.objects.filter(LIVE, namespace=namespace, content_hash=digest)
    if exclude is not None:
        rows = rows.exclude(pk=exclude)
    return rows.values_list("pk", flat=True).first()


def _quotes_refresh(memory: Memory, *, content_changed: bool, category_changed: bool) -> None:
    """After an edit nothing keeps quoting the old text or category: under the quotes lock,
    ``memory_edited`` lets the apps that quote memories refresh their copies."""
    quotes_lock(memory.namespace)
    memory_edited.send(
        sender=Memory, memory=memory, content_changed=content_changed, category_changed=category_changed
    )


def memory_update_fields(
    *,
    namespace: str,
    memory_id: UUID,
    content: str | _Unset = UNSET,
    category: str | None | _Unset = UNSET,
    tags: list[str] | _Unset = UNSET,
    source: str | None | _Unset = UNSET,
    metadata: dict | _Unset = UNSET,
    is_catalyst: bool | _Unset = UNSET,
    pinned: bool | _Unset = UNSET,
    occurred_at: datetime | _Unset = UNSET,
    expires_at: datetime | None | _Unset = UNSET,
) -> MemoryUpdate:
    """Change the given fields of one live memory; ``metadata`` is replaced as a whole.

    Raises ``MemoryNotFoundError``, ``ContentConflictError`` (another live memory of the
    namespace has the new content; nothing changed) and ``EmbeddingError`` (nothing
    changed).
    """
    current_hash = (
        Memory.objects.filter(LIVE, namespace=namespace, pk=memory_id).values_list("content_hash", flat=True).first()
    )
    if current_hash is None:
        raise memory_not_found(namespace=namespace, memory_id=memory_id)
    embedded = None
    if content is not UNSET:
        digest = content_hash(content)
        if digest == current_hash:
            content = UNSET
        else:
            holder = _live_holder(namespace=namespace, digest=digest, exclude=memory_id)
            if holder is not None:
                raise ContentConflictError(holder)
            embedded = embed_texts([content], namespace=namespace)  # EmbeddingError propagates: nothing written

    with transaction.atomic():
        memory = (
            Memory.objects.select_for_update(no_key=True)
            .defer("search_vector")
            .filter(LIVE, namespace=namespace, pk=memory_id)
            .first()
        )
        if memory is None:  # deleted since the first look
            raise memory_not_found(namespace=namespace, memory_id=memory_id)
        changed = []
        for name, value in (("category", category), ("tags", tags), ("source", source), ("metadata", metadata)):
            if value is not UNSET and getattr(memory, name) != value:
                setattr(memory, name, list(value) if name == "tags" else value)
                changed.append(name)
        if is_catalyst is not UNSET and memory.is_catalyst != is_catalyst:
            memory.is_catalyst = is_catalyst
            changed.append("is_catalyst")
        if pinned is not UNSET and memory.pinned != pinned:
            memory.pinned = pinned
            changed.append("pinned")
        if occurred_at is not UNSET and memory.occurred_at != occurred_at:
            memory.occurred_at = occurred_at
            changed.append("occurred_at")
        if expires_at is not UNSET and memory.expires_at != expires_at:
            memory.expires_at = expires_at  # None: never expires
            changed.append("expires_at")
        if embedded is not None:
            memory.content = content
            memory.content_hash = content_hash(content)
            memory.normalized_hash = normalized_hash(content)
            changed += ["content", "content_hash", "normalized_hash"]
        if changed:
            try:
                with transaction.atomic():
                    memory.save(update_fields=[*changed, "updated_at"])
            except IntegrityError as exc:
                if not _violates(exc, UNIQUE_CONTENT_CONSTRAINT):
                    raise
                # A concurrent add or restore took this content after the first look.
                raise ContentConflictError(
                    _live_holder(namespace=namespace, digest=memory.content_hash, exclude=memory_id)
                ) from None
        if embedded is not None:
            embedding = embedded.embeddings[0]
            MemoryEmbedding.objects.update_or_create(
                memory_id=memory.pk,
                defaults={
                    "namespace": memory.namespace,
                    "embedding": embedding.vector,
                    "embedding_model": embedded.model_id,
                    "truncated": embedding.truncated,
                },
            )
            memory.embedding_truncated = embedding.truncated
            # New content may now restate another memory: the same rule as after an add.
            work_after_add(namespace=memory.namespace, memories=[memory])
        else:
            memory.embedding_truncated = bool(
                MemoryEmbedding.objects.filter(memory_id=memory.pk).values_list("truncated", flat=True).first()
            )
        if embedded is not None or "category" in changed:  # the handshake's theme is a category
            _quotes_refresh(memory, content_changed=embedded is not None, category_changed="category" in changed)
    return MemoryUpdate(
        memory=memory,
        content_changed=embedded is not None,
        embedding_provider=embedded.provider_label if embedded is not None else None,
    )


def memories_soft_delete(*, namespace: str | None, memory_ids: list[UUID]) -> int:
    """Soft-delete the live memories among ``memory_ids`` in one UPDATE; returns how many."""
    now = timezone.now()
    rows = Memory.objects.filter(LIVE, pk__in=memory_ids)
    if namespace is not None:
        rows = rows.filter(namespace=namespace)
    return rows.update(deleted_at=now, updated_at=now)


def memory_soft_delete(*, namespace: str, memory_id: UUID) -> datetime:
    """Soft-delete one live memory; returns its ``deleted_at``. Raises ``MemoryNotFoundError``."""
    if not memories_soft_delete(namespace=namespace, memory_ids=[memory_id]):
        raise memory_not_found(namespace=namespace, memory_id=memory_id)
    return Memory.objects.filter(pk=memory_id).values_list("deleted_at", flat=True).get()


@dataclass
class RestoreOutcome:
    restored: list[UUID] = field(default_factory=list)
    #: Selected but live already: nothing to do.
    already_live: list[UUID] = field(default_factory=list)
    #: A deleted memory → the live memory of its namespace that holds its content now.
    conflicts: dict[UUID, UUID] = field(default_factory=dict)
    #: A merged memory → the memory it was merged into; never restored.
    merged: dict[UUID, UUID] = field(default_factory=dict)
    #: Unknown ids (or of another namespace).
    missing: list[UUID] = field(default_factory=list)


def memories_restore(*, namespace: str | None, memory_ids: list[UUID]) -> RestoreOutcome:
    """Restore deleted memories whose content no live memory of their namespace has.

    Of several selected deleted memories with one content, the most recently deleted
    comes back and the others count as conflicts. One UPDATE; when a concurrent add
    takes one of the contents in between, the constraint refuses it and the rows are
    settled one by one.
    """
    outcome = RestoreOutcome()
    with transaction.atomic():
        rows = Memory.objects.select_for_update(no_key=True).filter(pk__in=memory_ids).order_by("pk")
        if namespace is not None:
            rows = rows.filter(namespace=namespace)
        found = list(rows.values_list("pk", "namespace", "content_hash", "deleted_at", "merged_into_id"))
        known = {row[0] for row in found}
        outcome.missing = [memory_id for memory_id in memory_ids if memory_id not in known]
        deleted = []
        for pk, ns, digest, deleted_at, merged_into in found:
            if merged_into is not None:
                outcome.merged[pk] = merged_into
            elif deleted_at is None:
                outcome.already_live.append(pk)
            else:
                deleted.append((pk, ns, digest, deleted_at))
        if not deleted:
            return outcome
        holders = dict(
            ((ns, digest), pk)
            for pk, ns, digest in Memory.objects.filter(
                LIVE, reduce(or_, (Q(namespace=ns, content_hash=digest) for _, ns, digest, _ in deleted))
            ).values_list("pk", "namespace", "content_hash")
        )
        chosen = []
        for pk, ns, digest, _ in sorted(deleted, key=lambda row: row[3], reverse=True):
            holder = holders.get((ns, digest))
            if holder is not None:
                outcome.conflicts[pk] = holder
            else:
                holders[(ns, digest)] = pk
                chosen.append(pk)
        now = timezone.now()
        try:
            with transaction.atomic():
                Memory.objects.filter(pk__in=chosen).update(deleted_at=None, updated_at=now)
            outcome.restored = chosen
        except IntegrityError as exc:
            if not _violates(exc, UNIQUE_CONTENT_CONSTRAINT):
                raise
            by_pk = {pk: (ns, digest) for pk, ns, digest, _ in deleted}
            for pk in chosen:
                try:
                    with transaction.atomic():
                        Memory.objects.filter(pk=pk).update(deleted_at=None, updated_at=now)
                    outcome.restored.append(pk)
                except IntegrityError as row_exc:
                    if not _violates(row_exc, UNIQUE_CONTENT_CONSTRAINT):
                        raise
                    ns, digest = by_pk[pk]
                    outcome.conflicts[pk] = _live_holder(namespace=ns, digest=digest)
    return outcome


def memory_restore(*, namespace: str, memory_id: UUID) -> tuple[Memory, bool]:
    """Restore one deleted memory; returns it and whether it was deleted before.

    Raises ``MemoryNotFoundError`` (unknown here, or merged: ``merged_into`` set) and
    ``ContentConflictError`` (a live memory of the namespace has this content now).
    """
    outcome = memories_restore(namespace=namespace, memory_ids=[memory_id])
    if outcome.missing or outcome.merged:
        raise MemoryNotFoundError(memory_id, outcome.merged.get(memory_id))
    if outcome.conflicts:
        raise ContentConflictError(outcome.conflicts[memory_id])
    return memory_get(namespace=namespace, memory_id=memory_id), bool(outcome.restored)


def memories_set_catalyst(*, namespace: str | None, memory_ids: list[UUID], is_catalyst: bool) -> int:
    """Mark or unmark live memories as catalysts in one UPDATE; returns how many changed."""
    rows = Memory.objects.filter(LIVE, pk__in=memory_ids).exclude(is_catalyst=is_catalyst)
    if namespace is not None:
        rows = rows.filter(namespace=namespace)
    return rows.update(is_catalyst=is_catalyst, updated_at=timezone.now())


def memories_set_pinned(*, namespace: str | None, memory_ids: list[UUID], pinned: bool) -> int:
    """Pin or unpin live memories in one UPDATE; returns how many changed."""
    rows = Memory.objects.filter(LIVE, pk__in=memory_ids).exclude(pinned=pinned)
    if namespace is not None:
        rows = rows.filter(namespace=namespace)
    return rows.update(pinned=pinned, updated_at=timezone.now())


class MergeRefusedError(Exception):
    """Staff asked for a merge that cannot be done; the message says why."""


MESSAGE_MERGE_NEEDS_TWO = "Select exactly two live memories of one namespace to merge."
MESSAGE_MERGE_PINNED = "The newer memory is pinned; a pinned memory is never merged away."


def _pair_similarity(first: UUID, second: UUID) -> float:
    """Cosine similarity of two memories' vectors; 0 when one is missing or of another model."""
    rows = dict(
        MemoryEmbedding.objects.filter(memory_id__in=[first, second]).values_list("memory_id", "embedding_model")
    )
    if len(rows) != 2 or rows[first] != rows[second]:
        return 0.0
    other_vector = Subquery(MemoryEmbedding.objects.filter(memory_id=second).values("embedding")[:1])
    distance = (
        MemoryEmbedding.objects.filter(memory_id=first)
        .annotate(distance=CosineDistance("embedding", other_vector))
        .values_list("distance", flat=True)
        .get()
    )
    return 1.0 - distance


def memories_merge_pair(*, memory_ids: list[UUID]) -> Memory:
    """Staff merge of two live memories of one namespace: the newer folds into the older,
    through consolidation's own merge (φ, access, tags, associations, variants). Returns
    the survivor; raises ``MergeRefusedError``."""
    if len(set(memory_ids)) != 2:
        raise MergeRefusedError(MESSAGE_MERGE_NEEDS_TWO)
    with transaction.atomic():
        pair = list(
            Memory.objects.select_for_update(no_key=True).filter(LIVE, pk__in=memory_ids).defer("search_vector").order_by("pk")
        )
        if len(pair) != 2 or pair[0].namespace != pair[1].namespace:
            raise MergeRefusedError(MESSAGE_MERGE_NEEDS_TWO)
        older, newer = sorted(pair, key=lambda m: (m.created_at, str(m.pk)))
        if newer.pinned:
            raise MergeRefusedError(MESSAGE_MERGE_PINNED)
        return memories_merge(survivor=older, merged=newer, similarity=_pair_similarity(older.pk, newer.pk))
