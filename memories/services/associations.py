"""Co-occurrence: memories returned together by one query become associated.

A query with a conversation and ≥ 2 hits leaves a ``cooccurrence`` work row
(``memories.background``); a drain applies many such rows at once with ONE statement:
the pairs of every row (each unordered pair of distinct ids once per row) are
aggregated in SQL, then written by ``INSERT … ON CONFLICT DO UPDATE SET count = count +
EXCLUDED.count`` (``bulk_create(update_conflicts=…)`` can only overwrite a column, not
add to it). Pairs go in sorted order, so two concurrent batches lock shared rows in the
same order and cannot deadlock. ``strength = min(1, log10(1 + count) / 2)`` is
recomputed on every update; ``conversation_contexts`` keeps the 20 most recent distinct
conversation ids. Pairs with a memory that is gone (deleted, merged, purged) are skipped.

A merge moves the merged memory's associations to the survivor
(:func:`associations_move`): counts summed, strength recomputed, contexts merged newest
first under the same cap. Strength and the cap are defined here, once, in Python and SQL.
"""

import math
from uuid import UUID

from django.db import connection

from memories.models import MAX_CONVERSATION_CONTEXTS


def association_strength(count: int) -> float:
    return min(1.0, math.log10(1 + count) / 2)


def association_strength_sql(count: str) -> str:
    """``association_strength`` over an SQL expression (PostgreSQL's ``log`` is base 10)."""
    return f"LEAST(1.0, log(1 + {count}) / 2)"


def _recent_contexts_sql(contexts: str) -> str:
    """The array ``contexts`` (most recent first) with each conversation once, at most MAX_CONVERSATION_CONTEXTS."""
    return f"""ARRAY(
        SELECT ctx FROM unnest({contexts}) WITH ORDINALITY AS u(ctx, position)
        WHERE ctx IS NOT NULL GROUP BY ctx ORDER BY min(position) LIMIT {MAX_CONVERSATION_CONTEXTS}
    )"""


_SUMMED_STRENGTH = association_strength_sql("a.co_occurrence_count + EXCLUDED.co_occurrence_count")

_APPLY_SQL = f"""
WITH hits AS (
    SELECT DISTINCT w.id, w.namespace, w.conversation_id, h.memory_id
    FROM memories_backgroundwork w CROSS JOIN LATERAL unnest(w.memory_ids) AS h(memory_id)
    WHERE w.id = ANY(%(ids)s)
), pairs AS (
    SELECT x.namespace, x.memory_id AS a, y.memory_id AS b, count(*) AS n,
           array_agg(x.conversation_id ORDER BY x.id DESC) AS contexts
    FROM hits x JOIN hits y ON y.id = x.id AND x.memory_id < y.memory_id
    GROUP BY x.namespace, x.memory_id, y.memory_id
)
INSERT INTO memories_memoryassociation AS a (
    namespace, memory_a_id, memory_b_id, co_occurrence_count, strength,
    first_co_occurred_at, last_co_occurred_at, conversation_contexts
)
SELECT p.namespace, p.a, p.b, p.n, {association_strength_sql("p.n")}, now(), now(),
       {_recent_contexts_sql("p.contexts")}::varchar[]
FROM pairs p
JOIN memories_memory ma ON ma.id = p.a AND ma.namespace = p.namespace AND ma.deleted_at IS NULL
JOIN memories_memory mb ON mb.id = p.b AND mb.namespace = p.namespace AND mb.deleted_at IS NULL
ORDER BY p.a, p.b
ON CONFLICT (memory_a_id, memory_b_id) DO UPDATE SET
    co_occurrence_count = a.co_occurrence_count + EXCLUDED.co_occurrence_count,
    strength = {_SUMMED_STRENGTH},
    last_co_occurred_at = EXCLUDED.last_co_occurred_at,
    conversation_contexts = {_recent_contexts_sql("EXCLUDED.conversation_contexts || a.conversation_contexts")}
"""

#: The merged memory's pairs, re-pointed at the survivor (a pair of the two is dropped).
_MOVE_SQL = f"""
INSERT INTO memories_memoryassociation AS a (
    namespace, memory_a_id, memory_b_id, co_occurrence_count, strength,
    first_co_occurred_at, last_co_occurred_at, conversation_contexts
)
SELECT namespace, LEAST(%(survivor)s::uuid, other), GREATEST(%(survivor)s::uuid, other), co_occurrence_count,
       {association_strength_sql("co_occurrence_count")}, first_co_occurred_at, last_co_occurred_at,
       conversation_contexts
FROM (
    SELECT namespace, CASE WHEN memory_a_id = %(merged)s THEN memory_b_id ELSE memory_a_id END AS other,
           co_occurrence_count, first_co_occurred_at, last_co_occurred_at, conversation_contexts
    FROM memories_memoryassociation WHERE memory_a_id = %(merged)s OR memory_b_id = %(merged)s
) moved
WHERE other <> %(survivor)s
ORDER BY 2, 3
ON CONFLICT (memory_a_id, memory_b_id) DO UPDATE SET
    co_occurrence_count = a.co_occurrence_count + EXCLUDED.co_occurrence_count,
    strength = {_SUMMED_STRENGTH},
    first_co_occurred_at = LEAST(a.first_co_occurred_at, EXCLUDED.first_co_occurred_at),
    last_co_occurred_at = GREATEST(a.last_co_occurred_at, EXCLUDED.last_co_occurred_at),
    conversation_contexts = {_recent_contexts_sql(
        "CASE WHEN EXCLUDED.last_co_occurred_at > a.last_co_occurred_at"
        " THEN EXCLUDED.conversation_contexts || a.conversation_contexts"
        " ELSE a.conversation_contexts || EXCLUDED.conversation_contexts END"
    )}
"""


def cooccurrences_apply(*, work_ids: list[int]) -> int:
    """Count the co-occurrences of the ``cooccurrence`` work rows ``work_ids``; returns the pairs written.

    The caller claimed the rows and deletes them in the same transaction.
    """
    with connection.cursor() as cursor:
        cursor.execute(_APPLY_SQL, {"ids": list(work_ids)})
        return cursor.rowcount


def associations_move(*, merged_id: UUID, survivor_id: UUID) -> None:
    """Give the survivor of a merge every association of the merged memory (summed with its
    own), then delete the merged memory's. Call it in the merge's transaction."""
    with connection.cursor() as cursor:
        cursor.execute(_MOVE_SQL, {"survivor": survivor_id, "merged": merged_id})
        cursor.execute(
            "DELETE FROM memories_memoryassociation WHERE memory_a_id = %s OR memory_b_id = %s", [merged_id, merged_id]
        )
