"""Parsing: one line of an import file → a validated :class:`ImportRow`, or
:class:`InvalidLine` naming the field and the bound. Every rule of a line lives here, and
nothing here writes.

A line is validated fully before anything of it is written, so it can never store a value
that would make its namespace unreadable: datetimes inside years 1–9999 in UTC
(``memories.datetimes``, the API's rule), ``metadata`` through ``anima_site.json_values``
(no NUL or lone surrogate, finite numbers, depth ≤ 32, ``ANIMA_METADATA_MAX_BYTES``),
lines parsed by its ``json_loads`` (no NaN/Infinity literals; nesting too deep for the
parser is an error, not a crash), strings without NUL or lone surrogates and within the
API's bounds, tier, φ and ``accessCount`` in range, a vector finite with a length (norm)
above zero in float32 and, unless it is labelled with another model (then it is embedded
again), of the configured dimension. A line without an ``id`` gets one derived from its
text (uuid5), so a re-run finds it again. (``mergedInto`` is decided against the whole
file and the database, in ``memories.portability.importing``.)

The facts that change, as far as one line can tell: ``validFrom`` (default ``createdAt``),
``validUntil`` and ``expiresAt`` (default none) by the datetime rule, ``validUntil`` not
before ``validFrom``; ``supersededBy`` a UUID other than the line's own ``id``, and only
with a ``validUntil`` (when it was superseded: the line is refused without one, never
given a guessed moment); ``supersedes`` a list of at most ``MAX_SUPERSEDES`` UUIDs, not
the line's own ``id`` nor its ``supersededBy`` (a cycle of two). Whether the linked
memories exist, and how the two sides are made to agree, is decided by the importer.
"""

import json
import math
import uuid
from dataclasses import dataclass
from datetime import datetime
from datetime import timezone as dt_timezone

import numpy as np
from django.conf import settings
from django.utils import timezone

from anima_site.json_values import JsonValueError, check_json_value, json_loads, non_finite_path, text_problem
from anima_site.namespaces import is_valid_namespace, namespace_error
from memories.datetimes import DatetimeOutOfRange, datetime_in_utc
from memories.embeddings import get_provider
from memories.models import MAX_CONTENT_CHARS, MAX_TAG_CHARS, MAX_TAGS, Tier
from memories.portability.format import KNOWN_KEYS
from memories.ranking import PHI_MAX, PHI_MIN
from memories.text import content_hash, normalized_hash

MAX_CATEGORY_CHARS = 100
MAX_SOURCE_CHARS = 100
MAX_MODEL_CHARS = 200
MAX_ACCESS_COUNT = 2_147_483_647
#: The most ids one line's ``supersedes`` may list (a memory corrects a few others; the
#: importer locks them all in one transaction).
MAX_SUPERSEDES = 10_000
#: uuid5 namespace of the ids derived from a line (no id, or its id held by another memory).
REASSIGNED_ID_NAMESPACE = uuid.UUID("6f1c7a52-0c1e-4d53-9a57-2b1f0e6c9d41")

MESSAGE_BAD_JSON = "not valid JSON"
MESSAGE_NOT_OBJECT = "not a JSON object"
MESSAGE_NOT_UTF8 = "not UTF-8 text"
MESSAGE_VECTOR_LENGTH = "embedding: its length (norm) in float32 must be finite and above zero"


class InvalidLine(ValueError):
    """The line cannot be stored; the message names the field and the bound."""


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
    #: The memory that corrected this one, and the ids this one corrected, as in the file
    #: (exported ids: the importer maps them to the stored ones).
    superseded_by: uuid.UUID | None
    supersedes: list[uuid.UUID]
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


def _uuid_value(value, key: str) -> uuid.UUID:
    if not isinstance(value, str):
        raise InvalidLine(f"{key}: must be a UUID string")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidLine(f"{key}: {_shown(value)} is not a UUID") from None


def _uuid(record: dict, key: str) -> uuid.UUID | None:
    value = record.get(key)
    return None if value is None else _uuid_value(value, key)


