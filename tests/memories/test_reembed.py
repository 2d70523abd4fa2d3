"""``manage.py reembed`` (SPEC §4, §7): from the bundled 384-dimension space to a REAL
OpenAI-compatible HTTP server on 127.0.0.1 answering deterministic 768-dimension vectors,
and back. The DDL runs inside each test's transaction, so the rollback restores the
original table; the last test checks that it did."""

import hashlib
import io
import json
import math
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from memories import embeddings
from memories.checks import check_embedding_space
from memories.embeddings.base import EmbeddingProvider
from memories.models import Memory, MemoryEmbedding
from memories.services import reembedding
from memories.search import CandidateSearch, candidate_pool_queryset
from memories.services.reembedding import (
    ADVISORY_LOCK_KEY,
    SHADOW_TABLE,
    embedding_column_type,
    embedding_target,
    embeddings_reembed,
    reembed_abandon,
)
from memories.text import content_hash, normalized_hash
from tests.api_paths import QUERY
from tests.factories import DIM as OLD_DIMENSIONS, MODEL as OLD_MODEL, make_memories

pytestmark = pytest.mark.django_db

NEW_MODEL = "test-embed-768"
NEW_DIMENSIONS = 768
MEMORY_COUNT = 150
BATCH = 20


def server_vector(text: str, dimensions: int = NEW_DIMENSIONS) -> list[float]:
    """What the test server answers for ``text``: deterministic, not unit length."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    return (np.random.default_rng(seed).standard_normal(dimensions) * 2.0 + 0.3).tolist()


def normalised(values) -> np.ndarray:
    vector = np.asarray(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


class EmbeddingServer:
    """A real OpenAI-compatible server on 127.0.0.1. After ``fail_after`` successful
    answers it answers 500; it records the texts of every request and whether it served them."""

    def __init__(self):
        self.fail_after: int | None = None
        self.requests: list[tuple[list[str], int]] = []  # (texts, status)
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.owner = self
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def answer(self, payload) -> tuple[int, dict]:
        texts = list(payload["input"])
        with self._lock:
            served = sum(1 for _, status in self.requests if status == 200)
            status = 500 if self.fail_after is not None and served >= self.fail_after else 200
            self.requests.append((texts, status))
        if status != 200:
            return status, {"error": {"message": "overloaded", "type": "server_error"}}
        dimensions = payload.get("dimensions", NEW_DIMENSIONS)
        rows = [
            {"object": "embedding", "index": i, "embedding": server_vector(text, dimensions)}
            for i, text in enumerate(texts)
        ]
        return 200, {"object": "list", "data": rows, "model": payload["model"]}

    def served_texts(self) -> list[str]:
        return [text for texts, status in self.requests if status == 200 for text in texts]

    def served_requests(self) -> int:
        return sum(1 for _, status in self.requests if status == 200)


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        status, body = self.server.owner.answer(payload)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):
        pass


@pytest.fixture
def server(settings):
    settings.ANIMA_OPENAI_TIMEOUT = 5
    settings.ANIMA_OPENAI_RETRIES = 0
    instance = EmbeddingServer()
    instance._thread.start()
    yield instance
    instance._httpd.shutdown()
    instance._httpd.server_close()
    instance._thread.join(timeout=5)


@pytest.fixture
def stored(db):
    """Memories in the bundled model's 384-dimension space, two namespaces, some deleted."""
    rng = np.random.default_rng(0)
    first = make_memories(
        [{"content": f"memory number {i}", "vector": rng.standard_normal(OLD_DIMENSIONS)} for i in range(100)]
    )
    second = make_memories(
        [{"content": f"their memory {i}", "vector": rng.standard_normal(OLD_DIMENSIONS)} for i in range(50)],
        namespace="other",
    )
    Memory.objects.filter(pk__in=[m.pk for m in first[:5]]).update(deleted_at=timezone.now())
    return first + second


def reembed(server, *extra) -> str:
    out = io.StringIO()
    call_command(
        "reembed", "--provider", "openai", "--model", NEW_MODEL, "--dimensions", str(NEW_DIMENSIONS),
        "--base-url", server.base_url, "--api-key", "", "--batch-size", str(BATCH), "--no-progress", *extra,
        stdout=out, stderr=io.StringIO(),
    )  # fmt: skip
    return out.getvalue()


