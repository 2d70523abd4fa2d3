"""Fixtures for the client, CLI and MCP tests: a live Anima (pytest-django's
``live_server``, the real bundled model, tasks run synchronously), keys for it, and a
real scripted HTTP server on 127.0.0.1 for the retry tests."""

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from anima_client import AnimaClient, RetryPolicy

#: Retries that wait milliseconds, not seconds.
FAST_RETRY = RetryPolicy(max_retries=3, backoff=0.01, backoff_max=0.05, jitter=False)


@pytest.fixture
def anima_url(live_server) -> str:
    return live_server.url


@pytest.fixture
def write_key(api_key_for) -> str:
    return api_key_for("write")


@pytest.fixture
def anima(anima_url, write_key):
    """A sync client with a write-scope key of the ``default`` namespace."""
    with AnimaClient(anima_url, write_key, retry=FAST_RETRY) as client:
        yield client


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch):
    """Tests never read the developer's ANIMA_* variables."""
    for name in ("ANIMA_URL", "ANIMA_API_KEY", "ANIMA_API_KEY_FILE", "ANIMA_CONVERSATION_ID"):
        monkeypatch.delenv(name, raising=False)


def envelope_error(code: str, message: str, request_id: str) -> dict:
    return {"success": False, "error": {"code": code, "message": message}, "meta": {"requestId": request_id}}


@dataclass
class Scripted:
    """One scripted answer: status, JSON body, extra headers, seconds to wait first."""

    status: int
    body: dict
    headers: dict = field(default_factory=dict)
    delay: float = 0.0


class ScriptedServer:
    """A real HTTP server on 127.0.0.1 (http.server in a thread). It answers from
    ``script`` first, then forwards to ``upstream`` (pass-through) or answers ``final``.
    ``attempts`` lists every request it received as ``(method, path)``; ``peak_in_flight``
    is the most requests it was answering at once."""

    def __init__(self, script: list[Scripted], *, upstream: str | None = None, final: Scripted | None = None):
        self.script = list(script)
        self.upstream = upstream
        self.final = final
        self.attempts: list[tuple[str, str]] = []
        self.peak_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "ScriptedServer":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _next(self, method: str, path: str) -> Scripted | None:
        with self._lock:
            self.attempts.append((method, path))
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
            return self.script.pop(0) if self.script else None

    def _done(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format, *args):  # quiet
                pass

            def _answer(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                scripted = server._next(self.command, self.path)
                try:
                    if scripted is None and server.upstream:
                        self._forward(body)
                    else:
                        self._reply(scripted or server.final)
                finally:
                    server._done()

            def _reply(self, scripted: Scripted):
                time.sleep(scripted.delay)
                payload = json.dumps(scripted.body).encode()
                self.send_response(scripted.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in scripted.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def _forward(self, body: bytes):
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                answer = httpx.request(
                    self.command, server.upstream + self.path, headers=headers, content=body, timeout=30
                )
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PATCH = do_DELETE = _answer

        return Handler


@pytest.fixture
def scripted_server() -> Callable[..., ScriptedServer]:
    """``scripted_server(script, upstream=…, final=…)``: started now, stopped after the test."""
    servers: list[ScriptedServer] = []

    def start(script, **kwargs) -> ScriptedServer:
        server = ScriptedServer(script, **kwargs).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__(None, None, None)


@pytest.fixture
def recorded_sleeps(monkeypatch) -> list[float]:
    """The retry waits the clients asked for, recorded instead of slept."""
    waits: list[float] = []

    async def async_record(seconds):
        waits.append(seconds)

    monkeypatch.setattr("anima_client.client.sleep", waits.append)
    monkeypatch.setattr("anima_client.async_client.async_sleep", async_record)
    return waits
