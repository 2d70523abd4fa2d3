"""What every access does to a memory: counters, φ, the promotion rule, the access row.

An access is a query hit, a duplicate add, a merge or an explicit feedback. For any number of
memories it is one statement, and never touches the embedding table: an ``UPDATE … FROM
(SELECT … ORDER BY id FOR NO KEY UPDATE)`` for counters, φ and tier (rows locked in id
order, so concurrent accesses cannot deadlock; ``NO KEY``, so the foreign-key checks of a
co-occurrence drain, which lock the same memories ``KEY SHARE``, neither wait for it nor
deadlock with it), with, as CTEs of the same statement, the ``MemoryAccess`` rows, the
``TierPromotion`` rows of the memories that crossed a threshold and, for a query, its
background work and drain request (``memories.background.query_work_sql``). One round trip
is one commit when no transaction is open: a query pays for its bookkeeping once.

The promotion rule and its audit rows belong to ``memories.services.tiers``; φ moves by the
caller's ``phi_increment`` (negative for a "not useful" feedback) and stays in the range
of ``memories.ranking`` (``clamp_phi_sql``).
"""

from dataclasses import dataclass
from uuid import UUID

from django.db import connection
from django.utils import timezone

from anima_site import metrics
from anima_site.db import instances_from_rows
from memories import background
from memories.models import Memory, MemoryAccess, TierPromotion
from memories.ranking import clamp_phi_sql
from memories.services.tiers import (
    REASON_ACCESS,
    Promotion,
    TierMove,
    promoted_tier_sql,
    promotion_thresholds,
    tier_promotion_rows,
)


@dataclass(frozen=True)
class AccessResult:
    #: The accessed memories as they are after the update, by id.
    memories: dict[UUID, Memory]
    promotions: list[Promotion]


#: The columns the access returns: every field of a memory but its full-text vector.
_RETURNED = [field for field in Memory._meta.concrete_fields if field.name != "search_vector"]


def _returned_columns() -> str:
    return ", ".join(f"m.{field.column}" for field in _RETURNED)


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
), accessed AS (
    UPDATE memories_memory m SET
        access_count = t.old_count + 1,
        last_accessed = %(now)s,
        resonance_phi = {clamp_phi_sql("t.old_phi + %(phi_increment)s")},
        tier = COALESCE(c.new_tier, t.old_tier),
        tier_last_updated = CASE WHEN c.new_tier IS NULL THEN m.tier_last_updated ELSE %(now)s END
    FROM target t JOIN changed c ON c.id = t.id
    WHERE m.id = t.id
    RETURNING {{columns}}, t.old_tier, t.old_last_accessed
), access_rows AS (
    INSERT INTO {MemoryAccess._meta.db_table} (memory_id, conversation_id, accessed_at)
    SELECT id, %(conversation_id)s, %(now)s FROM accessed
), promotions AS (
    INSERT INTO {TierPromotion._meta.db_table}
        (memory_id, from_tier, to_tier, reason, access_count_at_promotion, days_since_last_access, created_at)
    SELECT id, old_tier, tier, %(reason)s, access_count,
           EXTRACT(EPOCH FROM (%(now)s - old_last_accessed)) / 86400.0, %(now)s
    FROM accessed WHERE tier <> old_tier
){{work}}
SELECT accessed.*{{claimed}} FROM accessed
"""


def memories_record_access(
    *,
    namespace: str,
    memory_ids: list[UUID],
    conversation_id: str | None = None,
    phi_increment: float = 0.0,
    query_work: bool = False,
) -> AccessResult:
    """Count one access of each live memory in ``memory_ids``; apply the promotion rule.

    With ``query_work`` the same statement records what a query's hits leave for the
    background (``memories.background.query_work_sql``) and, outside a transaction,
    claims their drain requests.
    """
    if not memory_ids:
        return AccessResult(memories={}, promotions=[])
    now = timezone.now()
    claim_drains = query_work and not connection.in_atomic_block
    work = background.query_work_sql(accessed="accessed", claim_drains=claim_drains) if query_work else ""
    # The kinds the statement recorded (or, claiming, those whose drain it claimed): the
    # work rule lives in its SQL alone.
    claimed = f", (SELECT array_agg(DISTINCT kind) FROM {'drains' if claim_drains else 'work'})" if query_work else ""
    sql = _ACCESS_SQL.replace("{columns}", _returned_columns()).replace("{work}", work).replace("{claimed}", claimed)
    params = {
        "ids": list(memory_ids),
        "namespace": namespace,
        "now": now,
        "phi_increment": phi_increment,
        "conversation_id": conversation_id,
        "reason": REASON_ACCESS,
        **promotion_thresholds(),
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = instances_from_rows(Memory, _RETURNED, cursor.fetchall())
    for row in rows:
        row.old_tier, row.old_last_accessed = row.extra[:2]
    if query_work:
        kinds = sorted(rows[0].extra[2] or []) if rows else []
        if claim_drains:
            background.drains_enqueue(kinds)
        else:
            background.drains_request_on_commit(kinds)
    moves = [
        TierMove(row.id, row.old_tier, row.tier, row.access_count, row.old_last_accessed)
        for row in rows
        if row.tier != row.old_tier
    ]
    audit = tier_promotion_rows(moves, reason=REASON_ACCESS, now=now)  # written by the statement
    metrics.record_promotions(audit, reason=REASON_ACCESS)
    return AccessResult(
        memories={row.id: row for row in rows},
        promotions=[Promotion(memory_id=p.memory_id, from_tier=p.from_tier, to_tier=p.to_tier) for p in audit],
    )