def schema_names() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'memories_memoryembedding'")
        indexes = sorted(row[0] for row in cursor.fetchall())
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = to_regclass('memories_memoryembedding')"
        )
        constraints = sorted(row[0] for row in cursor.fetchall())
    return {"indexes": indexes, "constraints": constraints}


def table_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        return cursor.fetchone()[0]


def shadow_rows() -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {SHADOW_TABLE}")
        return cursor.fetchone()[0]


@pytest.fixture
def new_space(settings, server):
    """The settings (and process provider) of the new space; the old provider comes back after."""
    previous = embeddings.get_provider()

    def use():
        settings.ANIMA_EMBEDDING_PROVIDER = "openai"
        settings.ANIMA_EMBEDDING_MODEL = NEW_MODEL
        settings.ANIMA_EMBEDDING_DIMENSIONS = NEW_DIMENSIONS
        settings.ANIMA_OPENAI_BASE_URL = server.base_url
        settings.ANIMA_OPENAI_API_KEY = ""
        settings.ANIMA_OPENAI_SEND_DIMENSIONS = False
        embeddings.set_provider(embeddings.build_provider())

    yield use
    embeddings.set_provider(previous)


# --- a complete run ---------------------------------------------------------------------------


def test_every_row_is_re_embedded_with_the_new_model_and_dimension(stored, server):
    output = reembed(server)

    assert embedding_column_type() == f"vector({NEW_DIMENSIONS})"
    rows = list(MemoryEmbedding.objects.select_related("memory"))
    assert len(rows) == MEMORY_COUNT  # soft-deleted memories keep a vector too (restore)
    for row in rows:
        assert row.embedding_model == NEW_MODEL
        assert row.namespace == row.memory.namespace
        assert row.truncated is False
        assert np.allclose(np.asarray(row.embedding), normalised(server_vector(row.memory.content)), atol=1e-6)
    assert server.served_requests() == math.ceil(MEMORY_COUNT / BATCH)
    assert f"switched to {NEW_MODEL} ({NEW_DIMENSIONS} dimensions)" in output


def test_the_hnsw_index_is_rebuilt_and_every_schema_name_is_kept(stored, server):
    before = schema_names()

    reembed(server)

    assert schema_names() == before
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'memories_memoryembedding' "
            "AND indexname = 'embedding_hnsw_cosine'"
        )
        (definition,) = cursor.fetchone()
    assert "USING hnsw (embedding vector_cosine_ops)" in definition
    assert "m='16'" in definition and "ef_construction='64'" in definition
    assert not table_exists(SHADOW_TABLE)
    assert not table_exists("memories_memoryembedding_retired")


def test_the_query_plan_uses_the_rebuilt_hnsw_index(stored, server):
    reembed(server)

    # The table is tiny, so the planner would rightly sort it; ask whether the index can serve the order.
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
    pool = candidate_pool_queryset(
        search=CandidateSearch(namespace="default", vector=normalised(server_vector("x")), model_id=NEW_MODEL), size=10
    )
    assert "embedding_hnsw_cosine" in pool.explain()


def test_the_system_check_passes_with_the_new_settings_only(stored, server, settings):
    output = reembed(server)

    assert [e.id for e in check_embedding_space(databases=["default"])] == ["anima.E004", "anima.E005"]
    settings.ANIMA_EMBEDDING_PROVIDER = "openai"
    settings.ANIMA_EMBEDDING_MODEL = NEW_MODEL
    settings.ANIMA_EMBEDDING_DIMENSIONS = NEW_DIMENSIONS
    assert check_embedding_space(databases=["default"]) == []
    for line in (
        "ANIMA_EMBEDDING_PROVIDER=openai",
        f"ANIMA_EMBEDDING_MODEL={NEW_MODEL}",
        f"ANIMA_EMBEDDING_DIMENSIONS={NEW_DIMENSIONS}",
        f"ANIMA_OPENAI_BASE_URL={server.base_url}",
    ):
        assert line in output


def test_a_query_through_the_api_works_in_the_new_space(stored, server, new_space, post_json):
    reembed(server)
    new_space()

    response = post_json(QUERY, {"query": "memory number 42", "limit": 5})

    assert response.status_code == 200, response.json()
    hits = response.json()["data"]["memories"]
    assert hits[0]["content"] == "memory number 42"
    assert hits[0]["similarity"] == pytest.approx(1.0, abs=1e-5)
    assert response.json()["meta"]["embeddingProvider"] == "openai"


