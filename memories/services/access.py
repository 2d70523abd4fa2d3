"""What every access does to a memory: counters, φ, the promotion rule, the access row.

An access is a query hit, a duplicate add, a merge or an explicit feedback. For any number of
memories it costs a constant number of statements and never touches the embedding
table: one ``UPDATE … FROM (SELECT … ORDER BY id FOR NO KEY UPDATE)`` for counters, φ and
tier (rows locked in id order, so concurrent accesses cannot deadlock; ``NO KEY``, so
the foreign-key checks of a co-occurrence drain, which lock the same memories ``KEY
SHARE``, neither wait for it nor deadlock with it), one bulk insert
of ``MemoryAccess`` rows and, when some memory crossed a threshold, one bulk insert of
``TierPromotion`` rows.

The promotion rule and its audit rows belong to ``memories.services.tiers``; φ moves by the
caller's ``phi_increment`` (negative for a "not useful" feedback) and stays in the range
of ``memories.ranking`` (``clamp_phi_sql``).
"""

from dataclasses import dataclass
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from anima_site import metrics
from memories.models import Memory, MemoryAccess
from memories.ranking import clamp_phi_sql
from memories.services.tiers import (
    REASON_ACCESS,
    Promotion,
    TierMove,
    promoted_tier_sql,
    promotion_thresholds,
    tier_changes_audit,
)


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
    SELECT id, {promoted_tier_sql(tier="old_tier", count="old_count")} AS new_tier
    FROM target
)
UPDATE memories_memory m SET
    access_count = t.old_count + 1,
    last_accessed = %(now)s,
    resonance_phi = {clamp_phi_sql("t.old_phi + %(phi_increment)s")},
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
        "now": now,
        "phi_increment": phi_increment,
        **promotion_thresholds(),
    }
    with transaction.atomic():
        rows = list(Memory.objects.raw(sql, params))
        MemoryAccess.objects.bulk_create(
            [MemoryAccess(memory_id=row.id, conversation_id=conversation_id, accessed_at=now) for row in rows]
        )
        moves = [
            TierMove(row.id, row.old_tier, row.tier, row.access_count, row.old_last_accessed)
            for row in rows
            if row.tier != row.old_tier
        ]
        audit = tier_changes_audit(moves, reason=REASON_ACCESS, now=now)
    metrics.record_promotions(audit, reason=REASON_ACCESS)
    return AccessResult(
        memories={row.id: row for row in rows},
        promotions=[Promotion(memory_id=p.memory_id, from_tier=p.from_tier, to_tier=p.to_tier) for p in audit],
    )
