"""Co-occurrence: memories returned together by one query become associated.

The pairs of one request are aggregated, then written by one raw
``INSERT … ON CONFLICT DO UPDATE SET count = count + EXCLUDED.count`` per at most 1,000
pairs (``bulk_create(update_conflicts=…)`` can only overwrite a column, not add to it).
Pairs go in sorted order, so two concurrent batches lock shared rows in the same order
and cannot deadlock. ``strength = min(1, log10(1 + count) / 2)`` is recomputed on every
update; ``conversation_contexts`` keeps the 20 most recent distinct conversation ids.

A batch carries a key recorded in ``AppliedBatch`` in the same transaction, so a task
delivered twice (a worker died after the commit) counts once.
"""

import math
from itertools import combinations
from uuid import UUID

from django.db import connection, transaction

from memories.models import AppliedBatch

MAX_PAIRS_PER_STATEMENT = 1000
MAX_CONTEXTS = 20

_UPSERT_SQL = f"""
INSERT INTO memories_memoryassociation AS a (
    namespace, memory_a_id, memory_b_id, co_occurrence_count, strength,
    first_co_occurred_at, last_co_occurred_at, conversation_contexts
)
SELECT %(namespace)s, p.a, p.b, p.n, LEAST(1.0, log(1 + p.n) / 2), now(), now(), %(contexts)s::varchar[]
FROM unnest(%(a)s::uuid[], %(b)s::uuid[], %(n)s::int[]) AS p(a, b, n)
JOIN memories_memory ma ON ma.id = p.a AND ma.namespace = %(namespace)s AND ma.deleted_at IS NULL
JOIN memories_memory mb ON mb.id = p.b AND mb.namespace = %(namespace)s AND mb.deleted_at IS NULL
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


def ordered_pairs(memory_ids: list[UUID]) -> dict[tuple[UUID, UUID], int]:
    """Each unordered pair of distinct ids once per occurrence, as (smaller, larger) → count."""
    pairs: dict[tuple[UUID, UUID], int] = {}
    for first, second in combinations(sorted(set(memory_ids)), 2):
        pairs[(first, second)] = pairs.get((first, second), 0) + 1
    return pairs


def associations_record(
    *, namespace: str, memory_ids: list[UUID], conversation_id: str | None, batch_key: UUID
) -> int:
    """Count one co-occurrence of every pair in ``memory_ids``; returns the pairs written (0 on a re-run)."""
    pairs = sorted(ordered_pairs(memory_ids).items())
    contexts = [conversation_id] if conversation_id else []
    with transaction.atomic():
        _, created = AppliedBatch.objects.get_or_create(key=batch_key)
        if not created:
            return 0
        written = 0
        with connection.cursor() as cursor:
            for start in range(0, len(pairs), MAX_PAIRS_PER_STATEMENT):
                chunk = pairs[start : start + MAX_PAIRS_PER_STATEMENT]
                cursor.execute(
                    _UPSERT_SQL,
                    {
                        "namespace": namespace,
                        "a": [a for (a, _), _ in chunk],
                        "b": [b for (_, b), _ in chunk],
                        "n": [n for _, n in chunk],
                        "contexts": contexts,
                    },
                )
                written += cursor.rowcount
    return written
