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
- ``memories_import`` validates each line fully before anything of it is written, so a
  line can never store a value that would make its namespace unreadable: datetimes
  inside years 1–9999 in UTC (``memories.datetimes``, the API's rule), ``metadata``
  through ``anima_site.json_values`` (no NUL or lone surrogate, finite numbers, depth
  ≤ 32, ``ANIMA_METADATA_MAX_BYTES``), lines parsed by its ``json_loads`` (no
  NaN/Infinity literals; nesting too deep for the parser is an error, not a crash),
  strings without NUL or lone surrogates and within the API's bounds, tier, φ and
  ``accessCount`` in range, a vector finite with a length (norm) above zero in float32
  and, unless it is labelled with another model (then it is embedded again), of the
  configured dimension; ``mergedInto`` must name a memory of the line's own namespace,
  stored or in the file (a chain of merged lines is followed; a loop is refused).
- A bad line is skipped and counted, never stops the import: the summary keeps the
  first ``MAX_REPORTED_ERRORS`` as ``line N: field: why`` in file order. An error that
  is not the line's fault (the database or the embedding provider fails, Ctrl-C)
  raises :class:`ImportInterrupted` carrying the summary so far.
- Resuming is running the same import again: it is idempotent. A line whose id is
  already stored with the same namespace and content, or a live line whose (namespace,
  content hash) a live memory already has, is a duplicate and changes nothing; a line
  whose exported id another memory holds, or that has no ``id``, is stored under an id
  derived from the line (uuid5), so a re-run finds it too. Inserts are
  ``INSERT … ON CONFLICT DO NOTHING`` on the primary key and the partial unique
  ``(namespace, content_hash)``, so concurrent imports of one file create each memory
  once. A vector from the file is used as-is when its model and dimension are the
  configured ones; the other lines of a batch are embedded in one ``embed_texts`` call
  per namespace.
- Lines with ``mergedInto`` are kept aside (in an unlinked temporary file, one small
  record each in memory) and stored after the rest, survivors first, each inserted
  with its link in one statement: an interrupted import never leaves a merged memory
  unlinked. Imports enqueue no consolidation: the file is stored as it was exported
  (run ``manage.py consolidate``).
"""

import bisect
import json
import math
import tempfile
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

from anima_site.json_values import JsonValueError, check_json_value, json_loads, non_finite_path, text_problem
from anima_site.namespaces import is_valid_namespace, namespace_error
from memories.datetimes import DatetimeOutOfRange, datetime_in_utc
from memories.embeddings import embed_texts, get_provider
from memories.models import LIVE, MAX_CONTENT_CHARS, MAX_TAG_CHARS, MAX_TAGS, Memory, MemoryEmbedding, Tier
from memories.ranking import PHI_MAX, PHI_MIN
from memories.text import content_hash, normalized_hash

EXPORT_CHUNK_SIZE = 2000
IMPORT_BATCH_SIZE = 500
#: Error lines kept with their message; beyond this they are only counted.
MAX_REPORTED_ERRORS = 10_000
#: A message quotes at most this much of the line (a bad value may be 50,000 characters).
MAX_MESSAGE_CHARS = 300
MAX_CATEGORY_CHARS = 100
MAX_SOURCE_CHARS = 100
MAX_MODEL_CHARS = 200
MAX_ACCESS_COUNT = 2_147_483_647
_ID_LOOKUP_CHUNK = 5000
#: uuid5 namespace of the ids derived from a line (no id, or its id held by another memory).
_REASSIGNED_ID_NAMESPACE = uuid.UUID("6f1c7a52-0c1e-4d53-9a57-2b1f0e6c9d41")

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
MESSAGE_VECTOR_LENGTH = "embedding: its length (norm) in float32 must be finite and above zero"
MESSAGE_MERGE_OTHER_NAMESPACE = "mergedInto: names a memory of another namespace"
MESSAGE_MERGE_TARGET_MISSING = "mergedInto: names no memory of this namespace, stored or in the file"
MESSAGE_MERGE_LOOP = "mergedInto: the chain of merged lines loops or ends at a line that was not stored"


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


@dataclass(frozen=True)
class EmbeddingSpace:
    """The configured model and dimension a vector from the file must match to be used."""

    model_id: str
    dimensions: int

    @classmethod
    def configured(cls) -> "EmbeddingSpace":
        provider = get_provider()
        return cls(provider.model_id, provider.dimensions)


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"


def _storable(text: str, name: str) -> str:
    problem = text_problem(text)  # the API's rule: no NUL, no lone surrogate
    if problem:
        raise InvalidLine(f"{name}: {problem}")
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
        raise InvalidLine(f"{key}: {_shown(value)} is not an ISO 8601 timestamp") from None
    # A timestamp without an offset is read as UTC (the export always writes one).
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=dt_timezone.utc)
    try:
        return datetime_in_utc(parsed)
    except DatetimeOutOfRange as exc:
        raise InvalidLine(f"{key}: {exc}") from None


def _uuid(record: dict, key: str) -> uuid.UUID | None:
    value = record.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidLine(f"{key}: must be a UUID string")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidLine(f"{key}: {_shown(value)} is not a UUID") from None


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
        check_json_value(metadata)  # the API's rule for free-form JSON
    except JsonValueError as exc:
        raise InvalidLine(f"metadata.{exc}" if exc.path else f"metadata: {exc}") from None
    return metadata


def _vector(record: dict, model: str | None, space: EmbeddingSpace) -> np.ndarray | None:
    values = record.get("embedding")
    if values is None:
        return None
    # One set of element types instead of a check per element: vectors have thousands.
    if not isinstance(values, list) or not values or not {type(v) for v in values} <= {float, int}:
        raise InvalidLine("embedding: must be a non-empty list of numbers")
    with np.errstate(over="ignore", under="ignore"):
        vector = np.asarray(values, dtype=np.float32)
        if not np.isfinite(vector).all():
            raise InvalidLine("embedding: values must be finite float32 numbers")
        # pgvector sums the squares in float32 too: zero or infinity makes every cosine NaN.
        squared_length = np.dot(vector, vector)
    if not (np.isfinite(squared_length) and squared_length > 0):
        raise InvalidLine(MESSAGE_VECTOR_LENGTH)
    # A vector labelled with another model is not used (the line is embedded again).
    if model in (None, space.model_id) and vector.shape != (space.dimensions,):
        raise InvalidLine(f"embedding: {vector.size} dimensions; {space.model_id} has {space.dimensions}")
    return vector


def import_row_parse(
    record, *, line: int, namespace: str | None = None, space: EmbeddingSpace | None = None
) -> ImportRow:
    """Validate one decoded line against the bounds of SPEC §2. Raises :class:`InvalidLine`."""
    if not isinstance(record, dict):
        raise InvalidLine(MESSAGE_NOT_OBJECT)
    unknown = sorted(set(record) - KNOWN_KEYS)
    if unknown:
        raise InvalidLine(_shown_keys(unknown))
    content = _string(record, "content", max_chars=MAX_CONTENT_CHARS, nullable=False, min_chars=1)
    if not content.strip():
        raise InvalidLine("content: must not be blank")
    if namespace is None:  # a namespace for the whole import was checked once, by ``memories_import``
        namespace = record.get("namespace")
        if namespace is None:
            namespace = settings.ANIMA_DEFAULT_NAMESPACE
        elif not is_valid_namespace(namespace):
            raise InvalidLine(f"namespace: {namespace_error(namespace)}")
    tier = record.get("tier", Tier.ACTIVE)
    if not isinstance(tier, str) or tier not in Tier.values:
        raise InvalidLine(f"tier: {_shown(tier)} is not one of {', '.join(Tier.values)}")
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
        raise InvalidLine(f"accessCount: must be a whole number in [0, {MAX_ACCESS_COUNT}]")
    created_at = _timestamp(record, "createdAt", default=timezone.now(), nullable=False)
    exported_id = _uuid(record, "id")
    deleted_at = _timestamp(record, "deletedAt", default=None, nullable=True)
    model = _string(record, "embeddingModel", max_chars=MAX_MODEL_CHARS, nullable=True)
    vector = _vector(record, model, space or EmbeddingSpace.configured())
    # Without an id, the line's own text decides one: a re-run finds the line again.
    exported_id = exported_id or _line_id(record, namespace)
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
            "merged_into_id": None,  # set when the line is stored (its target's stored id)
        },
        deleted=deleted_at is not None,
        merged_into=_uuid(record, "mergedInto"),
        vector=vector,
        embedding_model=model,
        truncated=_boolean(record, "embeddingTruncated", False) if vector is not None else False,
    )


def _shown_keys(keys: list[str]) -> str:
    return f"unknown key(s): {', '.join(_shown(key)[1:-1] for key in keys)}"


def _parse_line(text: str, *, line: int, namespace: str | None, space: EmbeddingSpace) -> ImportRow:
    try:
        record = json_loads(text)
    except ValueError as exc:
        # A NaN/Infinity literal is named by its field; any other error is the parser's.
        path = None if isinstance(exc, json.JSONDecodeError) else non_finite_path(text)
        raise InvalidLine(f"{path}: {exc}" if path else f"{MESSAGE_BAD_JSON} ({exc})") from None
    return import_row_parse(record, line=line, namespace=namespace, space=space)


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
    #: The first ``MAX_REPORTED_ERRORS`` rejected lines in file order, at every moment: a
    #: line refused late (its ``mergedInto`` is decided after the rest) takes its place by number.
    errors: list[LineError] = field(default_factory=list)
    embedding_model: str = ""

    @property
    def nothing_read(self) -> bool:
        """Every non-blank line was rejected (an empty file is not a failure)."""
        return self.lines > 0 and self.error_count == self.lines

    def reject(self, line: int, message: str) -> None:
        self.error_count += 1
        if len(self.errors) >= MAX_REPORTED_ERRORS and line >= self.errors[-1].line:
            return
        # Printable whatever the line held: lone surrogates escaped, long values cut.
        message = message.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\u0000")
        if len(message) > MAX_MESSAGE_CHARS:
            message = message[: MAX_MESSAGE_CHARS - 1] + "…"
        bisect.insort(self.errors, LineError(line, message), key=lambda error: error.line)
        if len(self.errors) > MAX_REPORTED_ERRORS:
            self.errors.pop()


class ImportInterrupted(Exception):
    """The import stopped for a reason that is not a line's (database, embedding provider,
    Ctrl-C). What was stored stays; running the same import again continues it."""

    def __init__(self, summary: ImportSummary, line: int, cause: BaseException):
        super().__init__(f"interrupted at line {line}: {type(cause).__name__}: {cause}")
        self.summary = summary
        self.line = line


_MEMORY_COLUMNS = (
    "id", "namespace", "content", "content_hash", "normalized_hash", "tier", "tier_last_updated",
    "access_count", "last_accessed", "resonance_phi", "phi_decayed_at", "is_catalyst", "pinned",
    "category", "tags", "source", "metadata", "occurred_at", "created_at", "updated_at", "deleted_at",
    "merged_into_id",
)  # fmt: skip
_ROW_PLACEHOLDERS = "(" + ", ".join(["%s"] * len(_MEMORY_COLUMNS)) + ")"


def _line_id(record: dict, namespace: str) -> uuid.UUID:
    """The id of a line that has none: the same for the same line on every run."""
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"))
    return uuid.uuid5(_REASSIGNED_ID_NAMESPACE, f"line/{namespace}/{canonical}")


def _reassigned_id(row: ImportRow) -> uuid.UUID:
    """The id of a line whose exported id another memory holds: the same on every run."""
    return uuid.uuid5(_REASSIGNED_ID_NAMESPACE, f"{row.exported_id}/{row.namespace}/{row.content_hash}")


class _Importer:
    def __init__(self, summary: ImportSummary, space: EmbeddingSpace):
        self.summary = summary
        self.space = space
        summary.embedding_model = space.model_id
        #: exported id → stored id, only where they differ (for ``mergedInto``).
        self.id_map: dict[uuid.UUID, uuid.UUID] = {}

    # One batch: find duplicates, embed what needs it (one call), insert.
    def store(self, batch: list[ImportRow]) -> None:
        fresh = self._drop_duplicates(batch)
        if not fresh:
            return
        for row in fresh:
            if row.merged_into is not None:  # a round after its target's (``merge_levels``)
                row.values["merged_into_id"] = self.id_map.get(row.merged_into, row.merged_into)
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
            else:  # a concurrent import or add stored it first
                self.summary.duplicates += 1

    def _drop_duplicates(self, batch: list[ImportRow]) -> list[ImportRow]:
        wanted = {r.exported_id for r in batch} | {_reassigned_id(r) for r in batch}
        stored = Memory.objects.filter(id__in=wanted).values_list("id", "namespace", "content_hash")
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
            if holder is not None and holder != key:  # the exported id belongs to another memory
                row.id = _reassigned_id(row)
                holder = by_id.get(row.id)
                if holder is not None and holder != key:  # a uuid5 collision: never seen, still handled
                    row.id, holder = uuid.uuid4(), None
                self.id_map[row.exported_id] = row.id
            if holder == key:
                self.summary.duplicates += 1
                continue
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
            usable = row.vector is not None and row.vector.shape == (self.space.dimensions,)
            if usable and row.embedding_model == self.space.model_id:
                self.summary.embeddings_reused += 1
            else:
                missing.append(row)
        by_namespace: dict[str, list[ImportRow]] = {}
        for row in missing:
            by_namespace.setdefault(row.namespace, []).append(row)
        for namespace, rows_of_namespace in by_namespace.items():  # one model call per namespace of the batch
            embedded = embed_texts([row.content for row in rows_of_namespace], namespace=namespace)
            for row, embedding in zip(rows_of_namespace, embedded.embeddings):
                row.vector, row.truncated = embedding.vector, embedding.truncated
                row.embedding_model = embedded.model_id
            self.summary.embedded += len(rows_of_namespace)

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

    def merge_levels(self, merged: list["_MergedLine"]) -> list[set[int]]:
        """Line numbers of the merged lines to store, in rounds: a round's targets are
        stored already or in an earlier round. The other merged lines are rejected here."""
        in_file = {entry.exported_id: entry.namespace for entry in merged}
        outside = {self.id_map.get(entry.target, entry.target) for entry in merged if entry.target not in in_file}
        stored_namespace = self._stored_namespaces(outside)
        ready, pending = [], []
        for entry in merged:
            if entry.target in in_file:
                where = in_file[entry.target]
            else:
                where = stored_namespace.get(self.id_map.get(entry.target, entry.target))
                if where is None:
                    self.summary.reject(entry.line, MESSAGE_MERGE_TARGET_MISSING)
                    continue
            if where != entry.namespace:
                self.summary.reject(entry.line, MESSAGE_MERGE_OTHER_NAMESPACE)
            elif entry.target in in_file:
                pending.append(entry)  # waits for its target's round
            else:
                ready.append(entry)
        levels, accepted = [], set()
        while ready:
            levels.append({entry.line for entry in ready})
            accepted.update(entry.exported_id for entry in ready)
            ready = [entry for entry in pending if entry.target in accepted]
            pending = [entry for entry in pending if entry.target not in accepted]
        for entry in pending:
            self.summary.reject(entry.line, MESSAGE_MERGE_LOOP)
        return levels

    def _stored_namespaces(self, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
        found, ids = {}, list(ids)
        for start in range(0, len(ids), _ID_LOOKUP_CHUNK):
            chunk = ids[start : start + _ID_LOOKUP_CHUNK]
            found.update(Memory.objects.filter(id__in=chunk).values_list("id", "namespace"))
        return found


@dataclass(frozen=True)
class _MergedLine:
    """What deciding a ``mergedInto`` needs of a line kept aside (its text is spooled)."""

    line: int
    exported_id: uuid.UUID
    namespace: str
    target: uuid.UUID


def _decoded(raw: bytes | str, line: int) -> str:
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidLine(MESSAGE_NOT_UTF8) from None
    return raw.removeprefix("\ufeff") if line == 1 else raw


def memories_import(
    *,
    lines: Iterable[bytes | str],
    namespace: str | None = None,
    batch_size: int = IMPORT_BATCH_SIZE,
) -> ImportSummary:
    """Store the memories of a JSON Lines stream; ``namespace`` puts every line in that namespace.

    Reads one line at a time and keeps one batch in memory (lines with ``mergedInto`` go
    to a temporary file until the rest is stored). A bad line is counted in the summary
    and skipped. Raises :class:`ImportInterrupted` (with the summary so far) when
    something else fails, e.g. the embedding provider: the batches before it are stored,
    and running the same import again skips them as duplicates.
    """
    if namespace is not None and not is_valid_namespace(namespace):
        raise InvalidNamespace(namespace_error(namespace))
    summary = ImportSummary()
    space = EmbeddingSpace.configured()
    importer = _Importer(summary, space)
    number = 0
    with tempfile.TemporaryFile() as spool:
        try:
            merged: list[_MergedLine] = []
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
                    row = _parse_line(text, line=number, namespace=namespace, space=space)
                except InvalidLine as exc:
                    summary.reject(number, str(exc))
                    continue
                if row.merged_into is not None:
                    merged.append(_MergedLine(number, row.exported_id, row.namespace, row.merged_into))
                    spool.write(b"%d\t%s\n" % (number, text.rstrip("\r\n").encode("utf-8")))
                    continue
                batch.append(row)
                if len(batch) >= batch_size:
                    importer.store(batch)
                    batch = []
            if batch:
                importer.store(batch)
            for level in importer.merge_levels(merged):
                spool.seek(0)
                batch = []
                for entry in spool:
                    line_text, text = entry.decode("utf-8").rstrip("\n").split("\t", 1)
                    number = int(line_text)
                    if number in level:
                        batch.append(_parse_line(text, line=number, namespace=namespace, space=space))
                    if len(batch) >= batch_size:
                        importer.store(batch)
                        batch = []
                if batch:
                    importer.store(batch)
        except (Exception, KeyboardInterrupt) as exc:
            raise ImportInterrupted(summary, number, exc) from exc
    return summary
