"""What every access does to a memory, and the one promotion rule.

An access is a query hit, a duplicate add, a merge or an explicit feedback. For any number of
memories it costs a constant number of statements and never touches the embedding
table: one ``UPDATE … FROM (SELECT … ORDER BY id FOR NO KEY UPDATE)`` for counters, φ and
tier (rows locked in id order, so concurrent accesses cannot deadlock; ``NO KEY``, so
the foreign-key checks of a co-occurrence drain, which lock the same memories ``KEY
SHARE``, neither wait for it nor deadlock with it), one bulk insert
of ``MemoryAccess`` rows and, when some memory crossed a threshold, one bulk insert of
``TierPromotion`` rows.

Promotion rule: when an access makes ``access_count`` cross a threshold (before < T ≤
after) the memory moves one step, ``active → thread`` at ``ANIMA_PROMOTE_TO_THREAD_AT``
and ``thread → stable`` at ``ANIMA_PROMOTE_TO_STABLE_AT``, and only from the tier below.
A memory moved by hand is therefore never moved back by a later access: its count has
already passed the threshold, or it sits in a tier the rule does not move from.

φ moves by the caller's ``phi_increment`` (negative for a "not useful" feedback) and stays
in [``PHI_MIN``, ``PHI_MAX``] of memories.ranking.
"""

from dataclasses import dataclass
from uuid import UUID

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from anima_site import metrics
from memories.models import Memory, MemoryAccess, TierPromotion
from memories.ranking import PHI_MAX, PHI_MIN

PROMOTION_REASON_ACCESS = "access_threshold"


@dataclass(frozen=True)
class Promotion:
    memory_id: UUID
    from_tier: str
    to_tier: str


@dataclass(frozen=True)
class AccessResult:
    #: The accessed memories as they are after the update, by id.
    memories: dict[UUID, Memory]
    promotions: list[Promotion]


def _returned_columns() -> str:
    columns = [field.column for field in Memory._meta.concrete_fields if field.name != "search_vector"]
    return ", ".join(f"m.{column}" for column in columns)


_ACCESS_SQL = f"""
WITH target AS (
    SELECT id, tier AS old_tier, access_count AS old_count, resonance_phi AS old_phi,
           last_accessed AS old_last_accessed
    FROM memories_memory
    WHERE id = ANY(%(ids)s) AND namespace = %(namespace)s AND deleted_at IS NULL
    ORDER BY id
    FOR NO KEY UPDATE
), changed AS (
    SELECT id,
           CASE
               WHEN old_tier = 'active' AND old_count < %(to_thread)s AND old_count + 1 >= %(to_thread)s
                   THEN 'thread'
               WHEN old_tier = 'thread' AND old_count < %(to_stable)s AND old_count + 1 >= %(to_stable)s
                   THEN 'stable'
           END AS new_tier
    FROM target
)
UPDATE memories_memory m SET
    access_count = t.old_count + 1,
    last_accessed = %(now)s,
    resonance_phi = GREATEST(LEAST(t.old_phi + %(phi_increment)s, {PHI_MAX}), {PHI_MIN}),
    tier = COALESCE(c.new_tier, t.old_tier),
    tier_last_updated = CASE WHEN c.new_tier IS NULL THEN m.tier_last_updated ELSE %(now)s END
FROM target t JOIN changed c ON c.id = t.id
WHERE m.id = t.id
RETURNING {{columns}}, t.old_tier, t.old_last_accessed
"""


def memories_record_access(
    *,
    namespace: str,
    memory_ids: list[UUID],
    conversation_id: str | None = None,
    phi_increment: float = 0.0,
) -> AccessResult:
    """Count one access of each live memory in ``memory_ids``; apply the promotion rule."""
    if not memory_ids:
        return AccessResult(memories={}, promotions=[])
    now = timezone.now()
    sql = _ACCESS_SQL.replace("{columns}", _returned_columns())
    params = {
        "ids": list(memory_ids),
        "namespace": namespace,
        "to_thread": settings.ANIMA_PROMOTE_TO_THREAD_AT,
        "to_stable": settings.ANIMA_PROMOTE_TO_STABLE_AT,
        "now": now,
        "phi_increment": phi_increment,
    }
    with transaction.atomic():
        rows = list(Memory.objects.raw(sql, params))
        MemoryAccess.objects.bulk_create(
            [MemoryAccess(memory_id=row.id, conversation_id=conversation_id, accessed_at=now) for row in rows]
        )
        audit = [
            TierPromotion(
                memory_id=row.id,
                from_tier=row.old_tier,
                to_tier=row.tier,
                reason=PROMOTION_REASON_ACCESS,
                access_count_at_promotion=row.access_count,
                days_since_last_access=(now - row.old_last_accessed).total_seconds() / 86400,
                created_at=now,
            )
            for row in rows
            if row.tier != row.old_tier
        ]
        if audit:
            TierPromotion.objects.bulk_create(audit)
    metrics.record_promotions(audit, reason=PROMOTION_REASON_ACCESS)
    return AccessResult(
        memories={row.id: row for row in rows},
        promotions=[Promotion(memory_id=p.memory_id, from_tier=p.from_tier, to_tier=p.to_tier) for p in audit],
    )

