"""Embedding providers through the API: the OpenAI-compatible provider against real HTTP
servers on 127.0.0.1 (no mocked transport), the embedding cache, and the local model's
truncation flag (SPEC §4)."""

import hashlib
import json
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from memories import embeddings
from memories.embeddings import EmbeddingError
from memories.embeddings.local import BUNDLED_MODEL_ID, LocalProvider
from memories.models import Memory, MemoryEmbedding
from tests.api_paths import ADD, QUERY
from tests.factories import DIM as DIMENSIONS, MODEL

pytestmark = pytest.mark.django_db

#: The server does not answer a request handled by ``hang`` before the test ends.
HANG = object()


def server_vector(text: str, dimensions: int = DIMENSIONS) -> list[float]:
    """What the test server answers for ``text``: deterministic, deliberately not unit length."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    return (np.random.default_rng(seed).standard_normal(dimensions) * 3.0 + 0.5).tolist()


def normalised(values) -> np.ndarray:
    vector = np.asarray(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def _json(status: int, body) -> tuple[int, bytes, str]:
    return status, json.dumps(body).encode(), "application/json"


def ok(payload):
    """A correct OpenAI answer, rows in reverse order (clients must match them by ``index``)."""
    rows = [{"object": "embedding", "index": i, "embedding": server_vector(text)} for i, text in enumerate(payload["input"])]
    return _json(200, {"object": "list", "data": rows[::-1], "model": payload["model"], "usage": {"prompt_tokens": 1}})


def status(code: int):
    return lambda payload: _json(code, {"error": {"message": f"status {code}", "type": "server_error"}})


def hang(payload):
    return HANG


def wrong_dimension(payload):
    rows = [{"index": i, "embedding": server_vector(text, DIMENSIONS - 1)} for i, text in enumerate(payload["input"])]
    return _json(200, {"data": rows})


def too_few_vectors(payload):
    return _json(200, {"data": []})


def missing_data(payload):
    return _json(200, {"object": "list", "embeddings": [server_vector(text) for text in payload["input"]]})


def not_json(payload):
    return 200, b"<html>upstream proxy error</html>", "text/html"


def non_numeric(payload):
    return _json(200, {"data": [{"index": i, "embedding": ["x"] * DIMENSIONS} for i in range(len(payload["input"]))]})


def nan_values(payload):
    # json.dumps writes NaN, and json.loads (httpx's response.json) accepts it.
    return _json(200, {"data": [{"index": i, "embedding": [float("nan")] * DIMENSIONS} for i in range(len(payload["input"]))]})


def zero_vector(payload):
    return _json(200, {"data": [{"index": i, "embedding": [0.0] * DIMENSIONS} for i in range(len(payload["input"]))]})


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    headers: dict  # lower-case names
    payload: object  # the decoded JSON body, or None
    at: float  # time.monotonic() on arrival


class EmbeddingServer:
    """A real HTTP server on 127.0.0.1 that answers from ``script`` (one responder per
    request, in order) and then with ``default``; it records every request it sees."""

    def __init__(self):
        self.script: list = []
        self.default = ok
        self.requests: list[SeenRequest] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.owner = self
        self.port = self._httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self):
        self._thread.start()

    def stop(self):
        self.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def answer(self, request: SeenRequest):
        with self._lock:
            self.requests.append(request)
            responder = self.script.pop(0) if self.script else self.default
        return responder(request.payload)

    def embedding_requests(self, text: str | None = None) -> list[SeenRequest]:
        return [
            r
            for r in self.requests
            if r.method == "POST"
            and r.path == "/v1/embeddings"
            and (text is None or (isinstance(r.payload, dict) and text in r.payload.get("input", [])))
        ]


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = None
        server: EmbeddingServer = self.server.owner
        seen = SeenRequest(
            method="POST",
            path=self.path,
            headers={name.lower(): value for name, value in self.headers.items()},
            payload=payload,
            at=time.monotonic(),
        )
        result = server.answer(seen) if self.path == "/v1/embeddings" else _json(404, {"error": "no such route"})
        if result is HANG:
            server.release.wait(10)
            return
        code, body, content_type = result
        try:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client gave up
            pass

    def log_message(self, format, *args):
        pass


@pytest.fixture
def embedding_server():
    server = EmbeddingServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def use_openai(settings):
    """``use_openai(base_url, **setting_overrides)`` switches the process to the OpenAI
    provider built from the settings; the previous provider comes back afterwards."""
    previous = embeddings.get_provider()

    def use(base_url: str, **overrides):
        settings.ANIMA_EMBEDDING_PROVIDER = "openai"
        settings.ANIMA_OPENAI_BASE_URL = base_url
        settings.ANIMA_EMBEDDING_MODEL = MODEL
        settings.ANIMA_EMBEDDING_DIMENSIONS = DIMENSIONS
        settings.ANIMA_OPENAI_API_KEY = ""
        settings.ANIMA_OPENAI_TIMEOUT = 0.5
        settings.ANIMA_OPENAI_RETRIES = 0
        settings.ANIMA_OPENAI_SEND_DIMENSIONS = False
        for name, value in overrides.items():
            setattr(settings, name, value)
        provider = embeddings.build_provider()
        embeddings.set_provider(provider)
        return provider

    yield use
    embeddings.set_provider(previous)


@pytest.fixture
def refused_url():
    """A base URL on which nothing listens: a port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def assert_embedding_unavailable(response, *, leaked: str | None = None):
    assert response.status_code == 503
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == "EMBEDDING_UNAVAILABLE"
    text = response.content.decode()
    assert "Traceback" not in text
    assert "httpx" not in text
    assert "EmbeddingError" not in text
    if leaked:
        assert leaked not in text


