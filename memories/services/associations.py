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
"""

import math

from django.db import connection

MAX_CONTEXTS = 20

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
SELECT p.namespace, p.a, p.b, p.n, LEAST(1.0, log(1 + p.n) / 2), now(), now(),
       ARRAY(
           SELECT ctx FROM unnest(p.contexts) WITH ORDINALITY AS u(ctx, position)
           WHERE ctx IS NOT NULL GROUP BY ctx ORDER BY min(position) LIMIT {MAX_CONTEXTS}
       )::varchar[]
FROM pairs p
JOIN memories_memory ma ON ma.id = p.a AND ma.namespace = p.namespace AND ma.deleted_at IS NULL
JOIN memories_memory mb ON mb.id = p.b AND mb.namespace = p.namespace AND mb.deleted_at IS NULL
ORDER BY p.a, p.b
ON CONFLICT (memory_a_id, memory_b_id) DO UPDATE SET
    co_occurrence_count = a.co_occurrence_count + EXCLUDED.co_occurrence_count,
    strength = LEAST(1.0, log(1 + a.co_occurrence_count + EXCLUDED.co_occurrence_count) / 2),
    last_co_occurred_at = EXCLUDED.last_co_occurred_at,
    conversation_contexts = ARRAY(
        SELECT ctx FROM unnest(EXCLUDED.conversation_contexts || a.conversation_contexts)
            WITH ORDINALITY AS u(ctx, position)
        GROUP BY ctx ORDER BY min(position) LIMIT {MAX_CONTEXTS}
    )
"""


def association_strength(count: int) -> float:
    return min(1.0, math.log10(1 + count) / 2)


def cooccurrences_apply(*, work_ids: list[int]) -> int:
    """Count the co-occurrences of the ``cooccurrence`` work rows ``work_ids``; returns the pairs written.

    The caller claimed the rows and deletes them in the same transaction.
    """
    with connection.cursor() as cursor:
        cursor.execute(_APPLY_SQL, {"ids": list(work_ids)})
        return cursor.rowcount
