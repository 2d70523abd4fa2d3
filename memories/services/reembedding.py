"""Re-embedding every memory with another model or dimension (SPEC §4, §7).

The new space is built beside the old one, in a shadow table
``memories_memoryembedding_next`` (the columns of ``MemoryEmbedding`` with the new
``vector(N)``, plus the ``content_hash`` each vector was computed from), and switched in
one transaction. Until the switch the service reads and writes the old table as usual,
so it keeps answering during the run and after an interruption.

1. Fill: memories without a shadow row of the target model for their current content,
   in id order, ``batch_size`` texts per provider call, each batch committed on its
   own. A run that stops (provider down, Ctrl-C, ``max_batches``) is continued by the
   next one: rows already done are skipped. Rows of the target model already in the
   live table (same dimension) are copied, not embedded again.
2. Indexes: every index of the live table is rebuilt on the shadow table under a
   temporary name (the HNSW one with ``maintenance_work_mem`` raised for the build).
3. Catch-up: the same pass again, for memories added or edited meanwhile.
4. Switch, in one transaction: lock the live table against writes (reads continue),
   embed the last stragglers, retire the live table, rename the shadow table, its
   indexes and constraints to the names the migrations gave (read from the catalog at
   run time), drop the retired table.

After the switch the processes must run with the new ``ANIMA_EMBEDDING_*`` settings:
the system check (``memories.checks.check_embedding_space``) refuses the old ones.
Only one run at a time (a PostgreSQL advisory lock).
"""

import hashlib
import re
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice

import numpy as np
from django.conf import settings
from django.db import OperationalError, connection, transaction
from psycopg.errors import LockNotAvailable

from memories.embeddings import EmbeddingError, EmbeddingProvider, ProviderSpec, build_provider
from memories.models import Memory, MemoryEmbedding

EMBEDDING_TABLE = MemoryEmbedding._meta.db_table
SHADOW_TABLE = f"{EMBEDDING_TABLE}_next"
RETIRED_TABLE = f"{EMBEDDING_TABLE}_retired"
MEMORY_TABLE = Memory._meta.db_table
HNSW_INDEX = "embedding_hnsw_cosine"
MODEL_INDEX = "embedding_model_idx"
#: The two indexes the query path needs, used when the live table lacks them.
REQUIRED_INDEXES = {
    HNSW_INDEX: "USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)",
    MODEL_INDEX: "USING btree (embedding_model)",
}
DEFAULT_BATCH_SIZE = 64
DEFAULT_MAINTENANCE_WORK_MEM = "512MB"
#: How long the switch waits for its locks (behind long transactions) before it gives up;
#: nothing is switched then, and the next run tries again.
SWITCH_LOCK_TIMEOUT = "10s"
#: Key of the advisory lock held for the whole run ("anima-reembed").
ADVISORY_LOCK_KEY = int.from_bytes(hashlib.sha256(b"anima-reembed").digest()[:8], "big", signed=True)
_INDEX_DEF = re.compile(r"^CREATE (?P<unique>UNIQUE )?INDEX (?P<name>\S+) ON (?P<table>\S+) (?P<rest>USING .+)$")

MESSAGE_RUNNING = "another reembed is running (advisory lock held); wait for it or stop it first"


class ReembedError(Exception):
    """The run cannot go on; nothing was switched and the old space still serves."""


class _NoProgress:
    def __init__(self, **kwargs):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n=1):
        pass


#: ``progress(total=…, initial=…, desc=…, unit=…)`` returns a context manager with
#: ``update(n)``; ``tqdm`` fits.
ProgressFactory = Callable[..., object]


@dataclass
class ReembedResult:
    model_id: str
    dimensions: int
    total: int = 0
    #: Shadow rows of the target model from an earlier run, or copied from the live table.
    already_done: int = 0
    #: Vectors computed by the provider in this run, in each phase.
    embedded: int = 0
    caught_up: int = 0
    stragglers: int = 0
    batches: int = 0
    #: The live space already was the target: nothing was done.
    already_in_target: bool = False
    switched: bool = False
    index_seconds: float = 0.0
    switch_seconds: float = 0.0


