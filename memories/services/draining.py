"""Draining background work: batches of ``BackgroundWork`` rows, claimed, applied, deleted.

One batch is one transaction: ``SELECT … ORDER BY id LIMIT n FOR UPDATE SKIP LOCKED``
claims rows of one kind (a concurrent drain of the same kind skips them and takes the
next ones), the kind's handler applies them all at once, and the rows are deleted before
the commit. A worker killed mid-batch therefore loses nothing and applies nothing twice:
its transaction rolls back and the rows are claimed again.

Per kind:

- ``cooccurrence``: every pair of every claimed row counted by ONE statement (pairs
  aggregated in SQL, then ``INSERT … ON CONFLICT DO UPDATE SET count = count + n`` in
  pair order, so concurrent batches cannot deadlock; strength recomputed; the 20 most
  recent distinct conversation ids kept). A batch holds at most ``MAX_PAIRS`` pairs.
- ``catalyst``: detection for the union of the claimed ids (a constant number of
  statements, ``memories.services.catalysts``). A catalyst row waits until every
  co-occurrence row recorded before it is applied, so the connectivity signal already
  counts the pairs of the query that left it.
- ``access``: a query's hits counted (``memories_apply_accesses``): per memory, the
  accesses of all claimed rows in one ``UPDATE`` (locked in id order), promotions with
  their audit rows. A batch holds at most 200 rows (≤ 20,000 memories).
- ``consolidation``: one row (one memory) per batch, so each memory is claimed,
  consolidated and deleted in its own short transaction that locks its pair in id order
  like every other writer (``memories.services.consolidation``; the decision is per
  memory and not set-based). A memory whose consolidation raises a bug is logged,
  counted as ``failed`` and dropped, not retried forever; a transient database error
  (a deadlock victim, a lost connection) rolls the batch back and the drain asks for a
  successor.

A drain works for at most ``budget_seconds`` (5 s, or a third of the task timeout), then
requests a successor and returns; every batch is bounded (500 rows and 50,000 pairs, or
one memory), so a drain stays far from django-q2's timeout and a stopping cluster waits
for at most one short batch.
"""

import logging
import time
from dataclasses import dataclass
from uuid import UUID

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction

from anima_site import metrics
from memories.background import drains_request
from memories.models import WorkKind
from memories.services.access import memories_apply_accesses
from memories.services.associations import cooccurrences_apply
from memories.services.catalysts import catalysts_detect
from memories.services.consolidation import memory_consolidate

logger = logging.getLogger(__name__)

BATCH_ROWS = {WorkKind.COOCCURRENCE: 500, WorkKind.CATALYST: 500, WorkKind.CONSOLIDATION: 1, WorkKind.ACCESS: 200}
#: Pairs one co-occurrence batch may write (a query of 100 hits has 4,950).
MAX_PAIRS = 50_000
_NO_LIMIT = 2**63 - 1
#: Database errors that say nothing about the work itself: try the batch again.
TRANSIENT = (OperationalError, InterfaceError)


@dataclass(frozen=True)
class Claimed:
    id: int
    namespace: str
    memory_ids: list[UUID]
    conversation_id: str | None


def _claim(kind: str, limit: int) -> list[Claimed]:
    waits_for = ""
    if kind == WorkKind.CATALYST:
        waits_for = (
            "AND id < (SELECT coalesce(min(id), %(no_limit)s) FROM memories_backgroundwork WHERE kind = 'cooccurrence')"
        )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, namespace, memory_ids, conversation_id FROM memories_backgroundwork "
            f"WHERE kind = %(kind)s {waits_for} ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED",
            {"kind": kind, "limit": limit, "no_limit": _NO_LIMIT},
        )
        return [Claimed(*row) for row in cursor.fetchall()]




def _pair_count(row: Claimed) -> int:
    distinct = len(set(row.memory_ids))
    return distinct * (distinct - 1) // 2


