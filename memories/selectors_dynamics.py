"""Reads for the dynamics endpoints: catalysts, φ statistics, and the association graph.

Associations whose other end is deleted are left out everywhere, the same way: every
query below joins both ends and keeps only live memories.
"""

from dataclasses import dataclass
from uuid import UUID

from django.db import connection
from django.db.models import Avg, Count, Max, Q, Sum

from memories.listing import memory_not_found
from memories.models import LIVE, Memory, MemoryAssociation


def memory_get_live(*, namespace: str, memory_id: UUID) -> Memory:
    """The live memory, or MemoryNotFoundError (naming the survivor when it was merged)."""
    memory = Memory.objects.filter(LIVE, namespace=namespace, pk=memory_id).defer("search_vector").first()
    if memory is None:
        raise memory_not_found(namespace=namespace, memory_id=memory_id)
    return memory


def memories_catalysts(*, namespace: str, limit: int) -> list[Memory]:
    """Top memories by φ, then access count (the ``memory_phi_access`` index)."""
    return list(
        Memory.objects.filter(LIVE, namespace=namespace)
        .defer("search_vector")
        .order_by("-resonance_phi", "-access_count", "id")[:limit]
    )


def memories_phi_stats(*, namespace: str) -> dict:
    live = Memory.objects.filter(LIVE, namespace=namespace)
    totals = live.aggregate(
        total_phi=Sum("resonance_phi"),
        avg_phi=Avg("resonance_phi"),
        max_phi=Max("resonance_phi"),
        total=Count("id"),
        catalysts=Count("id", filter=Q(is_catalyst=True)),
    )
    top = (
        live.exclude(category__isnull=True)
        .values("category")
        .annotate(total_phi=Sum("resonance_phi"), memory_count=Count("id"))
        .order_by("-total_phi", "-memory_count", "category")
        .first()
    )
    return {
        "totalPhi": round(totals["total_phi"] or 0.0, 2),
        "avgPhi": round(totals["avg_phi"] or 0.0, 3),
        "maxPhi": totals["max_phi"] or 0.0,
        "catalystCount": totals["catalysts"],
        "totalMemories": totals["total"],
        "topCategory": (
            {"category": top["category"], "totalPhi": round(top["total_phi"], 2), "memoryCount": top["memory_count"]}
            if top
            else None
        ),
    }


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


def association_network_stats(*, namespace: str, memory_id: UUID) -> dict:
    memory_get_live(namespace=namespace, memory_id=memory_id)
    totals = _live_pairs_of(namespace, memory_id).aggregate(
        total=Count("id"), avg=Avg("strength"), max=Max("strength"), co=Sum("co_occurrence_count")
    )
    return {
        "totalAssociations": totals["total"],
        "avgStrength": round(totals["avg"] or 0.0, 4),
        "maxStrength": round(totals["max"] or 0.0, 4),
        "totalCoOccurrences": totals["co"] or 0,
    }


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
