"""Background work as rows: what requests record, and how they ask for a drain.

The one module request-side code uses for background work (nothing imports
``memories.tasks``; drains are enqueued by name). A request records its work as
``BackgroundWork`` rows in its own transaction, so the work exists exactly when the
request's change does. After the commit it asks for a drain of each kind it recorded;
the request is coalesced: a drain task is enqueued only when none of that kind is
queued, so the broker holds at most one drain message per kind however many requests
come (``memories.services.draining`` processes the rows).

A queued drain that never starts (a broker that lost it, a cluster killed before it
ran) does not strand the work: after ``REQUEST_STALE_SECONDS`` the next request — or the
per-minute schedule — enqueues another one. An extra drain is harmless: drains of one
kind claim disjoint rows.
"""

import logging
from collections.abc import Iterable
from functools import partial

from django.conf import settings
from django.db import DatabaseError, connection, transaction

from memories.models import BackgroundWork, Memory, WorkKind

logger = logging.getLogger(__name__)

DRAIN_TASK = "memories.tasks.drain"
#: A drain queued longer ago than this without starting is presumed lost.
REQUEST_STALE_SECONDS = 30


def work_after_add(*, namespace: str, memories: Iterable) -> None:
    """New (or re-worded) memories: consolidation (unless switched off) and catalyst detection."""
    memories = list(memories)
    rows = []
    if settings.ANIMA_SEMANTIC_CONSOLIDATION:
        # One row per memory: a drain consolidates (and commits) one memory at a time.
        rows += [BackgroundWork(kind=WorkKind.CONSOLIDATION, namespace=namespace, memory_ids=[m.pk]) for m in memories]
    plain = [m.pk for m in memories if not m.is_catalyst]
    if plain:
        rows.append(BackgroundWork(kind=WorkKind.CATALYST, namespace=namespace, memory_ids=plain))
    _record(rows)


def query_work_sql(*, accessed: str, claim_drains: bool, access: bool = False) -> str:
    """A query's work as CTEs of the statement that counts its access (``memories.services.access``),
    so that a query writes in one round trip: a ``catalyst`` row for its hits and, with a
    conversation and ≥ 2 hits, a ``cooccurrence`` row, from the CTE ``accessed`` (the
    accessed memories' ``id``). Parameters: ``namespace``, ``conversation_id``. With
    ``access``, also an ``access`` row: the hits' counters, for the drain to apply
    (``memories.services.access.memories_record_query_access``). Every row is dated by
    the statement's time, the moment of the access (not the transaction's start).

    With ``claim_drains`` (the statement is its own transaction) the CTE ``drains`` also
    claims the drain request of each kind recorded (``_REQUEST_SQL``'s rule); the caller
    enqueues the kinds it claimed once the statement is done (``drains_enqueue``). Inside
    a larger transaction the claim must wait for its commit: the caller asks
    ``drains_request_on_commit`` instead.
    """
    access_row = ""
    if access:
        access_row = f"""
    UNION ALL
    SELECT '{WorkKind.ACCESS.value}', %(namespace)s, array_agg(id), NULL, statement_timestamp()
    FROM {accessed} HAVING count(*) > 0"""
    work = f"""
, work AS (
    INSERT INTO {BackgroundWork._meta.db_table} (kind, namespace, memory_ids, conversation_id, created_at)
    SELECT '{WorkKind.COOCCURRENCE.value}', %(namespace)s, array_agg(id), %(conversation_id)s, statement_timestamp()
    FROM {accessed} HAVING count(*) >= 2 AND %(conversation_id)s::varchar IS NOT NULL
    UNION ALL
    SELECT '{WorkKind.CATALYST.value}', %(namespace)s, array_agg(id), NULL, statement_timestamp()
    FROM {accessed} HAVING count(*) > 0{access_row}
    RETURNING kind
)"""
    if not claim_drains:
        return work
    return work + f"""
, drains AS (
    {_REQUEST_SQL.replace("unnest(%s::varchar[]) AS k(kind)", "(SELECT DISTINCT kind FROM work) AS k").strip()}
)"""


