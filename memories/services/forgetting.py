"""Forgetting for real: purge a memory, or a whole namespace, and every copy of its text.

Soft delete stays the default. A purge removes the memory's row, embedding, access
rows, associations and promotions (foreign keys cascade), the memories merged into it
(their rows hold its earlier wordings) — with ``chain`` its whole chain of corrections
too — and the copies elsewhere: its id in a successor's ``supersedes`` and in correction
suggestions, its entry in a survivor's ``semanticVariants``, other memories'
``nearDuplicates`` entries, handshakes
that quote it, reflections' hub previews, the background work that names it, the
task records (queued or finished) that name it, and the namespace's cached embeddings
and term statistics (every purge replaces the namespace's cache generation: what it
cached, queries' vectors included, becomes unreachable in every process).
Each purge is logged with counts, never content, and counted in the metrics.
"""

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from uuid import UUID

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from anima_site import metrics
from memories.embeddings import namespace_cache_forget
from memories.errors import MemoryNotFoundError
from memories.locks import quotes_lock
from memories.models import BackgroundWork, Memory, MemoryAssociation, TierCount
from memories.services.supersession import CORRECTION_CANDIDATE, CORRECTION_DISMISSED
from memories.signals import counts_sent, memories_purged, namespace_purged

logger = logging.getLogger("anima.purge")


@dataclass
class PurgeCounts:
    memories: int = 0
    copies_scrubbed: int = 0
    handshakes: int = 0
    tasks: int = 0
    other_rows: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "memories": self.memories,
            "copiesScrubbed": self.copies_scrubbed,
            "handshakes": self.handshakes,
            "taskRecords": self.tasks,
            **self.other_rows,
        }


def _merged_family(memory_id: UUID) -> list[UUID]:
    """The memory and every memory merged into it, directly or through others."""
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH RECURSIVE family(id) AS (SELECT %s::uuid UNION "
            "SELECT m.id FROM memories_memory m JOIN family f ON m.merged_into_id = f.id) SELECT id FROM family",
            [memory_id],
        )
        return [row[0] for row in cursor.fetchall()]


def _supersession_chain(namespace: str, memory_id: UUID) -> list[UUID]:
    """The memory and every memory linked to it by corrections, either way, transitively."""
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH RECURSIVE chain(id, successor) AS ("
            "SELECT id, superseded_by_id FROM memories_memory WHERE id = %(id)s AND namespace = %(ns)s "
            "UNION SELECT m.id, m.superseded_by_id FROM memories_memory m JOIN chain c "
            "ON (m.superseded_by_id = c.id OR m.id = c.successor) AND m.namespace = %(ns)s"
            ") SELECT DISTINCT id FROM chain",
            {"id": memory_id, "ns": namespace},
        )
        return [row[0] for row in cursor.fetchall()]


def _without(entries, predicate) -> list:
    return [entry for entry in (entries or []) if not predicate(entry)]


def _scrub(namespace: str, ids: set[str], texts: set[str]) -> tuple[int, int]:
    """Remove the purged memories' ids and texts from other rows, other apps' through
    ``memories_purged``; (rows changed, handshakes deleted)."""
    changed = 0
    id_match = Q()
    for memory_id in ids:
        id_match |= Q(metadata__contains={"nearDuplicates": [{"id": memory_id}]})
        id_match |= Q(metadata__contains={CORRECTION_CANDIDATE: {"corrects": memory_id}})
        id_match |= Q(metadata__contains={CORRECTION_DISMISSED: [memory_id]})
    text_match = Q()
    for text in texts:
        text_match |= Q(metadata__contains={"semanticVariants": [{"content": text}]})
    for memory in Memory.objects.filter(id_match | text_match, namespace=namespace).exclude(pk__in=ids).only("metadata"):
        metadata = dict(memory.metadata)
        if "nearDuplicates" in metadata:
            metadata["nearDuplicates"] = _without(metadata["nearDuplicates"], lambda e: e.get("id") in ids)
        if "semanticVariants" in metadata:
            metadata["semanticVariants"] = _without(metadata["semanticVariants"], lambda e: e.get("content") in texts)
        if (metadata.get(CORRECTION_CANDIDATE) or {}).get("corrects") in ids:
            metadata.pop(CORRECTION_CANDIDATE)
        if CORRECTION_DISMISSED in metadata:
            metadata[CORRECTION_DISMISSED] = _without(metadata[CORRECTION_DISMISSED], lambda e: e in ids)
        Memory.objects.filter(pk=memory.pk).update(metadata=metadata)
        changed += 1
    quotes_lock(namespace)  # after the memories' row locks, as in every other holder
    elsewhere = counts_sent(memories_purged, sender=Memory, namespace=namespace, memory_ids=ids, texts=texts)
    return changed + elsewhere.get("copiesScrubbed", 0), elsewhere.get("handshakes", 0)


