"""Moving a memory between tiers by hand (API ``update-tier`` and the admin), audited."""

from dataclasses import dataclass
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from anima_site import metrics
from memories.errors import MemoryNotFoundError
from memories.models import LIVE, Memory, TierPromotion

REASON_MANUAL = "manual"
MESSAGE_UNCHANGED = "Memory is already at the target tier."
MESSAGE_MOVED = "Memory moved."


@dataclass(frozen=True)
class TierChange:
    memory: Memory
    promotion: TierPromotion | None  # None when the memory already was at the tier


def memory_update_tier(*, namespace: str, memory_id: UUID, tier: str, reason: str = REASON_MANUAL) -> TierChange:
    """Move one live memory to ``tier`` and write one TierPromotion row; a no-op when unchanged."""
    with transaction.atomic():
        memory = Memory.objects.select_for_update(no_key=True).filter(LIVE, namespace=namespace, pk=memory_id).first()
        if memory is None:
            merged_into = (
                Memory.objects.filter(namespace=namespace, pk=memory_id).values_list("merged_into_id", flat=True).first()
            )
            raise MemoryNotFoundError(memory_id, merged_into)
        if memory.tier == tier:
            return TierChange(memory=memory, promotion=None)
        now = timezone.now()
        promotion = TierPromotion.objects.create(
            memory=memory,
            from_tier=memory.tier,
            to_tier=tier,
            reason=reason,
            access_count_at_promotion=memory.access_count,
            days_since_last_access=(now - memory.last_accessed).total_seconds() / 86400,
            created_at=now,
        )
        memory.tier = tier
        memory.tier_last_updated = now
        memory.save(update_fields=["tier", "tier_last_updated", "updated_at"])
    metrics.record_promotions([promotion], reason=reason)
    return TierChange(memory=memory, promotion=promotion)


def memories_update_tier(*, namespace: str | None, memory_ids: list[UUID], tier: str, reason: str = REASON_MANUAL) -> int:
    """Bulk move (the admin action): one UPDATE and one bulk audit insert; returns how many moved.

    ``namespace`` None means every namespace (staff act across them).
    """
    now = timezone.now()
    with transaction.atomic():
        rows = Memory.objects.select_for_update(no_key=True).filter(LIVE, pk__in=memory_ids).exclude(tier=tier).order_by("pk")
        if namespace is not None:
            rows = rows.filter(namespace=namespace)
        moving = list(rows.values_list("pk", "tier", "access_count", "last_accessed"))
        TierPromotion.objects.bulk_create(
            [
                TierPromotion(
                    memory_id=pk,
                    from_tier=from_tier,
                    to_tier=tier,
                    reason=reason,
                    access_count_at_promotion=count,
                    days_since_last_access=(now - last).total_seconds() / 86400,
                    created_at=now,
                )
                for pk, from_tier, count, last in moving
            ]
        )
        Memory.objects.filter(pk__in=[row[0] for row in moving]).update(tier=tier, tier_last_updated=now, updated_at=now)
    for _, from_tier, _, _ in moving:
        metrics.PROMOTIONS.labels(from_tier=from_tier, to_tier=tier, reason=reason).inc()
    return len(moving)
