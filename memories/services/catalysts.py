"""Catalyst candidates: memories that look pivotal, raised for staff to confirm or dismiss.

Signals (SPEC §5): rapid access (≥ 3 access rows in the last 10 minutes), high
connectivity (≥ 5 associations with live memories), or a content marker as a whole word
or phrase. A hit writes ``metadata.catalystCandidate = {reasons, signals, detectedAt}``;
nothing here ever sets ``is_catalyst``. Memories that already are catalysts, already
carry a candidate, or whose candidate staff dismissed (``metadata.catalystDismissed``)
are skipped, so a re-run changes nothing. A constant number of statements per call.
"""

import json
import re
from datetime import timedelta
from uuid import UUID

from django.db import connection
from django.db.models import Count, Q
from django.utils import timezone

from memories.models import LIVE, Memory, MemoryAccess, MemoryAssociation

RAPID_ACCESS_COUNT = 3
RAPID_ACCESS_WINDOW = timedelta(minutes=10)
HIGH_CONNECTIVITY = 5
MARKERS = ("breakthrough", "insight", "realized", "profound", "changed everything", "paradigm shift", "eureka")
_MARKER_PATTERN = re.compile(r"\b(" + "|".join(re.escape(m).replace(r"\ ", r"\s+") for m in MARKERS) + r")\b", re.I)
CANDIDATE_KEY = "catalystCandidate"
DISMISSED_KEY = "catalystDismissed"


def content_markers(content: str) -> list[str]:
    """The markers in ``content`` as whole words or phrases ("realized", not "unrealized")."""
    return sorted({" ".join(match.lower().split()) for match in _MARKER_PATTERN.findall(content)})


# Rows locked in id order, as every writer of memories does: no deadlock with queries.
_RAISE_SQL = f"""
WITH locked AS (
    SELECT id FROM memories_memory WHERE id = ANY(%s::uuid[]) ORDER BY id FOR NO KEY UPDATE
)
UPDATE memories_memory m
SET metadata = m.metadata || jsonb_build_object('{CANDIDATE_KEY}', r.note)
FROM unnest(%s::uuid[], %s::jsonb[]) AS r(id, note), locked
WHERE m.id = r.id AND locked.id = m.id AND m.deleted_at IS NULL AND NOT m.is_catalyst
  AND NOT m.metadata ? '{CANDIDATE_KEY}' AND NOT m.metadata ? '{DISMISSED_KEY}'
RETURNING m.id
"""


def catalysts_detect(*, memory_ids: list[UUID]) -> list[UUID]:
    """Raise candidates among ``memory_ids``; returns the ids newly raised.

    The signals are read without locking; one ``UPDATE`` then adds the note to the
    metadata as it is at that moment (``metadata || …``, so a concurrent edit of other
    keys is kept) and only where no note or dismissal arrived meanwhile.
    """
    now = timezone.now()
    memories = list(
        Memory.objects.filter(LIVE, pk__in=memory_ids, is_catalyst=False)
        .exclude(metadata__has_key=CANDIDATE_KEY)
        .exclude(metadata__has_key=DISMISSED_KEY)
        .values_list("id", "content")
    )
    if not memories:
        return []
    ids = [memory_id for memory_id, _ in memories]
    recent_accesses = dict(
        MemoryAccess.objects.filter(memory_id__in=ids, accessed_at__gte=now - RAPID_ACCESS_WINDOW)
        .values("memory_id")
        .annotate(n=Count("id"))
        .values_list("memory_id", "n")
    )
    connections = _live_connection_counts(ids)
    raised, notes = [], []
    for memory_id, content in memories:
        signals = {
            "recentAccesses": recent_accesses.get(memory_id, 0),
            "connections": connections.get(memory_id, 0),
            "markers": content_markers(content),
        }
        reasons = []
        if signals["recentAccesses"] >= RAPID_ACCESS_COUNT:
            reasons.append("rapid_access")
        if signals["connections"] >= HIGH_CONNECTIVITY:
            reasons.append("high_connectivity")
        if signals["markers"]:
            reasons.append("content_marker")
        if reasons:
            raised.append(memory_id)
            notes.append(json.dumps({"reasons": reasons, "signals": signals, "detectedAt": now.isoformat()}))
    if not raised:
        return []
    with connection.cursor() as cursor:
        cursor.execute(_RAISE_SQL, [raised, raised, notes])
        return [row[0] for row in cursor.fetchall()]


def _live_connection_counts(ids: list[UUID]) -> dict[UUID, int]:
    """Associations per memory, counting only those whose other end is live."""
    counts: dict[UUID, int] = {}
    pairs = MemoryAssociation.objects.filter(
        (Q(memory_a_id__in=ids) & Q(memory_b__deleted_at__isnull=True))
        | (Q(memory_b_id__in=ids) & Q(memory_a__deleted_at__isnull=True))
    ).values_list("memory_a_id", "memory_b_id")
    wanted = set(ids)
    for a, b in pairs:
        for own in (a, b):
            if own in wanted:
                counts[own] = counts.get(own, 0) + 1
    return counts


def catalyst_confirm(*, memory_ids: list[UUID]) -> int:
    """Staff confirm candidates: they become catalysts and the candidate note is cleared."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE memories_memory SET is_catalyst = true, metadata = metadata - %s, updated_at = now() "
            "WHERE id = ANY(%s) AND deleted_at IS NULL",
            [CANDIDATE_KEY, list(memory_ids)],
        )
        return cursor.rowcount


def catalyst_dismiss(*, memory_ids: list[UUID]) -> int:
    """Staff dismiss candidates: the note becomes a dismissal, so it is not raised again."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE memories_memory SET metadata = (metadata - %s) || jsonb_build_object(%s, "
            "jsonb_build_object('dismissedAt', now())), updated_at = now() "
            "WHERE id = ANY(%s) AND deleted_at IS NULL",
            [CANDIDATE_KEY, DISMISSED_KEY, list(memory_ids)],
        )
        return cursor.rowcount
