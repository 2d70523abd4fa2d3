"""The resonance sync: moves a memory into (or out of) the resonant HNSW graph once its φ
has crossed RESONANT_PHI.

``Memory.resonance_indexed`` and ``MemoryEmbedding.resonant`` are one flag on two tables.
A query changes φ but never writes the embedding table (SPEC §3), so a memory whose φ
crossed 1 *lags*: the query reads it exactly through the ``memory_resonance_lag`` index
until this sync, run by a task after such a query, after decay and import, and every 5
minutes by a schedule, moves both sides in one transaction. Rows another transaction
holds are skipped (the next run takes them), so the sync never waits on a request.
"""

from django.db import connection, transaction

from memories.models import RESONANT_PHI, Memory, MemoryEmbedding

BATCH = 5000

_SYNC = f"""
WITH lagging AS (
    SELECT id, resonance_phi >= %(phi)s AS resonant FROM {Memory._meta.db_table}
    WHERE (resonance_phi >= %(phi)s AND NOT resonance_indexed) OR (resonance_phi < %(phi)s AND resonance_indexed)
    LIMIT %(batch)s FOR UPDATE SKIP LOCKED
), flagged AS (
    UPDATE {MemoryEmbedding._meta.db_table} e SET resonant = l.resonant
    FROM lagging l WHERE e.memory_id = l.id AND e.resonant IS DISTINCT FROM l.resonant
)
UPDATE {Memory._meta.db_table} m SET resonance_indexed = l.resonant FROM lagging l WHERE m.id = l.id
"""


def resonance_sync(*, batch: int = BATCH) -> int:
    """Move every lagging memory's flag on both tables; returns how many were moved.

    Each batch commits by itself. ``resonance_phi`` itself is not written, so a concurrent
    access only waits for the rows of one batch, and skipped rows wait for the next run.
    """
    moved = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_SYNC, {"phi": RESONANT_PHI, "batch": batch})
            count = cursor.rowcount
        moved += count
        if count < batch:
            return moved
