"""Reads of a namespace's φ (resonance): the top memories by φ and the φ statistics."""

from dataclasses import dataclass

from django.db.models import Avg, Count, Max, Q, Sum

from memories.models import CURRENT, LIVE, Memory


def memories_catalysts(*, namespace: str, limit: int) -> list[Memory]:
    """Top current memories by φ, then access count (the ``memory_phi_access`` index)."""
    return list(
        Memory.objects.filter(LIVE, CURRENT, namespace=namespace)
        .defer("search_vector")
        .order_by("-resonance_phi", "-access_count", "id")[:limit]
    )


@dataclass(frozen=True)
class CategoryPhi:
    category: str
    total_phi: float
    memory_count: int


@dataclass(frozen=True)
class PhiStats:
    total_phi: float
    avg_phi: float
    max_phi: float
    catalyst_count: int
    total_memories: int
    #: The category with the most φ; None when no live memory has a category.
    top_category: CategoryPhi | None


def memories_phi_stats(*, namespace: str) -> PhiStats:
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
    return PhiStats(
        total_phi=round(totals["total_phi"] or 0.0, 2),
        avg_phi=round(totals["avg_phi"] or 0.0, 3),
        max_phi=totals["max_phi"] or 0.0,
        catalyst_count=totals["catalysts"],
        total_memories=totals["total"],
        top_category=(
            CategoryPhi(
                category=top["category"], total_phi=round(top["total_phi"], 2), memory_count=top["memory_count"]
            )
            if top
            else None
        ),
    )