# --- a working OpenAI-compatible server -----------------------------------------------


def test_openai_add_is_created_and_reports_the_openai_provider(embedding_server, use_openai, post_json):
    use_openai(embedding_server.base_url)

    response = post_json(ADD, {"content": "The user prefers dark roast coffee."})

    assert response.status_code == 201
    assert response.json()["meta"]["embeddingProvider"] == "openai"
    assert response.json()["data"]["memory"]["embeddingTruncated"] is False
    assert len(embedding_server.embedding_requests()) == 1


def test_openai_stored_vector_is_the_normalised_server_vector(embedding_server, use_openai, post_json):
    use_openai(embedding_server.base_url)
    content = "The deploy runs every Tuesday at noon."

    memory_id = post_json(ADD, {"content": content}).json()["data"]["memory"]["id"]

    stored = MemoryEmbedding.objects.get(memory_id=memory_id)
    assert stored.embedding_model == MODEL
    assert np.allclose(np.asarray(stored.embedding), normalised(server_vector(content)), atol=1e-6)
    assert abs(float(np.linalg.norm(np.asarray(stored.embedding))) - 1.0) < 1e-5


def test_openai_request_names_the_model_and_sends_the_text(embedding_server, use_openai, post_json):
    use_openai(embedding_server.base_url)

    post_json(ADD, {"content": "Lunch is at one."})

    (request,) = embedding_server.embedding_requests()
    assert request.payload["model"] == MODEL
    assert request.payload["input"] == ["Lunch is at one."]
    assert request.headers["content-type"].startswith("application/json")


def test_openai_dimensions_are_sent_only_when_asked(embedding_server, use_openai, post_json):
    use_openai(embedding_server.base_url)
    post_json(ADD, {"content": "first text"})
    use_openai(embedding_server.base_url, ANIMA_OPENAI_SEND_DIMENSIONS=True)
    post_json(ADD, {"content": "second text"})

    first, second = embedding_server.embedding_requests()
    assert "dimensions" not in first.payload
    assert second.payload["dimensions"] == DIMENSIONS


def test_openai_batch_vectors_are_matched_to_texts_by_index(embedding_server, use_openai):
    use_openai(embedding_server.base_url)
    texts = ["alpha", "beta", "gamma"]

    result = embeddings.embed_texts(texts, namespace="default")  # the server lists the rows in reverse order

    assert len(embedding_server.embedding_requests()) == 1
    for text, embedding in zip(texts, result.embeddings):
        assert np.allclose(embedding.vector, normalised(server_vector(text)), atol=1e-6)


def test_openai_authorization_header_carries_the_api_key(embedding_server, use_openai, post_json):
    use_openai(embedding_server.base_url, ANIMA_OPENAI_API_KEY="sk-test-anima-123")

    response = post_json(ADD, {"content": "A memory sent with a key."})

    assert response.status_code == 201
    (request,) = embedding_server.embedding_requests()
    assert request.headers["authorization"] == "Bearer sk-test-anima-123"