def test_memories_added_after_the_switch_go_into_the_new_space(stored, server, new_space, post_json):
    reembed(server)
    new_space()

    response = post_json("/api/v1/memories/add", {"content": "Added after the switch."})

    assert response.status_code == 201
    stored_row = MemoryEmbedding.objects.get(memory_id=response.json()["data"]["memory"]["id"])
    assert stored_row.embedding_model == NEW_MODEL
    assert len(np.asarray(stored_row.embedding)) == NEW_DIMENSIONS


# --- interruption and resume ----------------------------------------------------------------------


def test_a_run_the_server_breaks_off_is_continued_by_the_next_run(stored, server, fake_embedder, post_json):
    server.fail_after = 3

    with pytest.raises(CommandError, match="Run the same command again"):
        reembed(server)

    # Nothing switched: the old space still serves, and the system check still passes.
    assert embedding_column_type() == f"vector({OLD_DIMENSIONS})"
    assert set(MemoryEmbedding.objects.values_list("embedding_model", flat=True)) == {OLD_MODEL}
    assert check_embedding_space(databases=["default"]) == []
    assert post_json(QUERY, {"query": "memory number 7"}).status_code == 200
    assert shadow_rows() == 3 * BATCH

    server.fail_after = None
    reembed(server)

    served = server.served_texts()
    assert sorted(served) == sorted(m.content for m in stored)  # each text embedded once over both runs
    assert server.served_requests() == math.ceil(MEMORY_COUNT / BATCH)
    assert set(MemoryEmbedding.objects.values_list("embedding_model", flat=True)) == {NEW_MODEL}


def test_limit_batches_stops_before_the_switch_and_the_next_run_finishes(stored, server):
    output = reembed(server, "--limit-batches", "2")

    assert "stopped after 2 batches" in output
    assert f"{2 * BATCH} of {MEMORY_COUNT} memories" in output
    assert embedding_column_type() == f"vector({OLD_DIMENSIONS})"
    assert server.served_requests() == 2

    output = reembed(server)

    assert f"{2 * BATCH} from an earlier run" in output
    assert server.served_requests() == math.ceil(MEMORY_COUNT / BATCH)
    assert MemoryEmbedding.objects.filter(embedding_model=NEW_MODEL).count() == MEMORY_COUNT


class HookedProvider(EmbeddingProvider):
    """Wraps the target provider and runs ``hooks[n]`` before its n-th call (1-based)."""

    def __init__(self, inner: EmbeddingProvider, hooks: dict):
        self.inner, self.hooks, self.calls = inner, hooks, 0
        self.name, self.model_id, self.dimensions = inner.name, inner.model_id, inner.dimensions

    def embed_many(self, texts):
        self.calls += 1
        if self.calls in self.hooks:
            self.hooks[self.calls]()
        return self.inner.embed_many(texts)


def add_memory_with_id(memory_id: str, content: str) -> None:
    make_memories([{"id": uuid.UUID(memory_id), "content": content, "vector": np.ones(OLD_DIMENSIONS)}])


def test_memories_added_or_edited_during_the_run_are_caught_up(stored, server):
    first_id = min(m.id for m in stored)  # in the first batch, whose texts are read already

    def during_fill():
        add_memory_with_id("00000000-0000-0000-0000-000000000001", "added during the fill")
        Memory.objects.filter(pk=first_id).update(
            content="edited during the fill",
            content_hash=content_hash("edited during the fill"),
            normalized_hash=normalized_hash("edited during the fill"),
        )
        MemoryEmbedding.objects.filter(memory_id=first_id).update(embedding=np.ones(OLD_DIMENSIONS))

    def during_catch_up():
        add_memory_with_id("00000000-0000-0000-0000-000000000002", "added during the catch-up")

    fill_calls = math.ceil(MEMORY_COUNT / BATCH)
    target = embedding_target(
        provider="openai", model_id=NEW_MODEL, dimensions=NEW_DIMENSIONS, base_url=server.base_url, api_key=""
    )
    provider = HookedProvider(target.build_provider(), {1: during_fill, fill_calls + 1: during_catch_up})

    result = embeddings_reembed(provider=provider, batch_size=BATCH)

    assert result.switched
    assert (result.caught_up, result.stragglers) == (2, 1)
    for row in MemoryEmbedding.objects.select_related("memory"):
        assert row.embedding_model == NEW_MODEL
        assert np.allclose(np.asarray(row.embedding), normalised(server_vector(row.memory.content)), atol=1e-6)
    assert MemoryEmbedding.objects.count() == MEMORY_COUNT + 2