def _forget_task_records(ids: set[str]) -> int:
    """Finished and queued task records whose arguments name a purged memory (at most a few thousand rows)."""
    from django_q.models import OrmQ, Task

    doomed = [
        task.pk
        for task in Task.objects.filter(func__startswith="memories.tasks.").only("id", "args")
        if any(memory_id in repr(task.args) for memory_id in ids)
    ]
    removed, _ = Task.objects.filter(pk__in=doomed).delete()
    queued = []
    for entry in OrmQ.objects.all():
        try:
            payload = repr(entry.task)
        except Exception:  # an unreadable payload is not ours to judge
            continue
        if any(memory_id in payload for memory_id in ids):
            queued.append(entry.pk)
    removed += OrmQ.objects.filter(pk__in=queued).delete()[0]
    return removed


def _lock_work(memory_ids) -> None:
    """Lock the pending work that names these memories BEFORE the memories themselves: a
    drain locks its work rows first and the memories after, so taking them in the same
    order means a purge waits for a drain instead of deadlocking with it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM memories_backgroundwork WHERE memory_ids && %s::uuid[] ORDER BY id FOR UPDATE",
            [[str(memory_id) for memory_id in memory_ids]],
        )


def _forget_work(ids: set[str]) -> int:
    """Take the purged ids out of pending background work; drop rows left with nothing to do."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE memories_backgroundwork SET memory_ids = ARRAY("
            "SELECT m FROM unnest(memory_ids) AS u(m) WHERE m <> ALL(%(ids)s::uuid[])) "
            "WHERE memory_ids && %(ids)s::uuid[]",
            {"ids": list(ids)},
        )
        changed = cursor.rowcount
        cursor.execute(
            "DELETE FROM memories_backgroundwork WHERE cardinality(memory_ids) = 0 "
            "OR (kind = 'cooccurrence' AND cardinality(memory_ids) < 2)"
        )
    return changed


def _forget_admin_log(ids: set[str]) -> int:
    """Staff edits logged by the admin name the memory (object_id) and quote it (object_repr)."""
    from django.contrib.admin.models import LogEntry
    from django.contrib.contenttypes.models import ContentType

    return LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Memory), object_id__in=list(ids)
    ).delete()[0]


def _purge_rows(namespace: str, memory_ids: list[UUID]) -> PurgeCounts:
    """Delete the memories and every copy of them, cached embeddings included."""
    rows = list(
        Memory.objects.filter(namespace=namespace, pk__in=memory_ids).values_list("pk", "content", "superseded_by_id")
    )
    ids = {str(pk) for pk, _, _ in rows}
    texts = {content for _, content, _ in rows}
    # The memories that superseded a purged one keep no copy of its id in ``supersedes``.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE memories_memory SET supersedes = ARRAY("
            "SELECT s FROM unnest(supersedes) AS u(s) WHERE s <> ALL(%(ids)s::uuid[])) "
            "WHERE id = ANY(%(successors)s::uuid[]) AND NOT id = ANY(%(ids)s::uuid[])",
            {"ids": list(ids), "successors": list({str(s) for _, _, s in rows if s is not None})},
        )
    rows = [(pk, content) for pk, content, _ in rows]
    counts = PurgeCounts()
    counts.copies_scrubbed, counts.handshakes = _scrub(namespace, ids, texts)
    counts.memories, _ = Memory.objects.filter(pk__in=[pk for pk, _ in rows]).delete()
    counts.memories = len(rows)
    counts.tasks = _forget_task_records(ids) + _forget_work(ids)
    counts.other_rows["adminLogEntries"] = _forget_admin_log(ids)
    namespace_cache_forget(namespace=namespace)
    return counts


