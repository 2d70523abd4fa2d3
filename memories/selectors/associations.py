"""Reads of the association graph: a memory's neighbours, its totals, the hubs of a
namespace (the API), and every association of one memory (the admin).

The API leaves out associations whose other end is deleted, the same way everywhere:
every query joins both ends and keeps only live memories. The admin shows them, marked.
"""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from django.db import connection
from django.db.models import Avg, Case, Count, F, Max, Q, Sum, When
from django.db.models.functions import Substr

from memories.models import Memory, MemoryAssociation
from memories.selectors.memories import PREVIEW_CHARS, memory_get_live


def _live_pairs_of(namespace: str, memory_id: UUID):
    return MemoryAssociation.objects.filter(
        (Q(memory_a_id=memory_id) & Q(memory_b__deleted_at__isnull=True))
        | (Q(memory_b_id=memory_id) & Q(memory_a__deleted_at__isnull=True)),
        namespace=namespace,
    )


@dataclass(frozen=True)
class Neighbour:
    memory: Memory
    association: MemoryAssociation


def associations_discover(*, namespace: str, memory_id: UUID, min_strength: float, limit: int) -> list[Neighbour]:
    memory_get_live(namespace=namespace, memory_id=memory_id)
    pairs = (
        _live_pairs_of(namespace, memory_id)
        .filter(strength__gte=min_strength)
        .select_related("memory_a", "memory_b")
        .defer("memory_a__search_vector", "memory_b__search_vector")
        .order_by("-strength", "-co_occurrence_count", "id")[:limit]
    )
    return [
        Neighbour(memory=pair.memory_b if pair.memory_a_id == memory_id else pair.memory_a, association=pair)
        for pair in pairs
    ]


@dataclass(frozen=True)
class NetworkStats:
    memory_id: UUID
    total_associations: int
    avg_strength: float
    max_strength: float
    total_co_occurrences: int


def association_network_stats(*, namespace: str, memory_id: UUID) -> NetworkStats:
    memory_get_live(namespace=namespace, memory_id=memory_id)
    totals = _live_pairs_of(namespace, memory_id).aggregate(
        total=Count("id"), avg=Avg("strength"), max=Max("strength"), co=Sum("co_occurrence_count")
    )
    return NetworkStats(
        memory_id=memory_id,
        total_associations=totals["total"],
        avg_strength=round(totals["avg"] or 0.0, 4),
        max_strength=round(totals["max"] or 0.0, 4),
        total_co_occurrences=totals["co"] or 0,
    )


@dataclass(frozen=True)
class Hub:
    memory: Memory
    total_connections: int
    total_co_occurrences: int
    avg_strength: float


_HUBS_SQL = """
WITH live_pairs AS (
    SELECT a.memory_a_id, a.memory_b_id, a.co_occurrence_count, a.strength
    FROM memories_memoryassociation a
    JOIN memories_memory ma ON ma.id = a.memory_a_id AND ma.deleted_at IS NULL
    JOIN memories_memory mb ON mb.id = a.memory_b_id AND mb.deleted_at IS NULL
    WHERE a.namespace = %(namespace)s
), ends AS (
    SELECT memory_a_id AS memory_id, co_occurrence_count, strength FROM live_pairs
    UNION ALL
    SELECT memory_b_id, co_occurrence_count, strength FROM live_pairs
)
SELECT memory_id, count(*), sum(co_occurrence_count), avg(strength)
FROM ends GROUP BY memory_id HAVING count(*) >= %(min_connections)s
ORDER BY count(*) DESC, sum(co_occurrence_count) DESC, memory_id
LIMIT %(limit)s
"""


def associations_hubs(*, namespace: str, min_connections: int, limit: int) -> list[Hub]:
    with connection.cursor() as cursor:
        cursor.execute(_HUBS_SQL, {"namespace": namespace, "min_connections": min_connections, "limit": limit})
        rows = cursor.fetchall()
    memories = Memory.objects.defer("search_vector").in_bulk([row[0] for row in rows])
    return [
        Hub(memory=memories[mid], total_connections=n, total_co_occurrences=int(co), avg_strength=float(avg))
        for mid, n, co, avg in rows
    ]


@dataclass(frozen=True)
class AssociatedMemory:
    """One association of a memory, seen from that memory: the other end and the pair's counts."""

    other_id: UUID
    other_preview: str
    other_live: bool
    co_occurrence_count: int
    strength: float
    last_co_occurred_at: datetime


def memory_associations(*, memory_id: UUID, limit: int = 20) -> list[AssociatedMemory]:
    """The strongest associations of a memory (either end of the pair), deleted other ends
    included and marked (the admin shows them; the API leaves them out)."""
    is_a = Q(memory_a_id=memory_id)
    rows = (
        MemoryAssociation.objects.filter(is_a | Q(memory_b_id=memory_id))
        .annotate(
            other_id=Case(When(is_a, then=F("memory_b_id")), default=F("memory_a_id")),
            other_preview=Case(
                When(is_a, then=Substr("memory_b__content", 1, PREVIEW_CHARS)),
                default=Substr("memory_a__content", 1, PREVIEW_CHARS),
            ),
            other_deleted_at=Case(When(is_a, then=F("memory_b__deleted_at")), default=F("memory_a__deleted_at")),
        )
        .order_by("-strength", "-co_occurrence_count", "pk")
        .values_list(
            "other_id", "other_preview", "other_deleted_at", "co_occurrence_count", "strength", "last_co_occurred_at"
        )[:limit]
    )
    return [
        AssociatedMemory(
            other_id=other_id,
            other_preview=preview,
            other_live=deleted_at is None,
            co_occurrence_count=count,
            strength=strength,
            last_co_occurred_at=last,
        )
        for other_id, preview, deleted_at, count, strength, last in rows
    ]