def test_a_memory_deleted_during_the_run_leaves_no_vector_behind(stored, server):
    victim = stored[-1]

    def delete_one():
        Memory.objects.filter(pk=victim.pk).delete()

    target = embedding_target(
        provider="openai", model_id=NEW_MODEL, dimensions=NEW_DIMENSIONS, base_url=server.base_url, api_key=""
    )
    provider = HookedProvider(target.build_provider(), {3: delete_one})

    embeddings_reembed(provider=provider, batch_size=BATCH)

    assert MemoryEmbedding.objects.count() == MEMORY_COUNT - 1
    assert not MemoryEmbedding.objects.filter(memory_id=victim.pk).exists()


# --- other runs -------------------------------------------------------------------------------------


def test_reembedding_back_to_the_bundled_model_restores_the_original_space(stored, server):
    before = schema_names()
    reembed(server)

    out = io.StringIO()
    call_command(
        "reembed", "--provider", "local", "--model", OLD_MODEL, "--dimensions", str(OLD_DIMENSIONS),
        "--batch-size", "64", "--no-progress", stdout=out, stderr=io.StringIO(),
    )  # fmt: skip

    assert embedding_column_type() == f"vector({OLD_DIMENSIONS})"
    assert schema_names() == before
    assert check_embedding_space(databases=["default"]) == []
    assert "ANIMA_EMBEDDING_PROVIDER=local" in out.getvalue()
    sample = MemoryEmbedding.objects.select_related("memory").order_by("memory_id")[:5]
    expected = embeddings.get_provider().embed_many([row.memory.content for row in sample])
    for row, embedding in zip(sample, expected, strict=True):
        assert row.embedding_model == OLD_MODEL
        assert np.allclose(np.asarray(row.embedding), embedding.vector, atol=1e-5)


def test_reembedding_into_the_current_space_changes_nothing(stored):
    before = dict(MemoryEmbedding.objects.values_list("memory_id", "embedding_model"))
    out = io.StringIO()

    call_command(
        "reembed", "--provider", "local", "--model", OLD_MODEL, "--dimensions", str(OLD_DIMENSIONS),
        "--no-progress", stdout=out,
    )  # fmt: skip

    assert "nothing to do" in out.getvalue()
    assert dict(MemoryEmbedding.objects.values_list("memory_id", "embedding_model")) == before
    assert not table_exists(SHADOW_TABLE)


def test_abandon_drops_the_shadow_table_of_an_unfinished_run(stored, server):
    reembed(server, "--limit-batches", "1")
    assert table_exists(SHADOW_TABLE)
    out = io.StringIO()

    call_command("reembed", "--abandon", stdout=out)

    assert not table_exists(SHADOW_TABLE)
    assert f"dropped {SHADOW_TABLE}" in out.getvalue()
    assert embedding_column_type() == f"vector({OLD_DIMENSIONS})"


def test_a_run_aimed_at_another_dimension_replaces_an_unfinished_shadow_table(stored, server, settings):
    reembed(server, "--limit-batches", "1")
    assert embedding_column_type(SHADOW_TABLE) == f"vector({NEW_DIMENSIONS})"

    out = io.StringIO()
    call_command(
        "reembed", "--provider", "openai", "--model", "test-embed-384", "--dimensions", "384",
        "--base-url", server.base_url, "--api-key", "", "--send-dimensions", "--limit-batches", "1",
        "--no-progress", stdout=out, stderr=io.StringIO(),
    )  # fmt: skip

    assert embedding_column_type(SHADOW_TABLE) == "vector(384)"
    assert shadow_rows() == 64  # the default batch size; the 768-dimension rows went with the old table


def test_a_second_run_at_the_same_time_is_refused(stored, server):
    other = connection.copy()
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
            assert cursor.fetchone()[0]
        with pytest.raises(CommandError, match="another reembed is running"):
            reembed(server)
    finally:
        other.close()
    assert server.requests == []


