"""Import: ``memories_import`` stores the lines of a file in batches — duplicates found,
vectors embedded, rows inserted, ``mergedInto`` decided — and counts them in an
:class:`ImportSummary`. Each line is validated first by ``memories.portability.parsing``.

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
- ``mergedInto`` must name a memory of the line's own namespace, stored or in the file (a
  chain of merged lines is followed; a loop is refused). Lines with ``mergedInto`` are
  kept aside (in an unlinked temporary file, one small record each in memory) and stored
  after the rest, survivors first, each inserted with its link in one statement: an
  interrupted import never leaves a merged memory unlinked. Imports enqueue no
  consolidation: the file is stored as it was exported (run ``manage.py consolidate``).
"""

import bisect
import tempfile
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import DataError, IntegrityError, connection, transaction
from psycopg.types.json import Jsonb

from anima_site.namespaces import is_valid_namespace, namespace_error
from memories.embeddings import embed_texts
from memories.models import LIVE, Memory, MemoryEmbedding
from memories.portability.parsing import (
    REASSIGNED_ID_NAMESPACE,
    EmbeddingSpace,
    ImportRow,
    InvalidLine,
    import_line_decode,
    import_line_parse,
)

IMPORT_BATCH_SIZE = 500
#: Error lines kept with their message; beyond this they are only counted.
MAX_REPORTED_ERRORS = 10_000
#: A message quotes at most this much of the line (a bad value may be 50,000 characters).
MAX_MESSAGE_CHARS = 300
_ID_LOOKUP_CHUNK = 5000

MESSAGE_MERGE_OTHER_NAMESPACE = "mergedInto: names a memory of another namespace"
MESSAGE_MERGE_TARGET_MISSING = "mergedInto: names no memory of this namespace, stored or in the file"
MESSAGE_MERGE_LOOP = "mergedInto: the chain of merged lines loops or ends at a line that was not stored"


class InvalidNamespace(ValueError):
    """The namespace given for a whole import is not a namespace."""


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


def _reassigned_id(row: ImportRow) -> uuid.UUID:
    """The id of a line whose exported id another memory holds: the same on every run."""
    return uuid.uuid5(REASSIGNED_ID_NAMESPACE, f"{row.exported_id}/{row.namespace}/{row.content_hash}")


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
                    text = import_line_decode(raw, line=number)
                except InvalidLine as exc:
                    summary.lines += 1
                    summary.reject(number, str(exc))
                    continue
                if not text.strip():
                    continue
                summary.lines += 1
                try:
                    row = import_line_parse(text, line=number, namespace=namespace, space=space)
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
                        batch.append(import_line_parse(text, line=number, namespace=namespace, space=space))
                    if len(batch) >= batch_size:
                        importer.store(batch)
                        batch = []
                if batch:
                    importer.store(batch)
        except (Exception, KeyboardInterrupt) as exc:
            raise ImportInterrupted(summary, number, exc) from exc
    return summary