def _apply_cooccurrences(rows: list[Claimed]) -> list[Claimed]:
    """Count the pairs of the first rows that fit in ``MAX_PAIRS``; returns the rows applied."""
    taken, pairs = [], 0
    for row in rows:
        if taken and pairs + _pair_count(row) > MAX_PAIRS:
            break  # still locked by this transaction, claimed again by the next batch
        taken.append(row)
        pairs += _pair_count(row)
    metrics.record_cooccurrence_pairs(cooccurrences_apply(work_ids=[row.id for row in taken]))
    return taken


def _apply_catalysts(rows: list[Claimed]) -> list[Claimed]:
    ids = list(dict.fromkeys(memory_id for row in rows for memory_id in row.memory_ids))
    catalysts_detect(memory_ids=ids)
    return rows


def _apply_accesses(rows: list[Claimed]) -> list[Claimed]:
    memories_apply_accesses(work_ids=[row.id for row in rows])
    return rows


def _apply_consolidations(rows: list[Claimed]) -> list[Claimed]:
    for memory_id in dict.fromkeys(memory_id for row in rows for memory_id in row.memory_ids):
        try:
            with transaction.atomic():
                outcome = memory_consolidate(memory_id=memory_id).value
        except TRANSIENT:
            raise  # the whole batch rolls back and is claimed again
        except Exception:  # a bug in one memory's case must not block the rest forever
            logger.exception("consolidation of memory %s failed; it stays as it is", memory_id)
            outcome = "failed"
        metrics.record_consolidation(outcome)
    return rows


HANDLERS = {
    WorkKind.COOCCURRENCE: _apply_cooccurrences,
    WorkKind.CATALYST: _apply_catalysts,
    WorkKind.CONSOLIDATION: _apply_consolidations,
    WorkKind.ACCESS: _apply_accesses,
}


def work_drain_batch(*, kind: str, limit: int | None = None) -> int:
    """Claim, apply and delete one batch of ``kind`` in one transaction; returns the rows applied."""
    with transaction.atomic():
        rows = _claim(kind, limit or BATCH_ROWS[kind])
        if not rows:
            return 0
        applied = HANDLERS[kind](rows)
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM memories_backgroundwork WHERE id = ANY(%s)", [[row.id for row in applied]])
            cursor.execute(
                "INSERT INTO memories_backgrounddrain AS d (kind, progressed_at, processed) VALUES (%s, now(), %s) "
                "ON CONFLICT (kind) DO UPDATE SET progressed_at = now(), processed = d.processed + EXCLUDED.processed",
                [kind, len(applied)],
            )
    return len(applied)


#: A drain's longest run: short, so a stopping cluster is not held up for long.
MAX_BUDGET_SECONDS = 5.0


def drain_budget_seconds() -> float:
    return min(MAX_BUDGET_SECONDS, settings.ANIMA_TASK_TIMEOUT / 3)


def work_drain(*, kind: str, budget_seconds: float | None = None) -> int:
    """Drain ``kind`` until nothing is left or the budget is spent; returns the rows applied.

    Clears the kind's "queued" mark first, so work recorded from now on asks for a new
    drain. A co-occurrence drain then asks for a catalyst drain (catalyst rows wait for it).
    """
    kind = WorkKind(kind)
    budget = drain_budget_seconds() if budget_seconds is None else budget_seconds
    with connection.cursor() as cursor:
        cursor.execute("UPDATE memories_backgrounddrain SET queued_at = NULL WHERE kind = %s", [kind])
    started, applied = time.monotonic(), 0
    while True:
        try:
            done = work_drain_batch(kind=kind)
        except TRANSIENT:
            logger.warning("a %s batch was rolled back; a successor drain will claim it again", kind, exc_info=True)
            drains_request([kind])
            break
        applied += done
        if not done:
            break
        if time.monotonic() - started > budget:
            drains_request([kind])  # the rest goes to a successor
            break
    if kind == WorkKind.COOCCURRENCE and applied:
        drains_request([WorkKind.CATALYST])
    return applied
