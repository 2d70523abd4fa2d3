"""``GET /health``: every check reported with its latency; an unreachable embedding
provider turns it into a 503 naming that check, and it recovers when the provider does;
background work waiting longer than the stall limit turns it into a 503 naming
``background``.
The OpenAI-compatible provider talks to real sockets on 127.0.0.1 (SPEC §3 "Outside /api/v1")."""

import hashlib
import json
import socket
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from django.utils import timezone

from memories import embeddings
from memories.models import BackgroundWork, WorkKind
from tests.factories import DIM as DIMENSIONS, MODEL

pytestmark = pytest.mark.django_db

HEALTH = "/health"
CHECKS = {"database", "pgvector", "embedding", "cache", "queue", "background"}


class _EmbeddingsHandler(BaseHTTPRequestHandler):
    """Answers ``POST /v1/embeddings`` like an OpenAI-compatible server, one vector per input."""

    def do_POST(self):
        payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        if self.path != "/v1/embeddings":
            code, body = 404, {"error": "no such route"}
        else:
            code, body = 200, {
                "object": "list",
                "model": payload["model"],
                "data": [{"object": "embedding", "index": i, "embedding": _vector(text)} for i, text in enumerate(payload["input"])],
            }
        raw = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format, *args):
        pass


def _vector(text: str) -> list[float]:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(DIMENSIONS).tolist()


@pytest.fixture
def embedding_server():
    """A real HTTP server on 127.0.0.1; yields its OpenAI base URL."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _EmbeddingsHandler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture
def refused_url():
    """A base URL on which nothing listens: a port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.fixture
def use_openai(settings):
    """``use_openai(base_url)`` makes the process's provider the OpenAI-compatible one built
    from the settings; the previous provider is restored afterwards."""
    previous = embeddings.get_provider()

    def use(base_url: str):
        settings.ANIMA_EMBEDDING_PROVIDER = "openai"
        settings.ANIMA_OPENAI_BASE_URL = base_url
        settings.ANIMA_EMBEDDING_MODEL = MODEL
        settings.ANIMA_EMBEDDING_DIMENSIONS = DIMENSIONS
        settings.ANIMA_OPENAI_API_KEY = ""
        settings.ANIMA_OPENAI_TIMEOUT = 0.3
        settings.ANIMA_OPENAI_RETRIES = 0
        settings.ANIMA_OPENAI_SEND_DIMENSIONS = False
        embeddings.set_provider(embeddings.build_provider())

    yield use
    embeddings.set_provider(previous)


def test_health_is_200_when_every_check_passes(api):
    response = api.get(HEALTH)

    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert "failing" not in response.json()


def test_health_reports_each_check_as_ok_with_its_latency(api):
    checks = api.get(HEALTH).json()["checks"]

    assert set(checks) == CHECKS
    for name, check in checks.items():
        assert check["status"] == "ok", name
        assert isinstance(check["latencyMs"], (int, float)) and check["latencyMs"] >= 0, name


def test_health_answers_with_a_trailing_slash_too(api):
    assert api.get(HEALTH + "/").status_code == 200


def test_health_is_503_naming_the_embedding_check_when_the_provider_refuses(api, use_openai, refused_url):
    use_openai(refused_url)

    response = api.get(HEALTH)

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert body["failing"] == ["embedding"]
    assert body["checks"]["embedding"]["status"] == "fail"
    assert body["checks"]["embedding"]["error"]
    assert isinstance(body["checks"]["embedding"]["latencyMs"], (int, float))
    assert {name for name, check in body["checks"].items() if check["status"] == "ok"} == CHECKS - {"embedding"}


def test_health_failure_shows_no_traceback(api, use_openai, refused_url):
    use_openai(refused_url)

    response = api.get(HEALTH)

    assert response.status_code == 503
    text = response.content.decode()
    assert "Traceback" not in text
    assert 'File "' not in text


def test_health_with_a_working_openai_server_is_200(api, use_openai, embedding_server):
    use_openai(embedding_server)

    response = api.get(HEALTH)

    assert response.status_code == 200
    assert response.json()["checks"]["embedding"]["status"] == "ok"


def test_health_recovers_when_the_provider_comes_back(api, use_openai, refused_url, embedding_server):
    use_openai(refused_url)
    assert api.get(HEALTH).status_code == 503

    use_openai(embedding_server)
    response = api.get(HEALTH)

    assert response.status_code == 200
    assert "failing" not in response.json()
    assert "Traceback" not in response.content.decode()


def _pending_since(seconds: float) -> BackgroundWork:
    row = BackgroundWork.objects.create(kind=WorkKind.CATALYST, namespace="default", memory_ids=[])
    BackgroundWork.objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(seconds=seconds))
    return row


def test_health_reports_no_pending_background_work_as_null(api):
    background = api.get(HEALTH).json()["checks"]["background"]

    assert background["status"] == "ok"
    assert background["oldestPendingSeconds"] is None


def test_health_reports_the_age_of_the_oldest_pending_work(api, settings):
    settings.ANIMA_BACKGROUND_STALL_SECONDS = 120
    _pending_since(30)
    _pending_since(5)

    response = api.get(HEALTH)

    assert response.status_code == 200
    assert 25 <= response.json()["checks"]["background"]["oldestPendingSeconds"] < 60


def test_health_is_503_naming_background_when_work_waits_longer_than_the_stall_limit(api, settings):
    settings.ANIMA_BACKGROUND_STALL_SECONDS = 120
    _pending_since(130)

    response = api.get(HEALTH)

    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["background"]
    assert body["checks"]["background"]["error"] == "BackgroundStalled"
    assert body["checks"]["background"]["oldestPendingSeconds"] > 120


def test_health_recovers_once_the_waiting_work_is_done(api, settings):
    settings.ANIMA_BACKGROUND_STALL_SECONDS = 120
    row = _pending_since(500)
    assert api.get(HEALTH).status_code == 503

    row.delete()

    assert api.get(HEALTH).status_code == 200