@dataclass(frozen=True)
class EmbeddingTarget(ProviderSpec):
    """The space to move into, and how to reach its provider."""

    def build_provider(self) -> EmbeddingProvider:
        """Through the one factory, ``memories.embeddings.build_provider``."""
        return build_provider(self)

    def environment(self) -> dict[str, str]:
        """What every web and worker process must be started with after the switch."""
        names = {
            "ANIMA_EMBEDDING_PROVIDER": self.provider,
            "ANIMA_EMBEDDING_MODEL": self.model_id,
            "ANIMA_EMBEDDING_DIMENSIONS": str(self.dimensions),
        }
        if self.provider == "openai":
            names["ANIMA_OPENAI_BASE_URL"] = self.base_url
            names["ANIMA_OPENAI_API_KEY"] = "<the key for that server, if it needs one>"  # never echoed
            names["ANIMA_OPENAI_SEND_DIMENSIONS"] = "true" if self.send_dimensions else "false"
        return names


def embedding_target(
    *,
    provider: str,
    model_id: str,
    dimensions: int,
    base_url: str | None = None,
    api_key: str | None = None,
    send_dimensions: bool | None = None,
) -> EmbeddingTarget:
    """Unset OpenAI options default to the current settings (``send_dimensions``: as the
    settings decide it, true for ``text-embedding-3*`` models)."""
    if provider not in ("local", "openai"):
        raise ReembedError(f"unknown provider {provider!r}: local or openai")
    if dimensions < 1:
        raise ReembedError("dimensions must be at least 1")
    if provider == "local":
        return EmbeddingTarget(provider=provider, model_id=model_id, dimensions=dimensions)
    return EmbeddingTarget(
        provider=provider,
        model_id=model_id,
        dimensions=dimensions,
        base_url=base_url or settings.ANIMA_OPENAI_BASE_URL,
        api_key=settings.ANIMA_OPENAI_API_KEY if api_key is None else api_key,
        send_dimensions=model_id.startswith("text-embedding-3") if send_dimensions is None else send_dimensions,
    )


# --- catalog ------------------------------------------------------------------------------------


