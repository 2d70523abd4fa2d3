"""Export and import of memories as JSON Lines (SPEC §7: round-trip without loss).

One memory per line, camelCase keys as in the API: ``id``, ``content``, ``namespace``,
``category``, ``tags``, ``source``, ``metadata``, ``tier``, ``tierLastUpdated``,
``resonancePhi``, ``phiDecayedAt``, ``isCatalyst``, ``pinned``, ``accessCount``,
``lastAccessed``, ``occurredAt``, ``createdAt``, ``updatedAt``, ``deletedAt``, ``mergedInto`` and, with
embeddings, ``embedding`` (floats), ``embeddingModel``, ``embeddingTruncated``.
Timestamps are ISO 8601 in UTC with microseconds; a vector is written in pgvector's own
shortest text form, which reads back to the same float32 values.

- ``memories_export`` streams rows through a server-side cursor in primary-key order:
  constant memory, whatever the table size.
- ``memories_import`` reads line by line and stores batches. A line that cannot be
  stored (bad JSON, a missing or out-of-bounds value, an unknown key) is reported with
  its line number and skipped. Idempotent: a line whose id is already stored with the
  same namespace and content, or a live line whose (namespace, content hash) a live
  memory already has, is a duplicate and changes nothing; inserts are
  ``INSERT … ON CONFLICT DO NOTHING`` on the primary key and the partial unique
  ``(namespace, content_hash)``, so concurrent imports of one file create each memory
  once. Exported ids are kept unless another memory holds them. A vector from the file
  is used as-is when its model and dimension are the configured ones; the other lines
  of a batch are embedded in one ``embed_texts`` call. ``mergedInto`` links are set
  after the last batch (the survivor may come later in the file). Imports enqueue no
  consolidation: the file is stored as it was exported (run ``manage.py consolidate``).
"""

import json
import math
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from datetime import timezone as dt_timezone

import numpy as np
from django.conf import settings
from django.db import DataError, IntegrityError, connection, transaction
from django.db.models import F, TextField
from django.db.models.functions import Cast
from django.utils import timezone
from psycopg.types.json import Jsonb

from memories.embeddings import embed_texts, get_provider
from memories.models import LIVE, MAX_CONTENT_CHARS, MAX_TAG_CHARS, MAX_TAGS, Memory, MemoryEmbedding, Tier
from memories.text import content_hash, normalized_hash

EXPORT_CHUNK_SIZE = 2000
IMPORT_BATCH_SIZE = 500
#: Error lines kept with their message; beyond this they are only counted.
MAX_REPORTED_ERRORS = 10_000
MAX_CATEGORY_CHARS = 100
MAX_SOURCE_CHARS = 100
MAX_NAMESPACE_CHARS = 64
MAX_MODEL_CHARS = 200
PHI_MIN, PHI_MAX = 0.0, 5.0
MAX_ACCESS_COUNT = 2_147_483_647
_MERGE_UPDATE_CHUNK = 1000
_NAMESPACE_PATTERN = re.compile(r"^[-a-zA-Z0-9_]+$")

MEMORY_KEYS = (
    "id",
    "content",
    "namespace",
    "category",
    "tags",
    "source",
    "metadata",
    "tier",
    "tierLastUpdated",
    "resonancePhi",
    "phiDecayedAt",
    "isCatalyst",
    "pinned",
    "accessCount",
    "lastAccessed",
    "occurredAt",
    "createdAt",
    "updatedAt",
    "deletedAt",
    "mergedInto",
)
EMBEDDING_KEYS = ("embedding", "embeddingModel", "embeddingTruncated")
KNOWN_KEYS = frozenset(MEMORY_KEYS + EMBEDDING_KEYS)

MESSAGE_BAD_JSON = "not valid JSON"
MESSAGE_NOT_OBJECT = "not a JSON object"
MESSAGE_NOT_UTF8 = "not UTF-8 text"
MESSAGE_MERGE_TARGET_MISSING = "mergedInto names a memory that is neither stored nor in the file; left empty"


# --- export --------------------------------------------------------------------------------


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
        "occurred_at", "created_at", "updated_at", "deleted_at", "merged_into_id",
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
    }
    if with_embeddings:
        text = row["vector_text"]
        record["embedding"] = json.loads(text) if text is not None else None
        record["embeddingModel"] = row["vector_model"]
        record["embeddingTruncated"] = row["vector_truncated"]
    return record


