"""Tiers: every change of a memory's tier, each with its ``TierPromotion`` audit row.

- **By access**, the one promotion rule (``promoted_tier_sql``): when an access makes
  ``access_count`` cross a threshold (before < T ≤ after) the memory moves one step,
  ``active → thread`` at ``ANIMA_PROMOTE_TO_THREAD_AT`` and ``thread → stable`` at
  ``ANIMA_PROMOTE_TO_STABLE_AT``, and only from the tier below. A memory moved by hand is
  therefore never moved back by a later access: its count has already passed the
  threshold, or it sits in a tier the rule does not move from. ``memories.services.access``
  applies the rule inside its one UPDATE and audits what moved here; for a query's hits
  the background drain applies it to the accesses it counts (``memories_apply_accesses``).
- **By hand** (API ``update-tier`` and the admin): ``memory_update_tier``,
  ``memories_update_tier``.

Every change writes its audit row through ``tier_changes_audit`` (one INSERT for any
number) and counts in the ``PROMOTIONS`` metric once its transaction is done.
"""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from anima_site import metrics
from memories.selectors.memories import memory_not_found
from memories.models import LIVE, Memory, Tier, TierPromotion

REASON_MANUAL = "manual"
REASON_ACCESS = "access_threshold"
MESSAGE_UNCHANGED = "Memory is already at the target tier."
MESSAGE_MOVED = "Memory moved."


@dataclass(frozen=True)
class Promotion:
    """One tier change, as the API reports it."""

    memory_id: UUID
    from_tier: str
    to_tier: str


@dataclass(frozen=True)
class TierMove:
    """One tier change to audit, with the memory's state before it."""

    memory_id: UUID
    from_tier: str
    to_tier: str
    access_count: int
    last_accessed: datetime


def promoted_tier_sql(*, tier: str, count: str, by: str = "1") -> str:
    """The promotion rule as SQL: the tier a memory in ``tier`` moves to when accesses take
    its count from ``count`` to ``count + by``, NULL when it stays. One step: for ``by`` > 1
    (the background drain counting several accesses at once) apply it again to its result
    to move as the accesses one by one would (``promoted_twice_sql``). Its parameters are
    ``promotion_thresholds()``."""
    return f"""CASE
               WHEN {tier} = '{Tier.ACTIVE.value}' AND {count} < %(to_thread)s AND {count} + {by} >= %(to_thread)s
                   THEN '{Tier.THREAD.value}'
               WHEN {tier} = '{Tier.THREAD.value}' AND {count} < %(to_stable)s AND {count} + {by} >= %(to_stable)s
                   THEN '{Tier.STABLE.value}'
           END"""


def promoted_twice_sql(*, tier: str, count: str, by: str) -> str:
    """The tier after ``by`` accesses from ``count`` (never NULL): the rule applied to its own
    result, so ``active`` crossing both thresholds ends ``stable``, as one access at a time."""
    once = f"COALESCE({promoted_tier_sql(tier=tier, count=count, by=by)}, {tier})"
    return f"COALESCE({promoted_tier_sql(tier=once, count=count, by=by)}, {once})"


def promotion_thresholds() -> dict[str, int]:
    return {"to_thread": settings.ANIMA_PROMOTE_TO_THREAD_AT, "to_stable": settings.ANIMA_PROMOTE_TO_STABLE_AT}


def tier_changes_audit(moves: list[TierMove], *, reason: str, now: datetime) -> list[TierPromotion]:
    """Write one ``TierPromotion`` row per move (one INSERT, none when nothing moved)."""
    rows = tier_promotion_rows(moves, reason=reason, now=now)
    if rows:
        TierPromotion.objects.bulk_create(rows)
    return rows


def tier_promotion_rows(moves: list[TierMove], *, reason: str, now: datetime) -> list[TierPromotion]:
    """The audit rows of ``moves``, unsaved (``memories.services.access`` writes its own in SQL)."""
    return [
        TierPromotion(
            memory_id=move.memory_id,
            from_tier=move.from_tier,
            to_tier=move.to_tier,
            reason=reason,
            access_count_at_promotion=move.access_count,
            days_since_last_access=(now - move.last_accessed).total_seconds() / 86400,
            created_at=now,
        )
        for move in moves
    ]


@dataclass(frozen=True)
class TierChange:
    memory: Memory
    promotion: TierPromotion | None  # None when the memory already was at the tier


def memory_update_tier(*, namespace: str, memory_id: UUID, tier: str, reason: str = REASON_MANUAL) -> TierChange:
    """Move one live memory to ``tier`` and write one TierPromotion row; a no-op when unchanged."""
    with transaction.atomic():
        memory = Memory.objects.select_for_update(no_key=True).filter(LIVE, namespace=namespace, pk=memory_id).first()
        if memory is None:
            raise memory_not_found(namespace=namespace, memory_id=memory_id)
        if memory.tier == tier:
            return TierChange(memory=memory, promotion=None)
        now = timezone.now()
        move = TierMove(memory.pk, memory.tier, tier, memory.access_count, memory.last_accessed)
        audit = tier_changes_audit([move], reason=reason, now=now)
        memory.tier = tier
        memory.tier_last_updated = now
        memory.save(update_fields=["tier", "tier_last_updated", "updated_at"])
    metrics.record_promotions(audit, reason=reason)
    return TierChange(memory=memory, promotion=audit[0])


def memories_update_tier(*, namespace: str | None, memory_ids: list[UUID], tier: str, reason: str = REASON_MANUAL) -> int:
    """Bulk move (the admin action): one UPDATE and one bulk audit insert; returns how many moved.

    ``namespace`` None means every namespace (staff act across them).
    """
    now = timezone.now()
    with transaction.atomic():
        rows = Memory.objects.select_for_update(no_key=True).filter(LIVE, pk__in=memory_ids).exclude(tier=tier).order_by("pk")
        if namespace is not None:
            rows = rows.filter(namespace=namespace)
        moves = [
            TierMove(pk, from_tier, tier, count, last)
            for pk, from_tier, count, last in rows.values_list("pk", "tier", "access_count", "last_accessed")
        ]
        audit = tier_changes_audit(moves, reason=reason, now=now)
        Memory.objects.filter(pk__in=[move.memory_id for move in moves]).update(
            tier=tier, tier_last_updated=now, updated_at=now
        )
    metrics.record_promotions(audit, reason=reason)
    return len(moves)
