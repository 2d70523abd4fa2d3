"""Facts that change: a memory supersedes others (README "Facts that change").

``memories_supersede`` is the one place a supersession is written. Each old memory gets
``superseded_by`` (the new one) and ``valid_until`` (the moment of the supersession: a
new memory's ``valid_from``, else now); the new one lists the old ids
in ``supersedes``. Nothing else moves: the old memory keeps its content, φ, tier and
associations, stays readable by id and in the history, and leaves default reads (query,
bootstrap, handshake, list), which ask for current facts (``models.current``).

The rules, checked with every row involved locked (``FOR NO KEY UPDATE``, in id order):

- every id is a live memory of the namespace, else ``MemoryNotFoundError`` (404);
- a memory does not supersede itself, and a link that would close a cycle is refused
  (``InvalidSupersessionError``, 400);
- that moment is not before an old memory's own ``valid_from`` (400);
- the new memory must be current, and an old one must not be superseded already by
  another memory (``SupersessionConflictError``, 409 naming the one that superseded it);
  so of two concurrent corrections of one memory, the second waits for the first's lock,
  then finds it superseded: one winner, one 409. Superseding again by the same memory
  changes nothing.

Suggested corrections (``metadata.correctionCandidate``, written by consolidation) are
confirmed by superseding and dismissed by ``correction_dismiss``.

The add path calls it for ``supersedes`` on add and add-batch; ``memories.services.correcting``
for ``POST /memories/{id}/correct``.
"""

from uuid import UUID

from django.db import transaction
from django.utils import timezone

from memories.errors import InvalidSupersessionError, SupersessionConflictError
from memories.models import LIVE, Memory
from memories.selectors.memories import memory_not_found

#: How many links a cycle check follows before it calls the chain broken (a chain is a
#: history of corrections of one fact: a few links, never thousands).
MAX_CHAIN = 10_000
#: The metadata key consolidation writes on a memory that may correct another, and the
#: list of ids staff dismissed as not corrected by it (never suggested again).
CORRECTION_CANDIDATE = "correctionCandidate"
CORRECTION_DISMISSED = "correctionDismissed"


def locked_memories(namespace: str, ids: list[UUID]) -> dict[UUID, Memory]:
    """The live memories of the namespace among ``ids``, locked in id order, by id."""
    rows = (
        Memory.objects.select_for_update(no_key=True)
        .filter(LIVE, namespace=namespace, pk__in=ids)
        .defer("search_vector")
        .order_by("pk")
    )
    return {memory.pk: memory for memory in rows}


def successors_of(memory_id: UUID) -> list[UUID]:
    """The memories that supersede ``memory_id``, nearest first (its chain forward)."""
    chain, seen, current = [], {memory_id}, memory_id
    while len(chain) < MAX_CHAIN:
        current = Memory.objects.filter(pk=current).values_list("superseded_by_id", flat=True).first()
        if current is None or current in seen:
            break
        chain.append(current)
        seen.add(current)
    return chain


def memories_supersede(
    *,
    namespace: str,
    successor_id: UUID,
    predecessor_ids: list[UUID],
    field: str = "supersedes",
    now=None,
    moment_field: str = "validFrom",
) -> Memory:
    """``successor_id`` supersedes each of ``predecessor_ids`` (see the module's rules) from
    ``now`` (default: now; a new memory passes its ``valid_from``, so that the intervals
    meet; a moment before an old memory's own ``valid_from`` is refused, naming
    ``moment_field``); returns the successor as left. Runs in the caller's transaction
    when there is one."""
    now = now or timezone.now()
    predecessor_ids = list(dict.fromkeys(predecessor_ids))
    if successor_id in predecessor_ids:
        raise InvalidSupersessionError(field, "A memory cannot supersede itself.")
    with transaction.atomic():
        rows = locked_memories(namespace, [successor_id, *predecessor_ids])
        for memory_id in [successor_id, *predecessor_ids]:
            if memory_id not in rows:
                raise memory_not_found(namespace=namespace, memory_id=memory_id)
        successor = rows[successor_id]
        ahead = successors_of(successor_id)
        for memory_id in predecessor_ids:
            if memory_id in ahead:
                raise InvalidSupersessionError(
                    field, f"Memory {memory_id} already supersedes {successor_id} (directly or through a chain): a cycle."
                )
        if successor.valid_until is not None:
            raise SupersessionConflictError(successor_id, successor.superseded_by_id)
        added = []
        for memory_id in predecessor_ids:
            old = rows[memory_id]
            if old.superseded_by_id == successor_id:
                continue  # already so: nothing to do
            if old.valid_until is not None:
                raise SupersessionConflictError(memory_id, old.superseded_by_id)
            if now < old.valid_from:
                raise InvalidSupersessionError(
                    moment_field, f"Must not be before {old.valid_from.isoformat()}, when memory {memory_id} became valid."
                )
            Memory.objects.filter(pk=memory_id).update(superseded_by=successor_id, valid_until=now, updated_at=now)
            added.append(memory_id)
        if added:
            successor.supersedes = [*successor.supersedes, *added]
            metadata = dict(successor.metadata or {})
            candidate = metadata.get(CORRECTION_CANDIDATE)
            if isinstance(candidate, dict) and candidate.get("corrects") in {str(i) for i in added}:
                metadata.pop(CORRECTION_CANDIDATE)  # the suggestion is now a fact
                successor.metadata = metadata
            Memory.objects.filter(pk=successor_id).update(
                supersedes=successor.supersedes, metadata=successor.metadata, updated_at=now
            )
    return successor


def supersession_move(*, merged_id: UUID, survivor_id: UUID) -> None:
    """Consolidation merged ``merged_id`` into ``survivor_id`` (both locked by the caller):
    what the merged memory superseded, the survivor now supersedes (the merged memory's
    list is emptied: the links are the survivor's now)."""
    moved = list(Memory.objects.filter(superseded_by=merged_id).values_list("pk", flat=True))
    if not moved:
        return
    Memory.objects.filter(pk__in=moved).update(superseded_by=survivor_id)
    Memory.objects.filter(pk=merged_id).update(supersedes=[])
    before = Memory.objects.filter(pk=survivor_id).values_list("supersedes", flat=True).first() or []
    Memory.objects.filter(pk=survivor_id).update(supersedes=list(dict.fromkeys([*before, *moved])))


def corrected_id(candidate) -> UUID | None:
    """The id a ``correctionCandidate`` names (``{"corrects": id, ...}``), None when malformed."""
    try:
        return UUID(str(candidate["corrects"]))
    except (TypeError, KeyError, ValueError):
        return None


def correction_dismiss(memory_id: UUID) -> bool:
    """Dismiss the suggested correction of one live memory, its row locked: the id it named
    is appended (once) to ``correctionDismissed``. False when there was none by then."""
    with transaction.atomic():
        metadata = (
            Memory.objects.select_for_update(no_key=True)
            .filter(LIVE, pk=memory_id)
            .values_list("metadata", flat=True)
            .first()
        )
        if not isinstance(metadata, dict) or CORRECTION_CANDIDATE not in metadata:
            return False
        metadata = dict(metadata)
        older = corrected_id(metadata.pop(CORRECTION_CANDIDATE))
        dismissed = metadata.get(CORRECTION_DISMISSED)
        dismissed = list(dismissed) if isinstance(dismissed, list) else []
        if older is not None and str(older) not in dismissed:
            dismissed.append(str(older))
        metadata[CORRECTION_DISMISSED] = dismissed
        Memory.objects.filter(pk=memory_id).update(metadata=metadata, updated_at=timezone.now())
    return True
