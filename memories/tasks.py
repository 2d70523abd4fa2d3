"""django-q2 tasks: each takes ids, calls one service, runs in one transaction, is idempotent.

Services enqueue them with ``transaction.on_commit`` so a task never sees uncommitted
rows and never runs for a rolled-back request. A worker that dies mid-task leaves the
task unacknowledged; the broker delivers it again after ``ANIMA_TASK_RETRY`` seconds.
"""

import uuid
from functools import partial

from django.conf import settings
from django.db import transaction
from django_q.tasks import async_task

from anima_site import metrics
from memories.services.associations import associations_record
from memories.services.catalysts import catalysts_detect
from memories.services.consolidation import memory_consolidate
from memories.services.forgetting import memories_purge_expired
from memories.services.upkeep import access_log_clean, memories_apply_decay

def consolidate_memory(memory_id: str) -> str:
    outcome = memory_consolidate(memory_id=uuid.UUID(memory_id)).value
    metrics.record_consolidation(outcome)
    return outcome


def detect_catalysts(memory_ids: list[str]) -> int:
    return len(catalysts_detect(memory_ids=[uuid.UUID(i) for i in memory_ids]))


def record_cooccurrences(namespace: str, memory_ids: list[str], conversation_id: str | None, batch_key: str) -> int:
    written = associations_record(
        namespace=namespace,
        memory_ids=[uuid.UUID(i) for i in memory_ids],
        conversation_id=conversation_id,
        batch_key=uuid.UUID(batch_key),
    )
    metrics.record_cooccurrence_pairs(written)
    return written


def after_query(namespace: str, memory_ids: list[str], conversation_id: str | None, batch_key: str | None) -> int:
    """What follows a query, in one task: its co-occurrences (``batch_key`` is None when
    there are none to record), then catalyst detection among its hits — so the
    connectivity signal already counts this query's pairs. Returns the pairs written."""
    written = 0
    if batch_key is not None:
        written = record_cooccurrences(namespace, memory_ids, conversation_id, batch_key)
    detect_catalysts(memory_ids)
    return written


def purge_expired_deletions() -> int:
    return memories_purge_expired()


def apply_decay() -> int:
    return memories_apply_decay()


def clean_access_log() -> int:
    return access_log_clean()


def _enqueue(func, *args) -> None:
    async_task(f"memories.tasks.{func.__name__}", *args, group=func.__name__)


def enqueue_after_add(*, memory_id, is_catalyst: bool) -> None:
    """After the add commits: consolidation (unless switched off) and catalyst detection."""
    ids = str(memory_id)
    if settings.ANIMA_SEMANTIC_CONSOLIDATION:
        transaction.on_commit(partial(_enqueue, consolidate_memory, ids))
    if not is_catalyst:
        transaction.on_commit(partial(_enqueue, detect_catalysts, [ids]))


def enqueue_after_query(*, namespace: str, memory_ids: list, conversation_id: str | None) -> None:
    """After the query commits: one ``after_query`` task (co-occurrences with a
    conversation and ≥ 2 hits, then catalyst detection). One task, not two: under load
    the worker's cost is mostly per task (dequeue, result row, acknowledgement)."""
    if not memory_ids:
        return
    ids = [str(i) for i in memory_ids]
    key = str(uuid.uuid4()) if conversation_id and len(ids) >= 2 else None
    transaction.on_commit(partial(_enqueue, after_query, namespace, ids, conversation_id, key))