# --- import: one line ------------------------------------------------------------------------


class InvalidLine(ValueError):
    """The line cannot be stored; the message names the field and the bound."""


class InvalidNamespace(ValueError):
    """The namespace given for a whole import is not a namespace."""


@dataclass
class ImportRow:
    line: int
    exported_id: uuid.UUID
    id: uuid.UUID
    namespace: str
    content: str
    content_hash: str
    values: dict  # the other Memory columns
    deleted: bool
    merged_into: uuid.UUID | None
    vector: np.ndarray | None
    embedding_model: str | None
    truncated: bool


def _storable(text: str, name: str) -> str:
    # PostgreSQL text and jsonb hold neither NUL nor lone surrogates.
    if "\x00" in text:
        raise InvalidLine(f"{name}: contains a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidLine(f"{name}: contains an unpaired surrogate") from None
    return text


def _string(record: dict, key: str, *, max_chars: int, nullable: bool, min_chars: int = 0) -> str | None:
    value = record.get(key)
    if value is None:
        if nullable:
            return None
        raise InvalidLine(f"{key}: required")
    if not isinstance(value, str):
        raise InvalidLine(f"{key}: must be a string")
    if len(value) > max_chars:
        raise InvalidLine(f"{key}: {len(value)} characters, at most {max_chars}")
    if len(value) < min_chars:
        raise InvalidLine(f"{key}: at least {min_chars} character(s)")
    return _storable(value, key)


def _boolean(record: dict, key: str, default: bool) -> bool:
    value = record.get(key, default)
    if not isinstance(value, bool):
        raise InvalidLine(f"{key}: must be true or false")
    return value


def _timestamp(record: dict, key: str, *, default: datetime | None, nullable: bool) -> datetime | None:
    if key not in record:
        return default
    value = record[key]
    if value is None:
        if nullable:
            return None
        raise InvalidLine(f"{key}: must be a timestamp, not null")
    if not isinstance(value, str):
        raise InvalidLine(f"{key}: must be an ISO 8601 timestamp string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidLine(f"{key}: {value!r} is not an ISO 8601 timestamp") from None
    # A timestamp without an offset is read as UTC (the export always writes one).
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=dt_timezone.utc)
    try:
        parsed.astimezone(dt_timezone.utc)
    except OverflowError:
        raise InvalidLine(f"{key}: {value!r} is outside years 1–9999 in UTC") from None
    return parsed


def _uuid(record: dict, key: str) -> uuid.UUID | None:
    value = record.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidLine(f"{key}: must be a UUID string")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidLine(f"{key}: {value!r} is not a UUID") from None


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _tags(record: dict) -> list[str]:
    tags = record.get("tags")
    if tags is None:
        return []
    if not isinstance(tags, list):
        raise InvalidLine("tags: must be a list of strings")
    if len(tags) > MAX_TAGS:
        raise InvalidLine(f"tags: {len(tags)} tags, at most {MAX_TAGS}")
    for tag in tags:
        if not isinstance(tag, str) or not 1 <= len(tag) <= MAX_TAG_CHARS:
            raise InvalidLine(f"tags: each tag must be a string of 1–{MAX_TAG_CHARS} characters")
        _storable(tag, "tags")
    return tags


def _metadata(record: dict) -> dict:
    metadata = record.get("metadata")
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise InvalidLine("metadata: must be a JSON object")
    try:
        text = json.dumps(metadata, ensure_ascii=False, allow_nan=False)
    except ValueError:
        raise InvalidLine("metadata: NaN and Infinity are not JSON") from None
    if "\\u0000" in text:
        raise InvalidLine("metadata: contains a NUL character")
    _storable(text, "metadata")
    return metadata


def _vector(record: dict) -> np.ndarray | None:
    values = record.get("embedding")
    if values is None:
        return None
    # One set of element types instead of a check per element: vectors have thousands.
    if not isinstance(values, list) or not values or not {type(v) for v in values} <= {float, int}:
        raise InvalidLine("embedding: must be a non-empty list of numbers")
    vector = np.asarray(values, dtype=np.float32)
    if not np.isfinite(vector).all():
        raise InvalidLine("embedding: values must be finite float32 numbers")
    return vector


def import_row_parse(record, *, line: int, namespace: str | None = None) -> ImportRow:
    """Validate one decoded line against the bounds of SPEC §2. Raises :class:`InvalidLine`."""
    if not isinstance(record, dict):
        raise InvalidLine(MESSAGE_NOT_OBJECT)
    unknown = sorted(set(record) - KNOWN_KEYS)
    if unknown:
        raise InvalidLine(f"unknown key(s): {', '.join(unknown)}")
    content = _string(record, "content", max_chars=MAX_CONTENT_CHARS, nullable=False, min_chars=1)
    if not content.strip():
        raise InvalidLine("content: must not be blank")
    if namespace is None:
        namespace = _string(record, "namespace", max_chars=MAX_NAMESPACE_CHARS, nullable=True)
        if namespace is None:
            namespace = settings.ANIMA_DEFAULT_NAMESPACE
        elif not _NAMESPACE_PATTERN.match(namespace):
            raise InvalidLine("namespace: letters, digits, '-' and '_' only")
    tier = record.get("tier", Tier.ACTIVE)
    if tier not in Tier.values:
        raise InvalidLine(f"tier: {tier!r} is not one of {', '.join(Tier.values)}")
    phi = record.get("resonancePhi", 0.0)
    if not _number(phi) or not math.isfinite(phi) or not PHI_MIN <= phi <= PHI_MAX:
        raise InvalidLine(f"resonancePhi: must be a number in [{PHI_MIN:g}, {PHI_MAX:g}]")
    access_count = record.get("accessCount", 0)
    if (
        not _number(access_count)
        or not math.isfinite(access_count)
        or access_count != int(access_count)
        or not 0 <= access_count <= MAX_ACCESS_COUNT
    ):
        raise InvalidLine("accessCount: must be a whole number ≥ 0")
    created_at = _timestamp(record, "createdAt", default=timezone.now(), nullable=False)
    exported_id = _uuid(record, "id") or uuid.uuid4()
    deleted_at = _timestamp(record, "deletedAt", default=None, nullable=True)
    vector = _vector(record)
    model = _string(record, "embeddingModel", max_chars=MAX_MODEL_CHARS, nullable=True)
    return ImportRow(
        line=line,
        exported_id=exported_id,
        id=exported_id,
        namespace=namespace,
        content=content,
        content_hash=content_hash(content),
        values={
            "normalized_hash": normalized_hash(content),
            "tier": tier,
            "tier_last_updated": _timestamp(record, "tierLastUpdated", default=created_at, nullable=False),
            "access_count": int(access_count),
            "last_accessed": _timestamp(record, "lastAccessed", default=created_at, nullable=False),
            "resonance_phi": float(phi),
            "phi_decayed_at": _timestamp(record, "phiDecayedAt", default=None, nullable=True),
            "is_catalyst": _boolean(record, "isCatalyst", False),
            "pinned": _boolean(record, "pinned", False),
            "category": _string(record, "category", max_chars=MAX_CATEGORY_CHARS, nullable=True),
            "tags": _tags(record),
            "source": _string(record, "source", max_chars=MAX_SOURCE_CHARS, nullable=True),
            "metadata": _metadata(record),
            "occurred_at": _timestamp(record, "occurredAt", default=created_at, nullable=False),
            "created_at": created_at,
            "updated_at": _timestamp(record, "updatedAt", default=created_at, nullable=False),
            "deleted_at": deleted_at,
        },
        deleted=deleted_at is not None,
        merged_into=_uuid(record, "mergedInto"),
        vector=vector,
        embedding_model=model,
        truncated=_boolean(record, "embeddingTruncated", False) if vector is not None else False,
    )


# --- import: the file -------------------------------------------------------------------------


@dataclass(frozen=True)
class LineError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class ImportSummary:
    #: Non-blank lines read.
    lines: int = 0
    created: int = 0
    duplicates: int = 0
    #: Vectors computed through ``embed_texts`` / taken from the file as they were.
    embedded: int = 0
    embeddings_reused: int = 0
    #: Created under a new id because another memory held the exported one.
    ids_reassigned: int = 0
    error_count: int = 0
    #: The first ``MAX_REPORTED_ERRORS`` rejected lines, in file order.
    errors: list[LineError] = field(default_factory=list)
    #: Stored lines whose ``mergedInto`` could not be linked.
    warnings: list[LineError] = field(default_factory=list)
    embedding_model: str = ""

    @property
    def nothing_read(self) -> bool:
        """Every non-blank line was rejected (an empty file is not a failure)."""
        return self.lines > 0 and self.error_count == self.lines

    def reject(self, line: int, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(LineError(line, message))


_MEMORY_COLUMNS = (
    "id", "namespace", "content", "content_hash", "normalized_hash", "tier", "tier_last_updated",
    "access_count", "last_accessed", "resonance_phi", "phi_decayed_at", "is_catalyst", "pinned",
    "category", "tags", "source", "metadata", "occurred_at", "created_at", "updated_at", "deleted_at",
)  # fmt: skip
_ROW_PLACEHOLDERS = "(" + ", ".join(["%s"] * len(_MEMORY_COLUMNS)) + ")"


class _Importer:
    def __init__(self, summary: ImportSummary):
        self.summary = summary
        provider = get_provider()
        self.model_id = provider.model_id
        self.dimensions = provider.dimensions
        summary.embedding_model = provider.model_id
        #: exported id → stored id, only where they differ (for ``mergedInto``).
        self.id_map: dict[uuid.UUID, uuid.UUID] = {}
        #: (stored id, exported target, line) of created memories that were merged.
        self.pending_merges: list[tuple[uuid.UUID, uuid.UUID, int]] = []

    # One batch: find duplicates, embed what needs it (one call), insert.
    def store(self, batch: list[ImportRow]) -> None:
        fresh = self._drop_duplicates(batch)
        if not fresh:
            return
        self._embed(fresh)
        try:
            with transaction.atomic():
                created = self._insert(fresh)
        except (DataError, IntegrityError):
            # Something the parser let through and PostgreSQL refused: find the line.
            created, refused = set(), set()
            for row in fresh:
                try:
                    with transaction.atomic():
                        created |= self._insert([row])
                except (DataError, IntegrityError) as exc:
                    self.summary.reject(row.line, f"refused by the database: {str(exc).splitlines()[0]}")
                    refused.add(row.line)
            fresh = [row for row in fresh if row.line not in refused]
        for row in fresh:
            if row.id in created:
                self.summary.created += 1
                if row.id != row.exported_id:
                    self.summary.ids_reassigned += 1
                if row.merged_into is not None:
                    self.pending_merges.append((row.id, row.merged_into, row.line))
            else:  # a concurrent import or add stored it first
                self.summary.duplicates += 1

    def _drop_duplicates(self, batch: list[ImportRow]) -> list[ImportRow]:
        stored = Memory.objects.filter(id__in=[r.id for r in batch]).values_list("id", "namespace", "content_hash")
        by_id = {memory_id: (namespace, digest) for memory_id, namespace, digest in stored}
        live_rows = [r for r in batch if not r.deleted]
        live = {}
        if live_rows:
            live = {
                (namespace, digest): memory_id
                for namespace, digest, memory_id in Memory.objects.filter(
                    LIVE,
                    namespace__in={r.namespace for r in live_rows},
                    content_hash__in={r.content_hash for r in live_rows},
                ).values_list("namespace", "content_hash", "id")
            }
        fresh = []
        for row in batch:
            key = (row.namespace, row.content_hash)
            holder = by_id.get(row.id)
            if holder == key:
                self.summary.duplicates += 1
                continue
            if holder is not None:  # the exported id belongs to another memory
                row.id = uuid.uuid4()
                self.id_map[row.exported_id] = row.id
            if not row.deleted and key in live:
                self.summary.duplicates += 1
                if live[key] != row.exported_id:
                    self.id_map[row.exported_id] = live[key]
                continue
            by_id[row.id] = key
            if not row.deleted:
                live[key] = row.id
            fresh.append(row)
        return fresh

    def _embed(self, rows: list[ImportRow]) -> None:
        missing = []
        for row in rows:
            usable = row.vector is not None and row.vector.shape == (self.dimensions,)
            if usable and row.embedding_model == self.model_id:
                self.summary.embeddings_reused += 1
            else:
                missing.append(row)
        if not missing:
            return
        embedded = embed_texts([row.content for row in missing])  # one model call for the batch
        for row, embedding in zip(missing, embedded.embeddings):
            row.vector, row.embedding_model, row.truncated = embedding.vector, embedded.model_id, embedding.truncated
        self.summary.embedded += len(missing)

    def _insert(self, rows: list[ImportRow]) -> set[uuid.UUID]:
        # One order for every importer: concurrent imports wait on each other's
        # conflicting rows in the same order, so they cannot deadlock.
        rows = sorted(rows, key=lambda row: (row.namespace, row.content_hash, str(row.id)))
        params = []
        for row in rows:
            values = {**row.values, "id": row.id, "namespace": row.namespace, "content": row.content,
                      "content_hash": row.content_hash, "metadata": Jsonb(row.values["metadata"])}  # fmt: skip
            params.extend(values[column] for column in _MEMORY_COLUMNS)
        sql = (
            f"INSERT INTO {Memory._meta.db_table} ({', '.join(_MEMORY_COLUMNS)}) "
            f"VALUES {', '.join([_ROW_PLACEHOLDERS] * len(rows))} ON CONFLICT DO NOTHING RETURNING id"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            created = {row[0] for row in cursor.fetchall()}
        MemoryEmbedding.objects.bulk_create(
            [
                MemoryEmbedding(
                    memory_id=row.id,
                    namespace=row.namespace,
                    embedding=row.vector,
                    embedding_model=row.embedding_model,
                    truncated=row.truncated,
                )
                for row in rows
                if row.id in created
            ],
            ignore_conflicts=True,
        )
        return created

    def link_merges(self) -> None:
        """Set ``merged_into`` of the created merged memories, now that every survivor is stored."""
        pairs = [(memory_id, self.id_map.get(target, target), line) for memory_id, target, line in self.pending_merges]
        linked: set[uuid.UUID] = set()
        for start in range(0, len(pairs), _MERGE_UPDATE_CHUNK):
            chunk = pairs[start : start + _MERGE_UPDATE_CHUNK]
            with connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {Memory._meta.db_table} m SET merged_into_id = v.target "
                    f"FROM (VALUES {', '.join(['(%s::uuid, %s::uuid)'] * len(chunk))}) AS v(id, target) "
                    f"WHERE m.id = v.id AND EXISTS (SELECT 1 FROM {Memory._meta.db_table} t WHERE t.id = v.target) "
                    "RETURNING m.id",
                    [value for memory_id, target, _ in chunk for value in (memory_id, target)],
                )
                linked.update(row[0] for row in cursor.fetchall())
        for memory_id, _, line in pairs:
            if memory_id not in linked:
                self.summary.warnings.append(LineError(line, MESSAGE_MERGE_TARGET_MISSING))


def _decoded(raw: bytes | str, line: int) -> str:
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidLine(MESSAGE_NOT_UTF8) from None
    return raw.removeprefix("\ufeff") if line == 1 else raw


def _parse_line(text: str, *, line: int, namespace: str | None) -> ImportRow:
    try:
        record = json.loads(text)
    except ValueError as exc:
        raise InvalidLine(f"{MESSAGE_BAD_JSON} ({exc})") from None
    return import_row_parse(record, line=line, namespace=namespace)


def memories_import(
    *,
    lines: Iterable[bytes | str],
    namespace: str | None = None,
    batch_size: int = IMPORT_BATCH_SIZE,
) -> ImportSummary:
    """Store the memories of a JSON Lines stream; ``namespace`` puts every line in that namespace.

    Reads one line at a time and keeps one batch in memory. Raises
    :class:`~memories.embeddings.EmbeddingError` when the provider fails: the batches
    before it are stored, and running the same import again skips them as duplicates.
    """
    if namespace is not None and not (_NAMESPACE_PATTERN.match(namespace) and len(namespace) <= MAX_NAMESPACE_CHARS):
        raise InvalidNamespace(
            f"namespace {namespace!r}: letters, digits, '-' and '_' only, at most {MAX_NAMESPACE_CHARS} characters"
        )
    summary = ImportSummary()
    importer = _Importer(summary)
    batch: list[ImportRow] = []
    for number, raw in enumerate(lines, start=1):
        try:
            text = _decoded(raw, number)
        except InvalidLine as exc:
            summary.lines += 1
            summary.reject(number, str(exc))
            continue
        if not text.strip():
            continue
        summary.lines += 1
        try:
            batch.append(_parse_line(text, line=number, namespace=namespace))
        except InvalidLine as exc:
            summary.reject(number, str(exc))
            continue
        if len(batch) >= batch_size:
            importer.store(batch)
            batch = []
    if batch:
        importer.store(batch)
    importer.link_merges()
    return summary