def _record(kind: str, counts: PurgeCounts) -> None:
    metrics.PURGES.labels(kind=kind).inc()
    metrics.PURGED_MEMORIES.inc(counts.memories)
    logger.info("purge %s: %s", kind, counts.as_dict())


def memory_purge(*, namespace: str, memory_id: UUID, chain: bool = False) -> PurgeCounts:
    """Remove one memory (live, deleted or merged) of the namespace for good; with ``chain``
    its whole chain of corrections too (what it superseded and what superseded it,
    transitively), each with the memories merged into it."""
    with transaction.atomic():
        links = _supersession_chain(namespace, memory_id) if chain else [memory_id]
        family = [member for link in links for member in _merged_family(link)]
        _lock_work(family)
        if not Memory.objects.select_for_update().filter(namespace=namespace, pk=memory_id).exists():
            raise MemoryNotFoundError(memory_id)
        counts = _purge_rows(namespace, family)
    _record("chain" if chain else "memory", counts)
    return counts


def memories_purge_expired(*, now=None) -> int:
    """Purge memories soft-deleted longer ago than ANIMA_SOFT_DELETE_RETENTION_DAYS (0: keep forever).

    Merged memories are kept: they are their survivor's history and answer 404 with
    ``mergedInto``; they go when the survivor is purged.
    """
    days = settings.ANIMA_SOFT_DELETE_RETENTION_DAYS
    if days <= 0:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=days)
    expired = (
        Memory.objects.filter(deleted_at__lt=cutoff, merged_into__isnull=True)
        .order_by("namespace")
        .values_list("namespace", "pk")
    )
    purged = 0
    by_namespace: dict[str, list[UUID]] = {}
    for namespace, pk in expired:
        by_namespace.setdefault(namespace, []).append(pk)
    for namespace, pks in by_namespace.items():
        with transaction.atomic():
            family = [member for pk in pks for member in _merged_family(pk)]
            _lock_work(family)
            counts = _purge_rows(namespace, family)
        _record("retention", counts)
        purged += counts.memories
    return purged


def namespace_purge(*, namespace: str) -> PurgeCounts:
    """Remove everything of a namespace: memories and all that hangs on them, tier counts,
    and through ``namespace_purged`` what other apps keep of it (reflections, handshakes,
    API keys)."""
    with transaction.atomic():
        list(BackgroundWork.objects.select_for_update().filter(namespace=namespace).order_by("id").values_list("id"))
        ids = {str(pk) for pk in Memory.objects.filter(namespace=namespace).values_list("pk", flat=True)}
        counts = PurgeCounts()
        MemoryAssociation.objects.filter(namespace=namespace).delete()
        counts.memories, _ = Memory.objects.filter(namespace=namespace).delete()
        counts.memories = len(ids)
        quotes_lock(namespace)  # after the memories' row locks, as in every other holder
        counts.other_rows = counts_sent(namespace_purged, sender=Memory, namespace=namespace)
        counts.handshakes = counts.other_rows.pop("handshakes", 0)
        TierCount.objects.filter(namespace=namespace).delete()
        counts.tasks = _forget_task_records(ids) + BackgroundWork.objects.filter(namespace=namespace).delete()[0]
        counts.other_rows["adminLogEntries"] = _forget_admin_log(ids)
        namespace_cache_forget(namespace=namespace, drop=True)
    _record("namespace", counts)
    return counts