def _fetchall(sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _execute(sql: str, params=()) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


#: PostgreSQL refuses DDL on a table with deferred foreign-key checks still pending (rows
#: inserted earlier in the same transaction): run those checks now.
_CHECK_DEFERRED = "SET CONSTRAINTS ALL IMMEDIATE"


def _ddl(sql: str) -> None:
    """DDL in a transaction of its own (or a savepoint of the caller's)."""
    with transaction.atomic():
        _execute(_CHECK_DEFERRED)
        _execute(sql)


def embedding_column_type(table: str = EMBEDDING_TABLE) -> str | None:
    """``vector(N)`` of ``table``'s embedding column, or None when the table does not exist."""
    rows = _fetchall(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = to_regclass(%s) AND attname = 'embedding' AND NOT attisdropped",
        [table],
    )
    return rows[0][0] if rows else None


def _plain_indexes(table: str) -> dict[str, str]:
    """Indexes of ``table`` that back no constraint: name → ``pg_get_indexdef``."""
    return dict(
        _fetchall(
            "SELECT ic.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "JOIN pg_class ic ON ic.oid = i.indexrelid "
            "WHERE i.indrelid = to_regclass(%s) AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid)",
            [table],
        )
    )


def _constraints(table: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """(name, type, sorted column names) of every constraint of ``table``."""
    rows = _fetchall(
        "SELECT c.conname, c.contype::text, ARRAY(SELECT a.attname::text FROM unnest(c.conkey) AS k(attnum) "
        "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY 1) "
        "FROM pg_constraint c WHERE c.conrelid = to_regclass(%s)",
        [table],
    )
    return [(name, kind, tuple(columns)) for name, kind, columns in rows]


def _shadow_index_name(name: str) -> str:
    """A stable temporary name (the same in every run) that cannot clash with a live one."""
    return f"reembed_next_{hashlib.sha256(name.encode()).hexdigest()[:16]}"


def _target_indexes() -> dict[str, str]:
    """Canonical name → ``USING …`` of each index the shadow table gets."""
    indexes = {}
    for name, definition in _plain_indexes(EMBEDDING_TABLE).items():
        match = _INDEX_DEF.match(definition)
        if match is None or match["unique"]:
            raise ReembedError(f"cannot copy index {name} of {EMBEDDING_TABLE}: {definition}")
        indexes[name] = match["rest"]
    for name, rest in REQUIRED_INDEXES.items():
        indexes.setdefault(name, rest)
    return indexes


# --- the phases -----------------------------------------------------------------------------------


def _live_space_is_target(model_id: str, dimensions: int) -> bool:
    if embedding_column_type() != f"vector({dimensions})":
        return False
    rows = _fetchall(
        f"SELECT EXISTS (SELECT 1 FROM {EMBEDDING_TABLE} WHERE embedding_model <> %s), "
        f"EXISTS (SELECT 1 FROM {MEMORY_TABLE} m WHERE NOT EXISTS "
        f"(SELECT 1 FROM {EMBEDDING_TABLE} e WHERE e.memory_id = m.id))",
        [model_id],
    )
    other_model, unembedded = rows[0]
    return not other_model and not unembedded


def _ensure_shadow_table(dimensions: int) -> None:
    existing = embedding_column_type(SHADOW_TABLE)
    if existing is not None and existing != f"vector({dimensions})":
        _ddl(f"DROP TABLE {SHADOW_TABLE}")  # an earlier run aimed at another dimension
    # ON DELETE CASCADE: a memory deleted during the run takes its shadow row along
    # (Django's own cascade does not know this table).
    _ddl(
        f"CREATE TABLE IF NOT EXISTS {SHADOW_TABLE} ("
        f"memory_id uuid NOT NULL PRIMARY KEY REFERENCES {MEMORY_TABLE}(id) "
        "ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED, "
        "namespace varchar(64) NOT NULL, "
        f"embedding vector({dimensions}) NOT NULL, "
        "embedding_model varchar(200) NOT NULL, "
        "truncated boolean NOT NULL, "
        "content_hash varchar(64) NOT NULL)"
    )


def _copy_target_rows_from_live(model_id: str, dimensions: int) -> None:
    """Vectors of the target model already in the live table need no model call."""
    if embedding_column_type() != f"vector({dimensions})":
        return
    _execute(
        f"INSERT INTO {SHADOW_TABLE} (memory_id, namespace, embedding, embedding_model, truncated, content_hash) "
        f"SELECT e.memory_id, e.namespace, e.embedding, e.embedding_model, e.truncated, m.content_hash "
        f"FROM {EMBEDDING_TABLE} e JOIN {MEMORY_TABLE} m ON m.id = e.memory_id WHERE e.embedding_model = %s "
        "ON CONFLICT (memory_id) DO NOTHING",
        [model_id],
    )


_DONE = (
    f"EXISTS (SELECT 1 FROM {SHADOW_TABLE} s "
    "WHERE s.memory_id = m.id AND s.embedding_model = %s AND s.content_hash = m.content_hash)"
)
#: Memory ids examined per statement while looking for pending ones.
ID_WINDOW = 2000


def _counts(model_id: str) -> tuple[int, int]:
    """(all memories, memories still to embed)."""
    rows = _fetchall(f"SELECT count(*), count(*) FILTER (WHERE NOT {_DONE}) FROM {MEMORY_TABLE} m", [model_id])
    return rows[0]


def _pending_ids(model_id: str):
    """Ids of memories without a shadow vector of ``model_id`` for their current content, in
    id order. Each statement reads one window of the primary key, so the cost stays
    proportional to the table however many rows an earlier run did."""
    after = None
    while True:
        if after is None:
            sql, params = f"SELECT m.id, {_DONE} FROM {MEMORY_TABLE} m ORDER BY m.id LIMIT %s", [model_id, ID_WINDOW]
        else:
            sql = f"SELECT m.id, {_DONE} FROM {MEMORY_TABLE} m WHERE m.id > %s ORDER BY m.id LIMIT %s"
            params = [model_id, after, ID_WINDOW]
        rows = _fetchall(sql, params)
        if not rows:
            return
        yield from (memory_id for memory_id, done in rows if not done)
        after = rows[-1][0]


def _vector_text(vector: np.ndarray) -> str:
    # numpy prints each float32 as the shortest decimal that reads back the same.
    return "[" + ",".join(map(str, np.asarray(vector, dtype=np.float32))) + "]"


def _store_batch(provider: EmbeddingProvider, memory_ids: list) -> int:
    rows = _fetchall(f"SELECT id, content, content_hash FROM {MEMORY_TABLE} WHERE id = ANY(%s)", [memory_ids])
    if not rows:
        return 0
    vectors = provider.embed_many([content for _, content, _ in rows])
    if len(vectors) != len(rows) or any(v.vector.shape != (provider.dimensions,) for v in vectors):
        raise EmbeddingError("the provider answered vectors of the wrong count or dimension")
    params = [provider.model_id]
    for (memory_id, _, digest), vector in zip(rows, vectors):
        params.extend([memory_id, _vector_text(vector.vector), vector.truncated, digest])
    # Joined with the memory table: a memory deleted since it was read is left out.
    _execute(
        f"INSERT INTO {SHADOW_TABLE} (memory_id, namespace, embedding, embedding_model, truncated, content_hash) "
        f"SELECT m.id, m.namespace, v.embedding::vector, %s, v.truncated, v.content_hash "
        f"FROM (VALUES {', '.join(['(%s::uuid, %s, %s, %s)'] * len(rows))}) "
        f"AS v(memory_id, embedding, truncated, content_hash) JOIN {MEMORY_TABLE} m ON m.id = v.memory_id "
        "ON CONFLICT (memory_id) DO UPDATE SET namespace = EXCLUDED.namespace, embedding = EXCLUDED.embedding, "
        "embedding_model = EXCLUDED.embedding_model, truncated = EXCLUDED.truncated, "
        "content_hash = EXCLUDED.content_hash",
        params,
    )
    return len(rows)


def _fill(
    provider: EmbeddingProvider,
    *,
    batch_size: int,
    max_batches: int | None = None,
    on_batch: Callable[[int], None] = lambda n: None,
) -> tuple[int, int, bool]:
    """Embed the pending memories, ``batch_size`` texts per provider call, each batch
    committed by itself. Returns (embedded, batches, complete)."""
    embedded = batches = 0
    pending = _pending_ids(provider.model_id)
    while True:
        batch = list(islice(pending, batch_size))
        if not batch:
            return embedded, batches, True
        if max_batches is not None and batches >= max_batches:
            return embedded, batches, False
        stored = _store_batch(provider, batch)
        embedded += stored
        batches += 1
        on_batch(stored)


def _build_indexes(indexes: dict[str, str], maintenance_work_mem: str) -> None:
    """Every index of the live table on the shadow table, under temporary names; an index
    an earlier run built is kept."""
    for name, rest in indexes.items():
        with transaction.atomic():
            _execute(_CHECK_DEFERRED)
            _execute("SELECT set_config('maintenance_work_mem', %s, true)", [maintenance_work_mem])
            _execute(f"CREATE INDEX IF NOT EXISTS {_shadow_index_name(name)} ON {SHADOW_TABLE} {rest}")


def _switch(provider: EmbeddingProvider, *, batch_size: int, maintenance_work_mem: str) -> int:
    """Swap the tables in one transaction; returns the stragglers embedded under the lock."""
    try:
        return _switch_transaction(provider, batch_size=batch_size, maintenance_work_mem=maintenance_work_mem)
    except OperationalError as exc:
        if isinstance(exc.__cause__, LockNotAvailable):
            raise ReembedError(
                f"could not lock {EMBEDDING_TABLE} within {SWITCH_LOCK_TIMEOUT} (a long transaction holds it); "
                "nothing was switched — run the same command again"
            ) from None
        raise


def _switch_transaction(provider: EmbeddingProvider, *, batch_size: int, maintenance_work_mem: str) -> int:
    with transaction.atomic():
        _execute("SELECT set_config('lock_timeout', %s, true)", [SWITCH_LOCK_TIMEOUT])
        # EXCLUSIVE: reads go on, writes to the live table wait for the switch.
        _execute(f"LOCK TABLE {EMBEDDING_TABLE} IN EXCLUSIVE MODE")
        stragglers, _, _ = _fill(provider, batch_size=batch_size)
        _execute(_CHECK_DEFERRED)
        indexes = _target_indexes()
        _build_indexes(indexes, maintenance_work_mem)  # a no-op unless the live table gained one
        old_constraints = _constraints(EMBEDDING_TABLE)
        _execute(f"ALTER TABLE {SHADOW_TABLE} DROP COLUMN content_hash")
        new_constraints = _constraints(SHADOW_TABLE)
        _execute(f"ALTER TABLE {EMBEDDING_TABLE} RENAME TO {RETIRED_TABLE}")
        _execute(f"DROP TABLE {RETIRED_TABLE}")  # frees the index and constraint names
        _execute(f"ALTER TABLE {SHADOW_TABLE} RENAME TO {EMBEDDING_TABLE}")
        for name in indexes:
            _execute(f"ALTER INDEX {_shadow_index_name(name)} RENAME TO {name}")
        for old_name, kind, columns in old_constraints:
            matches = [name for name, k, c in new_constraints if (k, c) == (kind, columns)]
            if len(matches) == 1 and matches[0] != old_name:
                _execute(f"ALTER TABLE {EMBEDDING_TABLE} RENAME CONSTRAINT {matches[0]} TO {old_name}")
    _execute(f"ANALYZE {EMBEDDING_TABLE}")  # planner statistics for the new table
    return stragglers


@contextmanager
def _single_run():
    if not _fetchall("SELECT pg_try_advisory_lock(%s)", [ADVISORY_LOCK_KEY])[0][0]:
        raise ReembedError(MESSAGE_RUNNING)
    try:
        yield
    finally:
        _execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK_KEY])


