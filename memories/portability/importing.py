"""Import: ``memories_import`` stores the lines of a file in batches — duplicates found,
vectors embedded, rows inserted, links (``mergedInto``, ``supersededBy``) decided, the
two sides of each correction made to agree — and counts them in an
:class:`ImportSummary`. Each line is validated first by ``memories.portability.parsing``.

- A bad line is skipped and counted, never stops the import: the summary keeps the
  first ``MAX_REPORTED_ERRORS`` as ``line N: field: why`` in file order. An error that
  is not the line's fault (the database or the embedding provider fails, Ctrl-C)
  raises :class:`ImportInterrupted` carrying the summary so far.
- Resuming is running the same import again: it is idempotent. A line whose id is
  already stored with the same namespace and content, or a live line whose (namespace,
  content hash) a live memory already has, is a duplicate and changes nothing (but for
  its ``supersedes``, which the final pass below completes); a line
  whose exported id another memory holds, or that has no ``id``, is stored under an id
  derived from the line (uuid5), so a re-run finds it too. Inserts are
  ``INSERT … ON CONFLICT DO NOTHING`` on the primary key and the partial unique
  ``(namespace, content_hash)``, so concurrent imports of one file create each memory
  once. A vector from the file is used as-is when its model and dimension are the
  configured ones; the other lines of a batch are embedded in one ``embed_texts`` call
  per namespace.
- ``mergedInto`` and ``supersededBy`` (the links) must name a memory of the line's own
  namespace, stored or in the file, else the line is refused (a chain of linked lines is
  followed; a loop — of merges, of corrections, or of both — is refused). Lines with a
  link are kept aside (in an unlinked temporary file, one small record each in memory)
  and stored after the rest, in rounds, targets first, each inserted with its links in
  one statement: an interrupted import never leaves a merged or superseded memory
  unlinked. Imports enqueue no consolidation: the file is stored as it was exported (run
  ``manage.py consolidate``).
- The two sides of a correction agree after the import: a memory the import links is
  listed in its successor's ``supersedes``, and an entry the import keeps in a
  ``supersedes`` names a memory superseded by that successor. ``supersededBy`` (the link)
  decides: inserting a superseded line adds it to its successor's ``supersedes`` in the
  same transaction. ``supersedes`` is the mirror, checked after every line is stored, in
  a final pass over the successor lines' lists (kept in a second temporary file; it
  covers the duplicates too, so a re-run completes it). An entry naming a memory the
  successor supersedes already stays. An entry naming a memory of the namespace that
  nothing supersedes (the file gave this side only) links it: its ``supersededBy`` is
  set and, unless it has one, its ``validUntil`` becomes the successor's ``validFrom``
  (not earlier than its own ``validFrom``). Any other entry — no memory of the namespace,
  superseded by another memory, the successor itself, a link that would close a cycle —
  is left out and counted (``supersedes_dropped``), never a line error: its line is
  stored already. The list stored is the kept entries in file order, then the ones
  already stored that the file does not list. These writes leave ``updatedAt`` as the
  file had it.
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
from memories.services.supersession import successors_of

IMPORT_BATCH_SIZE = 500
#: Error lines kept with their message; beyond this they are only counted.
MAX_REPORTED_ERRORS = 10_000
#: A message quotes at most this much of the line (a bad value may be 50,000 characters).
MAX_MESSAGE_CHARS = 300
_ID_LOOKUP_CHUNK = 5000
#: Successor lines whose ``supersedes`` the final pass checks with one read.
_AGREE_CHUNK = 500

MESSAGE_MERGE_OTHER_NAMESPACE = "mergedInto: names a memory of another namespace"
MESSAGE_MERGE_TARGET_MISSING = "mergedInto: names no memory of this namespace, stored or in the file"
MESSAGE_MERGE_LOOP = "mergedInto: the chain of merged lines loops or ends at a line that was not stored"
MESSAGE_SUCCESSOR_OTHER_NAMESPACE = "supersededBy: names a memory of another namespace"
MESSAGE_SUCCESSOR_MISSING = "supersededBy: names no memory of this namespace, stored or in the file"
MESSAGE_SUCCESSOR_LOOP = "supersededBy: the chain of corrections loops or ends at a line that was not stored"
#: A link's field → its messages: (other namespace, no such memory, loop).
_LINK_MESSAGES = {
    "mergedInto": (MESSAGE_MERGE_OTHER_NAMESPACE, MESSAGE_MERGE_TARGET_MISSING, MESSAGE_MERGE_LOOP),
    "supersededBy": (MESSAGE_SUCCESSOR_OTHER_NAMESPACE, MESSAGE_SUCCESSOR_MISSING, MESSAGE_SUCCESSOR_LOOP),
}


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
    #: ``supersedes`` entries left out: no memory of the namespace that the line's memory
    #: supersedes or could (see the module's rules).
    supersedes_dropped: int = 0
    error_count: int = 0
    #: The first ``MAX_REPORTED_ERRORS`` rejected lines in file order, at every moment: a
    #: line refused late (its links are decided after the rest) takes its place by number.
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
    "merged_into_id", "superseded_by_id", "supersedes", "valid_from", "valid_until", "expires_at",
)  # fmt: skip
_ROW_PLACEHOLDERS = "(" + ", ".join(["%s"] * len(_MEMORY_COLUMNS)) + ")"


def _reassigned_id(row: ImportRow) -> uuid.UUID:
    """The id of a line whose exported id another memory holds: the same on every run."""
    return uuid.uuid5(REASSIGNED_ID_NAMESPACE, f"{row.exported_id}/{row.namespace}/{row.content_hash}")


class _Importer:
    def __init__(self, summary: ImportSummary, space: EmbeddingSpace, successors):
        self.summary = summary
        self.space = space
        summary.embedding_model = space.model_id
        #: exported id → stored id, only where they differ (for the links).
        self.id_map: dict[uuid.UUID, uuid.UUID] = {}
        #: The temporary file of the successor lines' ``supersedes`` (for ``agree``).
        self.successors = successors

    def stored_id(self, exported_id: uuid.UUID) -> uuid.UUID:
        return self.id_map.get(exported_id, exported_id)

    # One batch: find duplicates, embed what needs it (one call), insert.
    def store(self, batch: list[ImportRow]) -> None:
        fresh = self._drop_duplicates(batch)
        refused = self._store_fresh(fresh) if fresh else set()
        for row in batch:  # fresh or duplicate: ``agree`` checks the lists of both
            if row.supersedes and row.line not in refused:
                entries = ",".join(str(memory_id) for memory_id in row.supersedes)
                self.successors.write(f"{row.line}\t{row.namespace}\t{row.id}\t{entries}\n".encode())

    def _store_fresh(self, fresh: list[ImportRow]) -> set[int]:
        """Insert the new rows of a batch; the line numbers the database refused."""
        for row in fresh:  # a round after their targets' (``link_levels``)
            if row.merged_into is not None:
                row.values["merged_into_id"] = self.stored_id(row.merged_into)
            if row.superseded_by is not None:
                row.values["superseded_by_id"] = self.stored_id(row.superseded_by)
        self._embed(fresh)
        refused = set()
        try:
            with transaction.atomic():
                created = self._insert(fresh)
        except (DataError, IntegrityError):
            # Something the parser let through and PostgreSQL refused: find the line.
            created = set()
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
        return refused

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
                row.id = live[key]  # the memory the line is
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
        self._list_in_successors([row for row in rows if row.id in created])
        return created

    def _list_in_successors(self, rows: list[ImportRow]) -> None:
        """Each new superseded row joins its successor's ``supersedes`` (in the insert's
        transaction; the successors locked in id order, as every importer does)."""
        added: dict[uuid.UUID, list[uuid.UUID]] = {}
        for row in sorted(rows, key=lambda row: row.line):
            if row.values["superseded_by_id"] is not None:
                added.setdefault(row.values["superseded_by_id"], []).append(row.id)
        if not added:
            return
        listed = (
            Memory.objects.select_for_update(no_key=True)
            .filter(pk__in=added)
            .order_by("pk")
            .values_list("pk", "supersedes")
        )
        for successor_id, supersedes in listed:
            new = [memory_id for memory_id in added[successor_id] if memory_id not in supersedes]
            if new:
                Memory.objects.filter(pk=successor_id).update(supersedes=[*supersedes, *new])

    def link_levels(self, linked: list["_LinkedLine"]) -> list[set[int]]:
        """Line numbers of the linked lines to store, in rounds: a round's targets are
        stored already or in an earlier round. The other linked lines are rejected here."""
        in_file = {entry.exported_id: entry.namespace for entry in linked}
        outside = {self.stored_id(target) for entry in linked for _, target in entry.links if target not in in_file}
        stored_namespace = self._stored_namespaces(outside)
        ready, pending = [], []
        for entry in linked:
            problem = None
            for field_name, target in entry.links:
                other_namespace, missing, _ = _LINK_MESSAGES[field_name]
                where = in_file[target] if target in in_file else stored_namespace.get(self.stored_id(target))
                if where is None or where != entry.namespace:
                    problem = missing if where is None else other_namespace
                    break
            if problem is not None:
                self.summary.reject(entry.line, problem)
            elif any(target in in_file for _, target in entry.links):
                pending.append(entry)  # waits for its targets' rounds
            else:
                ready.append(entry)
        levels, accepted = [], set()

        def waiting_for(entry) -> str | None:
            """The first link of ``entry`` whose target (a line kept aside) is not stored yet."""
            for field_name, target in entry.links:
                if target in in_file and target not in accepted:
                    return field_name
            return None

        while ready:
            levels.append({entry.line for entry in ready})
            accepted.update(entry.exported_id for entry in ready)
            ready = [entry for entry in pending if waiting_for(entry) is None]
            pending = [entry for entry in pending if waiting_for(entry) is not None]
        for entry in pending:
            self.summary.reject(entry.line, _LINK_MESSAGES[waiting_for(entry)][2])
        return levels

    def _stored_namespaces(self, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
        return {memory_id: row["namespace"] for memory_id, row in _stored_rows(ids).items()}

    def agree(self) -> None:
        """The final pass: each successor line's ``supersedes`` made to agree with the
        stored links (the module's rules). A chunk of lists is checked with one read; only
        a list that needs a write is read again, locked, and written in a transaction."""
        self.successors.seek(0)
        chunk: list[_SuccessorLine] = []
        for entry in self.successors:
            chunk.append(_SuccessorLine.read(entry, self.stored_id))
            if len(chunk) >= _AGREE_CHUNK:
                self._agree_chunk(chunk)
                chunk = []
        if chunk:
            self._agree_chunk(chunk)

    def _agree_chunk(self, chunk: list["_SuccessorLine"]) -> None:
        rows = _stored_rows({line.id for line in chunk} | {memory_id for line in chunk for memory_id in line.entries})
        for line in chunk:
            successor = rows.get(line.id)
            if successor is None or successor["namespace"] != line.namespace:
                continue  # stored under another id by a concurrent import, which checks it
            listed, linking, dropped = line.agreed(successor, rows, ahead=set())
            if listed != successor["supersedes"] or linking:
                with transaction.atomic():
                    locked = _stored_rows({line.id, *line.entries}, lock=True)
                    successor = locked.get(line.id)
                    if successor is None:
                        continue
                    listed, linking, dropped = line.agreed(successor, locked, ahead=set(successors_of(line.id)))
                    for memory_id in linking:
                        row = locked[memory_id]
                        until = row["valid_until"] or max(successor["valid_from"], row["valid_from"])
                        Memory.objects.filter(pk=memory_id).update(superseded_by=line.id, valid_until=until)
                    if listed != successor["supersedes"]:
                        Memory.objects.filter(pk=line.id).update(supersedes=listed)
            self.summary.supersedes_dropped += dropped


def _stored_rows(ids: set[uuid.UUID], *, lock: bool = False) -> dict[uuid.UUID, dict]:
    """What deciding links needs of the stored memories ``ids`` (locked in id order with ``lock``)."""
    found, ids = {}, sorted(ids)
    for start in range(0, len(ids), _ID_LOOKUP_CHUNK):
        rows = Memory.objects.filter(id__in=ids[start : start + _ID_LOOKUP_CHUNK])
        if lock:
            rows = rows.select_for_update(no_key=True).order_by("pk")
        for row in rows.values("id", "namespace", "superseded_by_id", "supersedes", "valid_from", "valid_until"):
            found[row["id"]] = row
    return found


@dataclass(frozen=True)
class _SuccessorLine:
    """A stored line's ``supersedes`` as the file gave it, for the final pass (``agree``)."""

    line: int
    namespace: str
    id: uuid.UUID  # the stored memory
    entries: tuple[uuid.UUID, ...]  # mapped to the stored ids

    @classmethod
    def read(cls, spooled: bytes, stored_id) -> "_SuccessorLine":
        line, namespace, memory_id, entries = spooled.decode().rstrip("\n").split("\t")
        mapped = (stored_id(uuid.UUID(entry)) for entry in entries.split(","))
        return cls(int(line), namespace, uuid.UUID(memory_id), tuple(dict.fromkeys(mapped)))

    def agreed(self, successor: dict, rows: dict, *, ahead: set) -> tuple[list[uuid.UUID], list[uuid.UUID], int]:
        """(the successor's list, the entries to link to it, the entries left out) for the
        stored ``rows``; ``ahead``: the successor's own successors (a link to one is a cycle)."""
        kept, linking, dropped = {}, [], 0  # kept: an ordered set
        for memory_id in self.entries:
            row = rows.get(memory_id)
            if row is None or row["namespace"] != self.namespace or memory_id == self.id:
                dropped += 1
            elif row["superseded_by_id"] == self.id:
                kept[memory_id] = None
            elif row["superseded_by_id"] is None and memory_id not in ahead:
                kept[memory_id] = None
                linking.append(memory_id)
            else:  # superseded by another memory, or a cycle
                dropped += 1
        listed = [*kept, *(memory_id for memory_id in successor["supersedes"] if memory_id not in kept)]
        return listed, linking, dropped


@dataclass(frozen=True)
class _LinkedLine:
    """What deciding the links needs of a line kept aside (its text is spooled):
    ``links`` holds (field, exported id of the target), ``mergedInto`` first."""

    line: int
    exported_id: uuid.UUID
    namespace: str
    links: tuple[tuple[str, uuid.UUID], ...]

    @classmethod
    def of(cls, row: ImportRow) -> "_LinkedLine | None":
        links = (("mergedInto", row.merged_into), ("supersededBy", row.superseded_by))
        links = tuple((field_name, target) for field_name, target in links if target is not None)
        return cls(row.line, row.exported_id, row.namespace, links) if links else None


def memories_import(
    *,
    lines: Iterable[bytes | str],
    namespace: str | None = None,
    batch_size: int = IMPORT_BATCH_SIZE,
) -> ImportSummary:
    """Store the memories of a JSON Lines stream; ``namespace`` puts every line in that namespace.

    Reads one line at a time and keeps one batch in memory (lines with a link go to a
    temporary file until the rest is stored; the successors' ``supersedes`` to another,
    for the final pass). A bad line is counted in the summary
    and skipped. Raises :class:`ImportInterrupted` (with the summary so far) when
    something else fails, e.g. the embedding provider: the batches before it are stored,
    and running the same import again skips them as duplicates.
    """
    if namespace is not None and not is_valid_namespace(namespace):
        raise InvalidNamespace(namespace_error(namespace))
    summary = ImportSummary()
    space = EmbeddingSpace.configured()
    number = 0
    with tempfile.TemporaryFile() as spool, tempfile.TemporaryFile() as successors:
        importer = _Importer(summary, space, successors)
        try:
            linked: list[_LinkedLine] = []
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
                links = _LinkedLine.of(row)
                if links is not None:
                    linked.append(links)
                    spool.write(b"%d\t%s\n" % (number, text.rstrip("\r\n").encode("utf-8")))
                    continue
                batch.append(row)
                if len(batch) >= batch_size:
                    importer.store(batch)
                    batch = []
            if batch:
                importer.store(batch)
            for level in importer.link_levels(linked):
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
            importer.agree()
        except (Exception, KeyboardInterrupt) as exc:
            raise ImportInterrupted(summary, number, exc) from exc
    return summary
