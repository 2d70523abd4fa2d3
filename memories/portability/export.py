"""Export: ``memories_export`` streams rows through a server-side cursor in primary-key
order, one JSON-ready record per memory in the format of ``memories.portability.format``:
constant memory, whatever the table size. Superseded and expired memories are exported
like the others (with their links and validity); only ``include_deleted`` widens the set."""

import json
from collections.abc import Iterator
from datetime import datetime
from datetime import timezone as dt_timezone

from django.db import transaction
from django.db.models import F, TextField
from django.db.models.functions import Cast

from memories.models import LIVE, Memory

EXPORT_CHUNK_SIZE = 2000


def _export_queryset(*, namespace: str | None, include_deleted: bool):
    memories = Memory.objects.all() if include_deleted else Memory.objects.filter(LIVE)
    if namespace is not None:
        memories = memories.filter(namespace=namespace)
    return memories


def memories_export_count(*, namespace: str | None = None, include_deleted: bool = False) -> int:
    """How many memories ``memories_export`` with the same arguments yields (for a progress bar)."""
    return _export_queryset(namespace=namespace, include_deleted=include_deleted).count()


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt_timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def memories_export(
    *,
    namespace: str | None = None,
    include_deleted: bool = False,
    with_embeddings: bool = False,
    chunk_size: int = EXPORT_CHUNK_SIZE,
) -> Iterator[dict]:
    """Yield one JSON-ready record per memory, in id order, read ``chunk_size`` rows at a time."""
    columns = [
        "id", "content", "namespace", "category", "tags", "source", "metadata", "tier", "tier_last_updated",
        "resonance_phi", "phi_decayed_at", "is_catalyst", "pinned", "access_count", "last_accessed",
        "occurred_at", "created_at", "updated_at", "deleted_at", "merged_into_id", "superseded_by_id", "supersedes",
        "valid_from", "valid_until", "expires_at",
    ]  # fmt: skip
    rows = _export_queryset(namespace=namespace, include_deleted=include_deleted).order_by("id")
    if with_embeddings:
        # pgvector prints the shortest decimal that reads back as the same float32.
        rows = rows.values(
            *columns,
            vector_text=Cast("embedding__embedding", TextField()),
            vector_model=F("embedding__embedding_model"),
            vector_truncated=F("embedding__truncated"),
        )
    else:
        rows = rows.values(*columns)
    # Inside a transaction Django declares the server-side cursor without WITH HOLD: rows
    # stream as they are fetched (a held cursor is materialised whole by the server at
    # commit), and the whole export reads one snapshot.
    with transaction.atomic():
        for row in rows.iterator(chunk_size=chunk_size):
            yield _export_record(row, with_embeddings=with_embeddings)


def _export_record(row: dict, *, with_embeddings: bool) -> dict:
    record = {
        "id": str(row["id"]),
        "content": row["content"],
        "namespace": row["namespace"],
        "category": row["category"],
        "tags": row["tags"],
        "source": row["source"],
        "metadata": row["metadata"],
        "tier": row["tier"],
        "tierLastUpdated": _iso(row["tier_last_updated"]),
        "resonancePhi": row["resonance_phi"],
        "phiDecayedAt": _iso(row["phi_decayed_at"]),
        "isCatalyst": row["is_catalyst"],
        "pinned": row["pinned"],
        "accessCount": row["access_count"],
        "lastAccessed": _iso(row["last_accessed"]),
        "occurredAt": _iso(row["occurred_at"]),
        "createdAt": _iso(row["created_at"]),
        "updatedAt": _iso(row["updated_at"]),
        "deletedAt": _iso(row["deleted_at"]),
        "mergedInto": str(row["merged_into_id"]) if row["merged_into_id"] else None,
        "supersededBy": str(row["superseded_by_id"]) if row["superseded_by_id"] else None,
        "supersedes": [str(memory_id) for memory_id in row["supersedes"]],
        "validFrom": _iso(row["valid_from"]),
        "validUntil": _iso(row["valid_until"]),
        "expiresAt": _iso(row["expires_at"]),
    }
    if with_embeddings:
        text = row["vector_text"]
        record["embedding"] = json.loads(text) if text is not None else None
        record["embeddingModel"] = row["vector_model"]
        record["embeddingTruncated"] = row["vector_truncated"]
    return record