def embeddings_reembed(
    *,
    provider: EmbeddingProvider,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_batches: int | None = None,
    maintenance_work_mem: str = DEFAULT_MAINTENANCE_WORK_MEM,
    progress: ProgressFactory = _NoProgress,
) -> ReembedResult:
    """Move every stored vector into ``provider``'s space (see the module docstring).

    ``max_batches`` stops the fill after that many provider calls without switching
    (``result.switched`` is false); the next run continues. Raises
    :class:`~memories.embeddings.base.EmbeddingError` when the provider fails: the
    batches before it are kept, nothing is switched.
    """
    result = ReembedResult(model_id=provider.model_id, dimensions=provider.dimensions)
    with _single_run():
        if _live_space_is_target(provider.model_id, provider.dimensions):
            _ddl(f"DROP TABLE IF EXISTS {SHADOW_TABLE}")
            result.already_in_target = True
            return result
        _ensure_shadow_table(provider.dimensions)
        _copy_target_rows_from_live(provider.model_id, provider.dimensions)
        total, pending = _counts(provider.model_id)
        result.total, result.already_done = total, total - pending
        with progress(total=total, initial=total - pending, desc="re-embedding", unit="memory") as bar:
            result.embedded, result.batches, complete = _fill(
                provider, batch_size=batch_size, max_batches=max_batches, on_batch=bar.update
            )
        if not complete:
            return result
        started = time.monotonic()
        _build_indexes(_target_indexes(), maintenance_work_mem)
        result.index_seconds = time.monotonic() - started
        result.caught_up, _, _ = _fill(provider, batch_size=batch_size)
        started = time.monotonic()
        result.stragglers = _switch(provider, batch_size=batch_size, maintenance_work_mem=maintenance_work_mem)
        result.switch_seconds = time.monotonic() - started
        result.embedded += result.caught_up + result.stragglers
        result.switched = True
    return result


def reembed_abandon() -> bool:
    """Drop the shadow table of an unfinished run; the live space is untouched."""
    with _single_run():
        existed = embedding_column_type(SHADOW_TABLE) is not None
        _ddl(f"DROP TABLE IF EXISTS {SHADOW_TABLE}")
    return existed