def _uuids(record: dict, key: str, *, max_items: int) -> list[uuid.UUID]:
    """A list of UUID strings (repeats kept once, in order); absent or null: empty."""
    values = record.get(key)
    if values is None:
        return []
    if not isinstance(values, list):
        raise InvalidLine(f"{key}: must be a list of UUID strings")
    if len(values) > max_items:
        raise InvalidLine(f"{key}: {len(values)} ids, at most {max_items}")
    return list(dict.fromkeys(_uuid_value(value, key) for value in values))


def _supersession(record: dict, own_id: uuid.UUID | None, valid_from: datetime) -> dict:
    """The line's links and validity (see the module's rules), as Memory columns plus
    ``superseded_by`` and ``supersedes`` (the file's ids)."""
    superseded_by = _uuid(record, "supersededBy")
    supersedes = _uuids(record, "supersedes", max_items=MAX_SUPERSEDES)
    valid_until = _timestamp(record, "validUntil", default=None, nullable=True)
    if superseded_by is not None and superseded_by == own_id:
        raise InvalidLine("supersededBy: names the line itself")
    if own_id is not None and own_id in supersedes:
        raise InvalidLine("supersedes: names the line itself")
    if superseded_by is not None and superseded_by in supersedes:
        raise InvalidLine(f"supersedes: lists {superseded_by}, which supersededBy names: a cycle")
    if superseded_by is not None and valid_until is None:
        raise InvalidLine("validUntil: required with supersededBy (when the memory was superseded)")
    if valid_until is not None and valid_until < valid_from:
        raise InvalidLine("validUntil: before validFrom")
    return {
        "superseded_by": superseded_by,
        "supersedes": supersedes,
        "valid_from": valid_from,
        "valid_until": valid_until,
        "expires_at": _timestamp(record, "expiresAt", default=None, nullable=True),
    }


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
    valid_from = _timestamp(record, "validFrom", default=created_at, nullable=False)
    validity = _supersession(record, exported_id, valid_from)
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
            "superseded_by_id": None,  # likewise
            "supersedes": [],  # kept in agreement with the links by the importer
            "valid_from": validity["valid_from"],
            "valid_until": validity["valid_until"],
            "expires_at": validity["expires_at"],
        },
        deleted=deleted_at is not None,
        merged_into=_uuid(record, "mergedInto"),
        superseded_by=validity["superseded_by"],
        supersedes=validity["supersedes"],
        vector=vector,
        embedding_model=model,
        truncated=_boolean(record, "embeddingTruncated", False) if vector is not None else False,
    )


def _shown_keys(keys: list[str]) -> str:
    return f"unknown key(s): {', '.join(_shown(key)[1:-1] for key in keys)}"


def _line_id(record: dict, namespace: str) -> uuid.UUID:
    """The id of a line that has none: the same for the same line on every run."""
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"))
    return uuid.uuid5(REASSIGNED_ID_NAMESPACE, f"line/{namespace}/{canonical}")


def import_line_decode(raw: bytes | str, *, line: int) -> str:
    """The text of a line as read from the file (UTF-8; a byte-order mark on line 1 dropped)."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidLine(MESSAGE_NOT_UTF8) from None
    return raw.removeprefix("\ufeff") if line == 1 else raw


def import_line_parse(text: str, *, line: int, namespace: str | None, space: EmbeddingSpace) -> ImportRow:
    """Parse the JSON of one line and validate it (``import_row_parse``). Raises :class:`InvalidLine`."""
    try:
        record = json_loads(text)
    except ValueError as exc:
        # A NaN/Infinity literal is named by its field; any other error is the parser's.
        path = None if isinstance(exc, json.JSONDecodeError) else non_finite_path(text)
        raise InvalidLine(f"{path}: {exc}" if path else f"{MESSAGE_BAD_JSON} ({exc})") from None
    return import_row_parse(record, line=line, namespace=namespace, space=space)