def legacy_work_record(*, kind: str, memory_ids: list, conversation_id: str | None = None) -> int:
    """Work a pre-0010 task message described, as rows (their memories' namespaces looked up)."""
    by_namespace: dict[str, list] = {}
    for memory_id, namespace in Memory.objects.filter(pk__in=memory_ids).values_list("pk", "namespace"):
        by_namespace.setdefault(namespace, []).append(memory_id)
    rows = [
        BackgroundWork(kind=kind, namespace=namespace, memory_ids=ids, conversation_id=conversation_id)
        for namespace, ids in by_namespace.items()
        if kind != WorkKind.COOCCURRENCE or len(ids) >= 2
    ]
    with transaction.atomic():
        _record(rows)
    return len(rows)


def _record(rows: list[BackgroundWork]) -> None:
    if not rows:
        return
    BackgroundWork.objects.bulk_create(rows)
    drains_request_on_commit(sorted({row.kind for row in rows}))


def drains_request_on_commit(kinds: list[str]) -> None:
    """``drains_request(kinds)`` once the current transaction commits (at once outside one)."""
    if kinds:
        transaction.on_commit(partial(drains_request, kinds))


# An upsert: the kind's row is created on first use.
_REQUEST_SQL = f"""
INSERT INTO memories_backgrounddrain AS d (kind, queued_at, processed)
SELECT kind, now(), 0 FROM unnest(%s::varchar[]) AS k(kind)
ON CONFLICT (kind) DO UPDATE SET queued_at = now()
WHERE d.queued_at IS NULL OR d.queued_at < now() - interval '{REQUEST_STALE_SECONDS} seconds'
RETURNING kind
"""


def drains_request(kinds: Iterable[str]) -> list[str]:
    """Enqueue a drain task for each of ``kinds`` that has none queued; returns the kinds enqueued.

    Never raises: the work is already durable, and a drain that could not be enqueued
    now is enqueued by a later request or the schedule.
    """
    try:
        with connection.cursor() as cursor:
            cursor.execute(_REQUEST_SQL, [list(kinds)])
            claimed = sorted(row[0] for row in cursor.fetchall())
    except DatabaseError:
        logger.warning("could not request a background drain; a later request or the schedule will", exc_info=True)
        return []
    return drains_enqueue(claimed)


def drains_enqueue(claimed: list[str]) -> list[str]:
    """Enqueue a drain task for each kind whose request was just claimed (committed); returns them."""
    from django_q.tasks import async_task

    for kind in claimed:
        try:
            async_task(DRAIN_TASK, kind, group=f"drain {kind}")
        except Exception:  # a broker that is down (Redis): the request has already succeeded
            logger.warning("could not enqueue the %s drain; it will be requested again", kind, exc_info=True)
            _forget_request(kind)
    return claimed


def _forget_request(kind: str) -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("UPDATE memories_backgrounddrain SET queued_at = NULL WHERE kind = %s", [kind])
    except DatabaseError:
        pass  # stale after REQUEST_STALE_SECONDS all the same


def pending_kinds() -> list[str]:
    """The kinds that have work waiting (one index probe per kind)."""
    return [kind for kind in WorkKind.values if BackgroundWork.objects.filter(kind=kind).exists()]


def oldest_pending_seconds() -> float | None:
    """Age of the oldest work waiting (None when nothing waits): one probe of the primary key."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT extract(epoch FROM now() - created_at) FROM memories_backgroundwork ORDER BY id LIMIT 1"
        )
        row = cursor.fetchone()
    return max(0.0, float(row[0])) if row else None


def pending_by_kind() -> dict[str, dict]:
    """Per kind: rows waiting and the age of the oldest (0 when none), for metrics and stats."""
    stats = {kind: {"pending": 0, "oldestSeconds": 0.0} for kind in WorkKind.values}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT kind, count(*), extract(epoch FROM now() - min(created_at)) "
            "FROM memories_backgroundwork GROUP BY kind"
        )
        for kind, count, age in cursor.fetchall():
            stats[kind] = {"pending": count, "oldestSeconds": max(0.0, float(age))}
    return stats
