"""Reads of tiers: live memories per tier (from the trigger-maintained ``TierCount``) and
one memory's tier history."""

from uuid import UUID

from anima_site.db import CompiledRows
from memories.models import Tier, TierCount, TierPromotion


#: ``tier_counts``'s one statement, compiled once (``CompiledRows``): bootstrap reads it.
_STATEMENTS = CompiledRows()


def _tier_counts_queryset(*, namespace: str):
    return TierCount.objects.filter(namespace=namespace).values_list("tier", "count")


def tier_counts(*, namespace: str) -> dict[str, int]:
    """Live memories of every tier and their ``total``, from the trigger-maintained counts
    (a few rows, whatever the size)."""
    return tier_counts_from(dict(_STATEMENTS.rows("tier counts", _tier_counts_queryset, namespace=namespace)))


def tier_counts_from(rows: dict[str, int]) -> dict[str, int]:
    """``tier_counts`` of a namespace's ``TierCount`` rows as {tier: count}."""
    distribution = {tier: int(rows.get(tier, 0)) for tier in Tier.values}
    distribution["total"] = sum(distribution.values())
    return distribution


def tier_distribution(*, namespace: str) -> dict[str, int]:
    """Bootstrap's shape of ``tier_counts``: active, thread, stable and the total (network included)."""
    return distribution_of(tier_counts(namespace=namespace))


def distribution_of(counts: dict[str, int]) -> dict[str, int]:
    """Bootstrap's shape of ``tier_counts``'s answer."""
    return {tier: counts[tier] for tier in (Tier.ACTIVE, Tier.THREAD, Tier.STABLE, "total")}


def memory_promotions(*, memory_id: UUID, limit: int = 50) -> list[TierPromotion]:
    """A memory's tier changes, newest first."""
    return list(TierPromotion.objects.filter(memory_id=memory_id).order_by("-created_at", "-pk")[:limit])