def test_openai_without_api_key_sends_no_authorization_header(embedding_server, use_openai, post_json):
    use_openai(embedding_server.base_url)

    post_json(ADD, {"content": "A memory sent without a key."})

    (request,) = embedding_server.embedding_requests()
    assert "authorization" not in request.headers


def test_query_for_an_added_text_is_a_cache_hit_that_finds_it(embedding_server, use_openai, post_json):
    use_openai(embedding_server.base_url)
    post_json(ADD, {"content": "The office wifi password changes monthly."})

    response = post_json(QUERY, {"query": "The office wifi password changes monthly.", "similarityThreshold": 0.9})

    assert response.status_code == 200
    # The add put this text in the cache: the query is a cache hit and finds the memory.
    assert response.json()["meta"]["embeddingProvider"] == "cache"
    assert response.json()["data"]["count"] == 1
    assert response.json()["data"]["memories"][0]["similarity"] == pytest.approx(1.0, abs=1e-4)


# --- retries with backoff ----------------------------------------------------------------


def test_openai_retries_after_a_503_and_succeeds(embedding_server, use_openai, post_json):
    use_openai(embedding_server.base_url, ANIMA_OPENAI_RETRIES=2)
    embedding_server.script = [status(503)]

    response = post_json(ADD, {"content": "Stored on the second attempt."})

    assert response.status_code == 201
    assert len(embedding_server.embedding_requests()) == 2
    assert Memory.objects.count() == 1


def test_openai_gives_up_after_the_configured_retries(embedding_server, use_openai, post_json):
    use_openai(embedding_server.base_url, ANIMA_OPENAI_RETRIES=2)
    embedding_server.default = status(503)

    response = post_json(ADD, {"content": "Never stored."})

    assert_embedding_unavailable(response, leaked=f"127.0.0.1:{embedding_server.port}")
    assert len(embedding_server.embedding_requests()) == 3
    assert Memory.objects.count() == 0
    assert MemoryEmbedding.objects.count() == 0


def test_openai_retry_waits_grow_exponentially(embedding_server, use_openai, post_json):
    provider = use_openai(embedding_server.base_url, ANIMA_OPENAI_RETRIES=2)
    embedding_server.default = status(503)

    post_json(ADD, {"content": "Backoff timing."})

    arrivals = [r.at for r in embedding_server.embedding_requests()]
    first_wait, second_wait = arrivals[1] - arrivals[0], arrivals[2] - arrivals[1]
    backoff = provider._backoff
    assert first_wait >= backoff * 0.95
    assert second_wait >= 2 * backoff * 0.95
    assert second_wait > first_wait


def test_openai_retries_a_429(embedding_server, use_openai, post_json):
    use_openai(embedding_server.base_url, ANIMA_OPENAI_RETRIES=1)
    embedding_server.script = [status(429)]

    response = post_json(ADD, {"content": "Rate limited once."})

    assert response.status_code == 201
    assert len(embedding_server.embedding_requests()) == 2


def test_openai_client_error_is_not_retried(embedding_server, use_openai, post_json):
    use_openai(embedding_server.base_url, ANIMA_OPENAI_RETRIES=2)
    embedding_server.default = status(401)

    response = post_json(ADD, {"content": "Bad key."})

    assert_embedding_unavailable(response)
    assert len(embedding_server.embedding_requests()) == 1
    assert Memory.objects.count() == 0


# --- an unreachable provider ---------------------------------------------------------------


def test_connection_refused_add_answers_503_and_writes_nothing(refused_url, use_openai, post_json):
    use_openai(refused_url, ANIMA_OPENAI_RETRIES=1)

    response = post_json(ADD, {"content": "Nobody is listening."})

    assert_embedding_unavailable(response, leaked=refused_url.removeprefix("http://").removesuffix("/v1"))
    assert Memory.objects.count() == 0
    assert MemoryEmbedding.objects.count() == 0


def test_connection_refused_query_answers_503(refused_url, use_openai, post_json):
    use_openai(refused_url, ANIMA_OPENAI_RETRIES=1)

    response = post_json(QUERY, {"query": "Is anybody there?"})

    assert_embedding_unavailable(response)


def test_silent_server_add_times_out_with_503_and_writes_nothing(embedding_server, use_openai, post_json):
    use_openai(embedding_server.base_url, ANIMA_OPENAI_TIMEOUT=0.3, ANIMA_OPENAI_RETRIES=1)
    embedding_server.default = hang

    started = time.monotonic()
    response = post_json(ADD, {"content": "The server never answers."})
    elapsed = time.monotonic() - started

    assert_embedding_unavailable(response, leaked=f"127.0.0.1:{embedding_server.port}")
    assert len(embedding_server.embedding_requests()) == 2
    assert elapsed < 3.0  # bounded by the timeout, not by the server
    assert Memory.objects.count() == 0
    assert MemoryEmbedding.objects.count() == 0


