"""Reads of memories themselves: one memory by id, the one "not found" error for every
reader and writer (``memory_not_found``: it names the survivor when the memory was
merged), the filtered (``MemoryFilters``), keyset-paginated list, and what the admin
shows of one memory (nearest neighbours through ``memories.search``, previews, the
embedding's model, merged variants).

The list pages by keyset ("cursor"), not by offset: a cursor names the last row shown,
as (value of the ordering column, id), and the next page starts strictly after it
in ``ORDER BY <column>, id`` (both descending for a descending ordering). Page *n*
costs what page 1 costs, ties in φ or access count never repeat or skip a row, and
rows added meanwhile do not shift the pages. ``lastAccessed``, ``accessCount`` and
``resonancePhi`` change when a query returns a memory; such a memory moves in the
order, so a walk through those orderings may meet it twice or not at all — the
``createdAt`` ordering is the stable one.
"""

import base64
import binascii
import json
import math
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from django.db import transaction
from django.db.models import BooleanField, F, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.functions import Substr

from anima_site.db import CompiledRows, instances_from_rows
from anima_site.json_values import json_loads
from memories.datetimes import datetime_in_utc
from memories.errors import MemoryNotFoundError
from memories.filters import MemoryFilters
from memories.models import LIVE, Memory, MemoryEmbedding
from memories.search import CandidateSearch, configure_hnsw, nearest_embeddings

#: Columns the list may be ordered by (the API names them createdAt, lastAccessed, …).
LIST_ORDER_FIELDS = ("created_at", "last_accessed", "resonance_phi", "access_count")
_DATETIME_FIELDS = {"created_at", "last_accessed"}
DEFAULT_LIST_ORDERING = "-created_at"
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
SIMILAR_LIMIT = 10
#: Characters of a neighbour's content shown next to it.
PREVIEW_CHARS = 200


class InvalidCursorError(ValueError):
    """The cursor is not one this module wrote."""


@dataclass(frozen=True)
class Cursor:
    """A position in one ordering: after (``value``, ``memory_id``) in the page direction.

    ``backwards`` cursors lead to the previous page: rows before the position.
    """

    ordering: str
    value: object
    memory_id: UUID
    backwards: bool = False

    def encode(self) -> str:
        value = self.value.isoformat() if isinstance(self.value, datetime) else self.value
        raw = json.dumps({"o": self.ordering, "v": value, "id": str(self.memory_id), "b": self.backwards})
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> "Cursor":
        try:
            raw = json_loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            ordering, value, memory_id, backwards = raw["o"], raw["v"], UUID(raw["id"]), raw["b"]
            field = ordering.removeprefix("-")
            if field not in LIST_ORDER_FIELDS or not isinstance(backwards, bool):
                raise InvalidCursorError("unknown ordering")
            if field in _DATETIME_FIELDS:
                value = datetime.fromisoformat(value)
                if value.tzinfo is None:
                    raise InvalidCursorError("naive timestamp")
                datetime_in_utc(value)
            elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InvalidCursorError("not a finite number")
            elif field == "access_count" and not (isinstance(value, int) and 0 <= value < 2**63):
                raise InvalidCursorError("not a count")
        except (binascii.Error, AttributeError, KeyError, TypeError, ValueError, OverflowError) as exc:
            raise InvalidCursorError(str(exc)) from None
        return cls(ordering=ordering, value=value, memory_id=memory_id, backwards=backwards)


@dataclass(frozen=True)
class MemoryPage:
    memories: list[Memory]
    next_cursor: str | None
    previous_cursor: str | None

    @property
    def count(self) -> int:
        return len(self.memories)


def memory_output_queryset() -> QuerySet:
    """Memories as the API shows them: ``embedding_truncated`` joined in, the vector and
    the full-text column never read."""
    return Memory.objects.annotate(embedding_truncated=F("embedding__truncated")).defer("search_vector")


#: ``memories_shown``'s statement, compiled once (``CompiledRows``); its columns.
_SHOWN = CompiledRows()
_SHOWN_FIELDS = [field for field in Memory._meta.concrete_fields if field.name != "search_vector"]


def _shown_queryset(*, ids):
    chosen = RawSQL(f"{Memory._meta.db_table}.id = ANY(%s::uuid[])", [ids], output_field=BooleanField())
    return memory_output_queryset().filter(chosen).values_list(*(f.attname for f in _SHOWN_FIELDS), "embedding_truncated")


def memories_shown(ids: list[UUID]) -> dict[UUID, Memory]:
    """The memories ``ids`` (live or not) as ``memory_output_queryset`` shows them, by id: one
    compiled statement and no queryset work per call (bootstrap's second read)."""
    if not ids:
        return {}
    rows = _SHOWN.rows("by ids", _shown_queryset, ids=list(ids))
    memories = instances_from_rows(Memory, _SHOWN_FIELDS, rows)
    for memory in memories:
        (memory.embedding_truncated,) = memory.extra
    return {memory.pk: memory for memory in memories}


def _live_or_not_found(memories: QuerySet, *, namespace: str, memory_id: UUID) -> Memory:
    memory = memories.filter(LIVE, namespace=namespace, pk=memory_id).first()
    if memory is None:
        raise memory_not_found(namespace=namespace, memory_id=memory_id)
    return memory


def memory_get(*, namespace: str, memory_id: UUID) -> Memory:
    """One live memory of the namespace as the API shows it; ``MemoryNotFoundError``
    (naming the survivor of a merge) otherwise."""
    return _live_or_not_found(memory_output_queryset(), namespace=namespace, memory_id=memory_id)


def memory_get_live(*, namespace: str, memory_id: UUID) -> Memory:
    """``memory_get`` without the embedding flag, for a reader that only needs the memory to exist."""
    return _live_or_not_found(Memory.objects.defer("search_vector"), namespace=namespace, memory_id=memory_id)


