"""django-q2 tasks: the drains and the schedules. Each calls one service and is idempotent.

Requests never enqueue per-request tasks: they record ``BackgroundWork`` rows and ask
for a drain (``memories.background``), so the queue holds at most one drain per kind
plus the schedules, whatever the request rate.
"""

from memories.background import drains_request, legacy_work_record, pending_kinds
from memories.models import WorkKind
from memories.services.draining import work_drain
from memories.services.forgetting import memories_purge_expired
from memories.services.upkeep import access_log_clean, memories_apply_decay


def drain(kind: str) -> int:
    """Apply pending work of one kind in batches (``memories.services.draining``)."""
    return work_drain(kind=kind)


def request_drains() -> list[str]:
    """Every minute: a drain for each kind with work waiting and no drain queued (or a lost one)."""
    return drains_request(pending_kinds())


def purge_expired_deletions() -> int:
    return memories_purge_expired()


def apply_decay() -> int:
    return memories_apply_decay()


def clean_access_log() -> int:
    return access_log_clean()


# --- tasks queued by a version before migration 0010 (one message per request) ------------
# A message already in the broker at the upgrade still runs: it records its work as rows
# (applied by the next drain) instead of failing on a missing function.


def consolidate_memory(memory_id: str) -> int:
    return legacy_work_record(kind=WorkKind.CONSOLIDATION, memory_ids=[memory_id])


def detect_catalysts(memory_ids: list[str]) -> int:
    return legacy_work_record(kind=WorkKind.CATALYST, memory_ids=memory_ids)


def after_query(namespace: str, memory_ids: list[str], conversation_id: str | None, batch_key: str | None) -> int:
    if batch_key is not None:
        legacy_work_record(kind=WorkKind.COOCCURRENCE, memory_ids=memory_ids, conversation_id=conversation_id)
    return legacy_work_record(kind=WorkKind.CATALYST, memory_ids=memory_ids)


def record_cooccurrences(namespace: str, memory_ids: list[str], conversation_id: str | None, batch_key: str) -> int:
    return legacy_work_record(kind=WorkKind.COOCCURRENCE, memory_ids=memory_ids, conversation_id=conversation_id)