def test_silent_server_query_times_out_with_503(embedding_server, use_openai, post_json):
    use_openai(embedding_server.base_url, ANIMA_OPENAI_TIMEOUT=0.3, ANIMA_OPENAI_RETRIES=1)
    embedding_server.default = hang

    response = post_json(QUERY, {"query": "Will this ever return?"})

    assert_embedding_unavailable(response)


def test_failed_query_counts_no_access(embedding_server, use_openai, post_json):
    use_openai(embedding_server.base_url)
    post_json(ADD, {"content": "Something to be found."})
    embedding_server.default = status(503)

    response = post_json(QUERY, {"query": "Something else to look for.", "similarityThreshold": 0.0})

    assert_embedding_unavailable(response)
    assert Memory.objects.get().access_count == 0


# --- malformed answers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "responder",
    [
        pytest.param(wrong_dimension, id="wrong-dimension"),
        pytest.param(too_few_vectors, id="too-few-vectors"),
        pytest.param(missing_data, id="missing-data"),
        pytest.param(not_json, id="not-json"),
        pytest.param(non_numeric, id="non-numeric"),
        pytest.param(nan_values, id="nan-values"),
        pytest.param(zero_vector, id="zero-vector"),
    ],
)
def test_malformed_answer_gives_503_and_writes_nothing(embedding_server, use_openai, post_json, responder):
    use_openai(embedding_server.base_url)
    embedding_server.default = responder

    response = post_json(ADD, {"content": "A text the server garbles."})

    assert_embedding_unavailable(response)
    assert len(embedding_server.embedding_requests()) == 1
    assert Memory.objects.count() == 0
    assert MemoryEmbedding.objects.count() == 0


def test_malformed_answer_is_not_cached(embedding_server, use_openai, post_json):
    use_openai(embedding_server.base_url)
    embedding_server.script = [wrong_dimension]
    post_json(ADD, {"content": "Garbled, then fine."})

    response = post_json(ADD, {"content": "Garbled, then fine."})

    assert response.status_code == 201
    assert response.json()["meta"]["embeddingProvider"] == "openai"
    assert len(embedding_server.embedding_requests()) == 2


# --- the embedding cache ------------------------------------------------------------------


def test_repeated_query_is_answered_from_the_cache(embedding_server, use_openai, post_json):
    use_openai(embedding_server.base_url)
    text = "What does the user drink in the morning?"

    first = post_json(QUERY, {"query": text})
    second = post_json(QUERY, {"query": text})

    assert first.status_code == 200 and second.status_code == 200
    assert first.json()["meta"]["embeddingProvider"] == "openai"
    assert second.json()["meta"]["embeddingProvider"] == "cache"
    assert len(embedding_server.embedding_requests(text)) == 1


def test_cache_hit_needs_no_reachable_provider(embedding_server, use_openai, post_json):
    use_openai(embedding_server.base_url)
    text = "Cached before the outage."
    post_json(QUERY, {"query": text})
    embedding_server.default = status(503)

    response = post_json(QUERY, {"query": text})

    assert response.status_code == 200
    assert response.json()["meta"]["embeddingProvider"] == "cache"
    assert len(embedding_server.embedding_requests()) == 1


def test_different_query_text_is_not_a_cache_hit(embedding_server, use_openai, post_json):
    use_openai(embedding_server.base_url)
    post_json(QUERY, {"query": "first question"})

    response = post_json(QUERY, {"query": "second question"})

    assert response.json()["meta"]["embeddingProvider"] == "openai"
    assert len(embedding_server.embedding_requests()) == 2


# --- the local provider's truncation flag ---------------------------------------------------

SENTENCES = [
    "The committee reviewed the quarterly budget and asked for clearer travel estimates.",
    "Our team moved the weekly planning meeting to Thursday afternoon after lunch.",
    "She keeps a notebook of recipes from her grandmother, written in careful handwriting.",
    "The library opens early on weekdays, but the reading room closes before dinner.",
    "Heavy rain delayed the train, so most passengers waited patiently on the platform.",
]