def test_a_switch_that_cannot_get_its_lock_gives_up_and_the_next_run_finishes(stored, server, monkeypatch):
    monkeypatch.setattr(reembedding, "SWITCH_LOCK_TIMEOUT", "200ms")
    other = connection.copy()
    try:
        other.set_autocommit(False)
        with other.cursor() as cursor:  # a long transaction that writes to the live table
            cursor.execute("LOCK TABLE memories_memoryembedding IN ROW EXCLUSIVE MODE")
        with pytest.raises(CommandError, match="could not lock memories_memoryembedding within 200ms"):
            reembed(server)
    finally:
        other.rollback()
        other.close()
    assert embedding_column_type() == f"vector({OLD_DIMENSIONS})"
    requests_so_far = server.served_requests()
    # The usual timeout again: an autovacuum of the table may hold it for a moment.
    monkeypatch.setattr(reembedding, "SWITCH_LOCK_TIMEOUT", "10s")

    reembed(server)

    assert server.served_requests() == requests_so_far  # everything was embedded already
    assert embedding_column_type() == f"vector({NEW_DIMENSIONS})"


def test_missing_arguments_are_named():
    with pytest.raises(CommandError, match="--model, --dimensions required"):
        call_command("reembed", "--provider", "openai")


# --- with real commits --------------------------------------------------------------------------------


@pytest.fixture
def committed_space_restored():
    """For tests whose DDL commits: whatever happens, leave no shadow table (it would block
    the flush) and the 384-dimension column behind."""
    yield
    reembed_abandon()
    if embedding_column_type() != f"vector({OLD_DIMENSIONS})":
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM memories_memoryembedding")
            cursor.execute(f"ALTER TABLE memories_memoryembedding ALTER COLUMN embedding TYPE vector({OLD_DIMENSIONS})")


def old_space_hits(vector) -> list:
    """A candidate-pool read of the old space from another connection (another thread)."""
    hits = []

    def read():
        from django.db import connection as thread_connection

        try:
            hits.extend(
                candidate_pool_queryset(
                    search=CandidateSearch(namespace="default", vector=vector, model_id=OLD_MODEL), size=5
                )
            )
        finally:
            thread_connection.close()

    thread = threading.Thread(target=read)
    thread.start()
    thread.join(timeout=30)
    return hits


@pytest.mark.django_db(transaction=True)
def test_committed_runs_resume_switch_and_switch_back_while_others_keep_reading(server, committed_space_restored):
    before = schema_names()
    vectors = np.random.default_rng(1).standard_normal((60, OLD_DIMENSIONS))
    make_memories([{"content": f"committed memory {i}", "vector": v} for i, v in enumerate(vectors)])

    reembed(server, "--limit-batches", "1")  # committed; the old space still serves other connections
    assert shadow_rows() == BATCH
    assert len(old_space_hits(vectors[0])) == 5

    target = embedding_target(
        provider="openai", model_id=NEW_MODEL, dimensions=NEW_DIMENSIONS, base_url=server.base_url, api_key=""
    )
    reads_during_fill = []

    def read_the_old_space():
        reads_during_fill.append(old_space_hits(vectors[1]))

    provider = HookedProvider(target.build_provider(), {1: read_the_old_space})
    result = embeddings_reembed(provider=provider, batch_size=BATCH)

    assert result.switched and result.already_done == BATCH
    assert len(reads_during_fill[0]) == 5
    assert server.served_requests() == math.ceil(60 / BATCH)
    assert embedding_column_type() == f"vector({NEW_DIMENSIONS})"
    assert schema_names() == before

    call_command(
        "reembed", "--provider", "local", "--model", OLD_MODEL, "--dimensions", str(OLD_DIMENSIONS),
        "--no-progress", stdout=io.StringIO(), stderr=io.StringIO(),
    )  # fmt: skip

    assert embedding_column_type() == f"vector({OLD_DIMENSIONS})"
    assert schema_names() == before
    assert set(MemoryEmbedding.objects.values_list("embedding_model", flat=True)) == {OLD_MODEL}


# --- the database after the tests above -------------------------------------------------------------


def test_zz_the_test_database_is_back_in_the_original_space():
    """Runs after the tests above (file order): their DDL was rolled back with them."""
    assert embedding_column_type() == f"vector({OLD_DIMENSIONS})"
    assert not table_exists(SHADOW_TABLE)
    names = schema_names()
    assert "embedding_hnsw_cosine" in names["indexes"] and "embedding_model_idx" in names["indexes"]
    assert "memories_memoryembedding_pkey" in names["constraints"]