def memory_not_found(*, namespace: str, memory_id: UUID) -> MemoryNotFoundError:
    """The error for a memory that is not live here, with ``merged_into`` when it was merged."""
    merged_into = (
        Memory.objects.filter(namespace=namespace, pk=memory_id).values_list("merged_into_id", flat=True).first()
    )
    return MemoryNotFoundError(memory_id, merged_into)


def _keyset_order(ordering: str, backwards: bool) -> tuple[str, bool, list[str]]:
    field = ordering.removeprefix("-")
    descending = ordering.startswith("-") != backwards
    prefix = "-" if descending else ""
    return field, descending, [f"{prefix}{field}", f"{prefix}id"]


def _after(field: str, descending: bool, cursor: Cursor) -> Q:
    op = "lt" if descending else "gt"
    return Q(**{f"{field}__{op}": cursor.value}) | Q(**{field: cursor.value, f"id__{op}": cursor.memory_id})


def memories_list(
    *,
    namespace: str,
    filters: MemoryFilters | None = None,
    ordering: str = DEFAULT_LIST_ORDERING,
    page_size: int = DEFAULT_PAGE_SIZE,
    cursor: Cursor | None = None,
) -> MemoryPage:
    """One page of the namespace's live memories, ``page_size`` ≤ ``MAX_PAGE_SIZE``.

    ``ordering`` is a field of ``LIST_ORDER_FIELDS``, ``-`` for descending; ties are
    broken by id in the same direction. A ``cursor`` must come from the same ordering.
    """
    field = ordering.removeprefix("-")
    if field not in LIST_ORDER_FIELDS:
        raise ValueError(f"cannot order memories by {ordering!r}")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be within 1..{MAX_PAGE_SIZE}")
    if cursor is not None and cursor.ordering != ordering:
        raise InvalidCursorError("the cursor belongs to another ordering")
    backwards = cursor is not None and cursor.backwards
    field, descending, order_by = _keyset_order(ordering, backwards)
    rows = memory_output_queryset().filter((filters or MemoryFilters()).q(), namespace=namespace)
    if cursor is not None:
        rows = rows.filter(_after(field, descending, cursor))
    rows = list(rows.order_by(*order_by)[: page_size + 1])
    more = len(rows) > page_size
    rows = rows[:page_size]
    if backwards:
        rows.reverse()
    if not rows:
        return MemoryPage(memories=[], next_cursor=None, previous_cursor=None)

    def position(memory: Memory, *, back: bool) -> str:
        return Cursor(ordering=ordering, value=getattr(memory, field), memory_id=memory.pk, backwards=back).encode()

    # Going forwards, rows before this page exist when we came from a cursor; going
    # backwards, rows after it exist (we came from there).
    has_next = more if not backwards else True
    has_previous = cursor is not None if not backwards else more
    return MemoryPage(
        memories=rows,
        next_cursor=position(rows[-1], back=False) if has_next else None,
        previous_cursor=position(rows[0], back=True) if has_previous else None,
    )


@dataclass(frozen=True)
class SimilarMemory:
    memory_id: UUID
    preview: str
    tier: str
    similarity: float


def memory_similar(*, memory_id: UUID, limit: int = SIMILAR_LIMIT) -> list[SimilarMemory]:
    """The live memories of the same namespace and embedding model nearest to this one.

    Ordered by bare cosine distance and sliced, the statement the HNSW index serves, with
    ``hnsw.iterative_scan`` so that deleted rows and other namespaces do not empty the
    answer. Empty when the memory has no embedding.
    """
    source = (
        MemoryEmbedding.objects.filter(memory_id=memory_id)
        .values_list("embedding", "namespace", "embedding_model")
        .first()
    )
    if source is None:
        return []
    vector, namespace, model_id = source
    search = CandidateSearch(namespace=namespace, vector=vector, model_id=model_id)
    nearest = nearest_embeddings(search=search, exclude=memory_id)
    with transaction.atomic():
        configure_hnsw(limit)
        rows = list(
            nearest.annotate(preview=Substr("memory__content", 1, PREVIEW_CHARS)).values_list(
                "memory_id", "distance", "preview", "memory__tier"
            )[:limit]
        )
    similar = [
        SimilarMemory(memory_id=mid, preview=preview, tier=tier, similarity=1.0 - distance)
        for mid, distance, preview, tier in rows
    ]
    # relaxed_order may return neighbours slightly out of order.
    similar.sort(key=lambda s: (-s.similarity, str(s.memory_id)))
    return similar


def memory_previews(*, memory_ids: list[UUID]) -> dict[UUID, tuple[str, bool]]:
    """id → (the beginning of the content, live?) for a few memories, in one query."""
    rows = Memory.objects.filter(pk__in=memory_ids).annotate(preview=Substr("content", 1, PREVIEW_CHARS))
    return {
        pk: (preview, deleted_at is None) for pk, preview, deleted_at in rows.values_list("pk", "preview", "deleted_at")
    }


def memory_embedding_info(*, memory_id: UUID) -> tuple[str, bool] | None:
    """(embedding model, truncated) of a memory's vector, without reading the vector."""
    return MemoryEmbedding.objects.filter(memory_id=memory_id).values_list("embedding_model", "truncated").first()


def memory_merged_variants(*, memory_id: UUID, limit: int = 20) -> dict[UUID, str]:
    """id → preview of the memories consolidation (or staff) merged into this one."""
    rows = (
        Memory.objects.filter(merged_into_id=memory_id)
        .annotate(preview=Substr("content", 1, PREVIEW_CHARS))
        .order_by("-deleted_at", "pk")
        .values_list("pk", "preview")[:limit]
    )
    return dict(rows)