def long_english_text(min_chars: int = 2000) -> str:
    parts, index = [], 0
    while len(" ".join(parts)) < min_chars:
        parts.append(SENTENCES[index % len(SENTENCES)])
        index += 1
    return " ".join(parts)


def test_local_long_content_is_flagged_truncated(post_json):
    content = long_english_text()
    assert 2000 <= len(content) < 2100

    response = post_json(ADD, {"content": content})

    assert response.status_code == 201
    assert response.json()["meta"]["embeddingProvider"] == "local"
    memory = response.json()["data"]["memory"]
    assert memory["embeddingTruncated"] is True
    assert MemoryEmbedding.objects.get(memory_id=memory["id"]).truncated is True


def test_local_short_content_is_not_truncated(post_json):
    response = post_json(ADD, {"content": SENTENCES[0]})

    assert response.status_code == 201
    assert response.json()["meta"]["embeddingProvider"] == "local"
    memory = response.json()["data"]["memory"]
    assert memory["embeddingTruncated"] is False
    assert MemoryEmbedding.objects.get(memory_id=memory["id"]).truncated is False


def test_truncation_flag_survives_the_cache():
    content = long_english_text()
    embeddings.embed_texts([content], namespace="default")

    cached = embeddings.embed_texts([content], namespace="default")

    assert cached.provider_label == "cache"
    assert cached.embeddings[0].truncated is True


# --- the local provider's two engines ---------------------------------------------------------


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    """The bundled model by ONNX Runtime (exported here, into a fresh directory) and by torch."""
    cache = tmp_path_factory.mktemp("models")
    onnx = LocalProvider(model_id=BUNDLED_MODEL_ID, dimensions=384, torch_threads=1, engine="onnx", cache_dir=cache)
    torch = LocalProvider(model_id=BUNDLED_MODEL_ID, dimensions=384, torch_threads=1, engine="torch")
    onnx.check_ready()
    return onnx, torch, cache


def test_the_onnx_engine_gives_torchs_vectors_and_truncation_flags(engines):
    onnx, torch, _ = engines
    texts = [*SENTENCES, "Why?", "", "é" * 30, long_english_text(), SENTENCES[0] * 3] + [f"note {i}: {SENTENCES[i % 5]}" for i in range(40)]

    by_onnx, by_torch = onnx.embed_many(texts), torch.embed_many(texts)

    cosines = [float(np.dot(a.vector, b.vector)) for a, b in zip(by_onnx, by_torch)]
    assert min(cosines) >= 0.9999  # measured 0.9999998 (docs/benchmarks/onnx/)
    assert [e.truncated for e in by_onnx] == [e.truncated for e in by_torch]
    assert by_onnx[len(SENTENCES) + 3].truncated is True
    assert all(e.vector.dtype == np.float32 and abs(np.linalg.norm(e.vector) - 1) < 1e-5 for e in by_onnx)
    assert onnx.embed_many([]) == []


def test_the_onnx_file_is_exported_once_and_reused(engines):
    onnx, _, cache = engines
    [exported] = cache.glob("*.onnx")
    modified = exported.stat().st_mtime_ns

    again = LocalProvider(model_id=BUNDLED_MODEL_ID, dimensions=384, torch_threads=1, engine="onnx", cache_dir=cache)
    again.check_ready()

    assert list(cache.iterdir()) == [exported]  # no temporary file left, no second export
    assert exported.stat().st_mtime_ns == modified
    assert np.allclose(again.embed_many(["Why?"])[0].vector, onnx.embed_many(["Why?"])[0].vector)


def test_the_onnx_engine_refuses_a_wrong_dimension(engines):
    _, _, cache = engines
    wrong = LocalProvider(model_id=BUNDLED_MODEL_ID, dimensions=768, torch_threads=1, engine="onnx", cache_dir=cache)

    with pytest.raises(EmbeddingError, match="384 dimensions"):
        wrong.check_ready()


def test_openai_input_over_the_character_budget_is_cut_and_flagged(embedding_server, use_openai, post_json):
    use_openai(embedding_server.base_url, ANIMA_OPENAI_MAX_INPUT_CHARS=200)
    long_text = "The deploy checklist has many steps. " * 20

    response = post_json("/api/v1/memories/add", {"content": long_text})

    assert response.status_code == 201
    assert response.json()["data"]["memory"]["embeddingTruncated"] is True
    assert embedding_server.requests[-1].payload["input"] == [long_text[:200]]
