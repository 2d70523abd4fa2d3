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

A query's hits with the default φ increment (0) take another way
(``memories_record_query_access``): the request writes only new rows (the access rows and
an ``access`` work row) and the background drain applies the counters, the last access and
the promotions in batches (``memories_apply_accesses``); the response shows the values
after the access all the same.

The promotion rule and its audit rows belong to ``memories.services.tiers``; φ moves by the
caller's ``phi_increment`` (negative for a "not useful" feedback) and stays in the range
of ``memories.ranking`` (``clamp_phi_sql``).
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial
from uuid import UUID

from django.db import connection, transaction
from django.utils import timezone

from anima_site import metrics
from anima_site.db import instances_from_rows
from anima_site.json_values import json_loads
from memories import background
from memories.models import BackgroundWork, Memory, MemoryAccess, Tier, TierPromotion
from memories.ranking import clamp_phi_sql
from memories.services.tiers import (
    REASON_ACCESS,
    Promotion,
    TierMove,
    promoted_tier_sql,
    promoted_twice_sql,
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


# --- a query's hits: counted by the background drain ---------------------------------------------

#: A memory's accesses recorded and not yet counted: its access rows newer than its last
#: access (the drain sets ``last_accessed`` to the time of the latest access it counts,
#: which is its access rows' time). A range of the ``access_memory_recent`` index per hit,
#: as long as the accesses waiting. (Counting the waiting ``access`` work rows instead
#: walked the kind's index with the dead entries of every row drained since the last
#: vacuum: +1 ms per 3,000.)
_PENDING_SQL = f"""(
    SELECT count(*) FROM {MemoryAccess._meta.db_table} a
    WHERE a.memory_id = m.id AND a.accessed_at > m.last_accessed
)"""

_SHOWN = {
    "access_count": "m.access_count + m.pending + 1",
    "last_accessed": "GREATEST(m.last_accessed, m.accessed_now)",
    "tier": "m.tier_after",
    "tier_last_updated": "CASE WHEN m.tier_after = m.tier THEN m.tier_last_updated ELSE m.accessed_now END",
}

_QUERY_ACCESS_SQL = f"""
WITH seen AS MATERIALIZED (  -- inlined, the rule below would count the waiting accesses 8 times
    SELECT {{columns}}, {_PENDING_SQL} AS pending, statement_timestamp() AS accessed_now
    FROM {Memory._meta.db_table} m
    WHERE m.id = ANY(%(ids)s) AND m.namespace = %(namespace)s AND m.deleted_at IS NULL
), before AS (
    SELECT seen.*, {promoted_twice_sql(tier="seen.tier", count="seen.access_count", by="seen.pending")} AS tier_before
    FROM seen
), accessed AS (
    SELECT before.*, COALESCE({promoted_tier_sql(tier="tier_before", count="access_count + pending")}, tier_before)
        AS tier_after
    FROM before
), access_rows AS (
    INSERT INTO {MemoryAccess._meta.db_table} (memory_id, conversation_id, accessed_at)
    SELECT id, %(conversation_id)s, accessed_now FROM accessed
){{work}}
SELECT m.id, m.tier_after, m.tier_before, {{shown}}::text{{claimed}} FROM accessed m
"""


@dataclass(frozen=True)
class QueryAccessResult:
    #: The accessed memories as ``MemoryOutput`` shows them after the access, by id
    #: (``embeddingTruncated`` is the caller's to set: the query's candidates carry it).
    memories: dict[UUID, dict]
    promotions: list[Promotion]


@cache
def _query_access_sql(claim_drains: bool, output_sql: Callable[[dict], str]) -> str:
    shown = output_sql({**_SHOWN, "embedding_truncated": "false"})
    claimed = f", (SELECT array_agg(DISTINCT kind) FROM {'drains' if claim_drains else 'work'})"
    work = background.query_work_sql(accessed="accessed", claim_drains=claim_drains, access=True)
    return (
        _QUERY_ACCESS_SQL.replace("{columns}", _returned_columns())
        .replace("{work}", work)
        .replace("{shown}", shown)
        .replace("{claimed}", claimed)
    )


def memories_record_query_access(
    *,
    namespace: str,
    memory_ids: list[UUID],
    output_sql: Callable[[dict], str],
    conversation_id: str | None = None,
) -> QueryAccessResult:
    """A query's access of its hits, in one statement that writes only new rows: the
    ``MemoryAccess`` rows and the query's background work (``query_work_sql``), whose
    ``access`` row the drain turns into counters, last access and promotions
    (``memories_apply_accesses``). Updating 20 memories in the request rewrote an entry
    in each of the table's 16 indexes (the counters are indexed: no HOT update): 3.0 ms of
    a query at 100k; this statement takes 1.8.

    The memories come as the API shows them after this access, written by PostgreSQL
    (``output_sql``: ``memories.output_sql.memory_output_sql``, given by the caller, as
    the API layer's shape is not this module's to import): the count adds the accesses
    still waiting for the drain and this one, the tier is the promotion rule's after
    them, the last access is the statement's time (which the drain writes); ``promotions`` are the tier changes this
    access makes (as of the statement's snapshot: two queries racing to a threshold may
    both report it; the drain applies it once).
    """
    if not memory_ids:
        return QueryAccessResult(memories={}, promotions=[])
    claim_drains = not connection.in_atomic_block
    params = {"ids": list(memory_ids), "namespace": namespace, "conversation_id": conversation_id}
    with connection.cursor() as cursor:
        cursor.execute(_query_access_sql(claim_drains, output_sql), {**params, **promotion_thresholds()})
        rows = cursor.fetchall()
    kinds = sorted(rows[0][4] or []) if rows else []
    if claim_drains:
        background.drains_enqueue(kinds)
    else:
        background.drains_request_on_commit(kinds)
    return QueryAccessResult(
        memories={memory_id: json_loads(shown) for memory_id, _, _, shown, _ in rows},
        promotions=[
            Promotion(memory_id=memory_id, from_tier=before, to_tier=after)
            for memory_id, after, before, _, _ in rows
            if after != before
        ],
    )


_APPLY_SQL = f"""
WITH counted AS (
    SELECT counted_id AS id, count(*) AS n, max(w.created_at) AS at
    FROM {BackgroundWork._meta.db_table} w, unnest(w.memory_ids) AS counted_id
    WHERE w.id = ANY(%(work_ids)s)
    GROUP BY counted_id
), target AS (
    SELECT m.id, m.tier, m.access_count AS old_count, m.last_accessed AS old_last_accessed, c.n, c.at
    FROM {Memory._meta.db_table} m JOIN counted c ON c.id = m.id
    WHERE m.deleted_at IS NULL
    ORDER BY m.id
    FOR NO KEY UPDATE OF m
), once AS (
    SELECT target.*,
           COALESCE({promoted_tier_sql(tier="tier", count="old_count", by="n")}, tier) AS tier_once
    FROM target
), moved AS (
    SELECT once.*,
           COALESCE({promoted_tier_sql(tier="tier_once", count="old_count", by="n")}, tier_once) AS tier_after
    FROM once
), updated AS (
    UPDATE {Memory._meta.db_table} m SET
        access_count = t.old_count + t.n,
        last_accessed = GREATEST(t.old_last_accessed, t.at),
        tier = t.tier_after,
        tier_last_updated = CASE WHEN t.tier_after = t.tier THEN m.tier_last_updated ELSE t.at END
    FROM moved t
    WHERE m.id = t.id
)
INSERT INTO {TierPromotion._meta.db_table}
    (memory_id, from_tier, to_tier, reason, access_count_at_promotion, days_since_last_access, created_at)
SELECT id, from_tier, to_tier, %(reason)s,
       CASE WHEN to_tier = '{Tier.THREAD.value}' THEN %(to_thread)s ELSE %(to_stable)s END,
       EXTRACT(EPOCH FROM (at - old_last_accessed)) / 86400.0, at
FROM (
    SELECT id, tier AS from_tier, tier_once AS to_tier, at, old_last_accessed FROM moved WHERE tier_once <> tier
    UNION ALL
    SELECT id, tier_once, tier_after, at, old_last_accessed FROM moved WHERE tier_after <> tier_once
) AS steps
RETURNING from_tier, to_tier
"""


def memories_apply_accesses(*, work_ids: list[int]) -> int:
    """Count the accesses of the ``access`` work rows ``work_ids`` (the drain's batch): per
    live memory, ``access_count`` += its accesses, ``last_accessed`` = the latest, and the
    promotion rule as if they came one at a time (a memory crossing both thresholds moves
    twice, with an audit row per step at its threshold). One statement; the memories are
    locked in id order like every other access. Returns the promotions made."""
    with connection.cursor() as cursor:
        cursor.execute(_APPLY_SQL, {"work_ids": work_ids, "reason": REASON_ACCESS, **promotion_thresholds()})
        moves = cursor.fetchall()
    promotions = [Promotion(memory_id=None, from_tier=from_tier, to_tier=to_tier) for from_tier, to_tier in moves]
    transaction.on_commit(partial(metrics.record_promotions, promotions, reason=REASON_ACCESS))
    return len(moves)
