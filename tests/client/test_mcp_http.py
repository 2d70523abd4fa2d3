"""``anima-mcp`` over streamable HTTP, a real subprocess on 127.0.0.1 against a live Anima:
every request needs an Anima API key as a bearer, tools use that caller's key (its scope,
its namespace), the server has no key of its own, and the Host/Origin checks are on."""

import asyncio
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from anima_client import AnimaClient
from anima_client.formatting import HANDSHAKE_NOT_STORED
from anima_client.mcp_server import FORBIDDEN_HINT, KEY_VERIFY_PATH, AnimaKeyVerifier, CallerClients
from memories.models import Memory
from tests.client.conftest import Scripted

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}},
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def stop(process: subprocess.Popen) -> None:
    """End a process this test started (by its PID), waiting a bounded time."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)


@contextmanager
def mcp_http(anima_url: str, *args: str, env: dict | None = None, port: int | None = None):
    """``anima-mcp --transport streamable-http`` on ``port`` (else a free one); yields the
    port once it listens, and stops the process after."""
    port = port or free_port()
    with tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "anima_client.mcp_server", "--transport", "streamable-http", "--port", str(port), *args],
            cwd=ROOT,
            env={"PATH": "/usr/bin:/bin", "ANIMA_URL": anima_url, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while not listening(port):
                if process.poll() is not None or time.monotonic() > deadline:
                    stop(process)
                    stderr.seek(0)
                    pytest.fail(f"anima-mcp did not start: {stderr.read()}")
                time.sleep(0.1)
            yield port
        finally:
            stop(process)


def initialize(port: int, headers: dict) -> httpx.Response:
    """A raw MCP ``initialize`` POST (the first request of every session)."""
    return httpx.post(f"http://127.0.0.1:{port}/mcp", json=INITIALIZE, headers={**MCP_HEADERS, **headers}, timeout=30)


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def call_tools(port: int, key: str, *steps):
    """Run ``(tool, arguments)`` steps in one MCP session with ``key`` as the bearer; their results."""

    async def session():
        async with httpx2.AsyncClient(headers=bearer(key), timeout=30) as http:
            async with Client(streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http)) as client:
                return [await client.call_tool(name, arguments) for name, arguments in steps]

    return asyncio.run(session())


def text_of(result) -> str:
    assert not result.is_error, result.content
    return "\n".join(block.text for block in result.content)


@pytest.fixture
def read_key(api_key_for) -> str:
    return api_key_for("read")


@pytest.fixture
def dana(anima):
    """A memory about Dana in the ``default`` namespace (returned: its id)."""
    return anima.add("Dana is allergic to peanuts.", category="health", tags=["dana"]).memory.id


def test_streamable_http_transport_answers_recall(anima_url, write_key, dana):
    with mcp_http(anima_url) as port:
        (recalled,) = call_tools(port, write_key, ("recall", {"query": "Dana's allergies", "limit": 1}))

    assert "Dana is allergic to peanuts." in text_of(recalled)


def test_a_request_without_a_bearer_is_401_and_runs_no_tool(anima_url, write_key, dana):
    before = Memory.objects.count()
    # The server holds a write key in its environment: it must not act with it.
    with mcp_http(anima_url, env={"ANIMA_API_KEY": write_key}) as port:
        opened = initialize(port, bearer(write_key))
        session = {"Mcp-Session-Id": opened.headers["mcp-session-id"], "MCP-Protocol-Version": "2025-06-18"}
        remember = {
            "jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "remember", "arguments": {"content": "Sam prefers dark mode."}},
        }
        refused = httpx.post(f"http://127.0.0.1:{port}/mcp", json=remember, headers={**MCP_HEADERS, **session}, timeout=30)

    assert opened.status_code == 200
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert Memory.objects.count() == before


def test_an_unknown_key_is_401(anima_url, write_key):
    tampered = write_key[:-1] + ("A" if write_key[-1] != "A" else "B")

    with mcp_http(anima_url) as port:
        refused = initialize(port, bearer(tampered))
        not_bearer = initialize(port, {"Authorization": f"Basic {write_key}"})

    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert not_bearer.status_code == 401


def test_a_read_key_recalls_but_remember_is_a_tool_error_naming_the_scope(anima_url, read_key, dana):
    before = Memory.objects.count()

    with mcp_http(anima_url) as port:
        recalled, remembered = call_tools(
            port, read_key,
            ("recall", {"query": "What is Dana allergic to?", "limit": 1}),
            ("remember", {"content": "Sam prefers dark mode."}),
        )

    assert "Dana is allergic to peanuts." in text_of(recalled)
    assert remembered.is_error
    assert FORBIDDEN_HINT in remembered.content[0].text
    assert "scope is too narrow" in remembered.content[0].text
    assert Memory.objects.count() == before


def test_each_key_sees_only_its_own_namespace(anima_url, write_key, api_key_for, dana):
    key_b = api_key_for("write", namespace="b")
    with AnimaClient(anima_url, key_b) as anima_b:
        anima_b.add("Sam is allergic to shellfish.", category="health", tags=["sam"])
    recall = ("recall", {"query": "food allergies", "threshold": 0})

    with mcp_http(anima_url) as port:
        (seen_by_default,) = call_tools(port, write_key, recall)
        (seen_by_b,) = call_tools(port, key_b, recall)

    assert "peanuts" in text_of(seen_by_default) and "shellfish" not in text_of(seen_by_default)
    assert "shellfish" in text_of(seen_by_b) and "peanuts" not in text_of(seen_by_b)


def test_tools_use_the_callers_key_never_the_servers_admin_keys(anima_url, api_key_for, read_key, tmp_path):
    key_file = tmp_path / "local-api-key"
    key_file.write_text(api_key_for("admin"))
    env = {"ANIMA_API_KEY_FILE": str(key_file), "ANIMA_API_KEY": api_key_for("admin")}
    before = Memory.objects.count()

    with mcp_http(anima_url, env=env) as port:
        (remembered,) = call_tools(port, read_key, ("remember", {"content": "Sam prefers dark mode."}))

    assert remembered.is_error
    assert FORBIDDEN_HINT in remembered.content[0].text
    assert Memory.objects.count() == before


def test_a_read_keys_handshake_is_labelled_not_stored(anima_url, read_key, dana):
    with mcp_http(anima_url) as port:
        (note,) = call_tools(port, read_key, ("handshake", {}))

    text = text_of(note)
    assert "Dana is allergic to peanuts." in text
    assert f"({HANDSHAKE_NOT_STORED})" in text
    assert "None" not in text


def test_a_verified_key_is_trusted_for_a_while_without_asking_anima_again(anima_url, write_key, scripted_server):
    proxy = scripted_server([], upstream=anima_url)

    with mcp_http(proxy.url) as port:
        first = initialize(port, bearer(write_key))
        second = initialize(port, bearer(write_key))

    assert (first.status_code, second.status_code) == (200, 200)
    assert proxy.attempts.count(("GET", KEY_VERIFY_PATH)) == 1


def test_a_refused_key_is_refused_for_a_while_without_asking_anima_again(anima_url, write_key, scripted_server):
    proxy = scripted_server([], upstream=anima_url)
    tampered = write_key[:-1] + ("A" if write_key[-1] != "A" else "B")

    with mcp_http(proxy.url) as port:
        first = initialize(port, bearer(tampered))
        second = initialize(port, bearer(tampered))

    assert (first.status_code, second.status_code) == (401, 401)
    assert proxy.attempts.count(("GET", KEY_VERIFY_PATH)) == 1


@pytest.mark.parametrize("valid", [True, False], ids=["trusted", "refused"])
def test_the_verifier_remembers_only_the_most_recent_keys(anima_url, api_key_for, scripted_server, valid):
    keys = [api_key_for("read") for _ in range(3)]
    if not valid:
        keys = [key[:-1] + ("A" if key[-1] != "A" else "B") for key in keys]
    proxy = scripted_server([], upstream=anima_url)
    verifier = AnimaKeyVerifier(proxy.url, cache_size=2)

    async def verify_each(order):
        return [await verifier.verify_token(keys[index]) is not None for index in order]

    # The third key pushes the first out: the first is asked about again, the third is not.
    verdicts = asyncio.run(verify_each([0, 1, 2, 0, 2]))

    assert verdicts == [valid] * 5
    assert proxy.attempts.count(("GET", KEY_VERIFY_PATH)) == 4


def test_an_anima_that_cannot_answer_refuses_the_key_only_this_time(anima_url, write_key, scripted_server):
    unavailable = Scripted(503, {"success": False, "error": {"code": "UNAVAILABLE", "message": "down"}})
    proxy = scripted_server([unavailable], upstream=anima_url)
    verifier = AnimaKeyVerifier(proxy.url)

    async def verify_twice():
        return [await verifier.verify_token(write_key) for _ in range(2)]

    first, second = asyncio.run(verify_twice())

    assert first is None
    assert second is not None
    assert proxy.attempts.count(("GET", KEY_VERIFY_PATH)) == 2


def test_the_verifier_asks_anima_about_few_keys_at_once(scripted_server):
    refused = Scripted(401, {"success": False, "error": {"code": "UNAUTHORIZED", "message": "no"}}, delay=0.3)
    anima = scripted_server([refused] * 6)
    verifier = AnimaKeyVerifier(anima.url, concurrency=2)

    async def verify_all():
        return await asyncio.gather(*(verifier.verify_token(f"bad-key-{n}") for n in range(6)))

    verdicts = asyncio.run(verify_all())

    assert verdicts == [None] * 6
    assert len(anima.attempts) == 6
    assert anima.peak_in_flight == 2


def test_caller_clients_keep_the_most_recently_used_and_close_the_others(anima_url, api_key_for):
    keys = [api_key_for("read") for _ in range(3)]
    clients = CallerClients(anima_url, timeout=30, size=2)

    async def use(key):
        async with clients.lease(key) as client:
            await client.stats()
            return client

    async def session():
        first, second = await use(keys[0]), await use(keys[1])
        first_again = await use(keys[0])
        await use(keys[2])  # one too many: the least recently used (second) is closed
        first_still = await use(keys[0])
        with pytest.raises(RuntimeError, match="closed"):
            await second.stats()
        second_anew = await use(keys[1])
        await clients.aclose()
        with pytest.raises(RuntimeError, match="closed"):
            await first.stats()
        return first, first_again, first_still, second, second_anew

    first, first_again, first_still, second, second_anew = asyncio.run(session())

    assert first is first_again is first_still
    assert second_anew is not second


def test_an_evicted_caller_client_in_use_closes_when_its_call_ends(anima_url, api_key_for):
    keys = [api_key_for("read") for _ in range(3)]
    clients = CallerClients(anima_url, timeout=30, size=2)

    async def session():
        async with clients.lease(keys[0]) as held:
            for key in keys[1:]:  # evict the held client while its call runs
                async with clients.lease(key):
                    pass
            stats = await held.stats()
        with pytest.raises(RuntimeError, match="closed"):
            await held.stats()
        await clients.aclose()
        return stats

    stats = asyncio.run(session())

    assert stats.total_memories >= 0


def test_a_foreign_host_or_origin_is_refused_on_loopback(anima_url, write_key):
    with mcp_http(anima_url) as port:
        foreign_host = initialize(port, {**bearer(write_key), "Host": f"evil.example:{port}"})
        foreign_origin = initialize(port, {**bearer(write_key), "Origin": "http://evil.example"})
        loopback = initialize(port, {**bearer(write_key), "Host": f"localhost:{port}"})

    assert foreign_host.status_code == 421
    assert foreign_origin.status_code == 403
    assert loopback.status_code == 200


def test_a_non_loopback_host_without_allowed_host_refuses_to_start(anima_url):
    finished = subprocess.run(
        [sys.executable, "-m", "anima_client.mcp_server", "--transport", "streamable-http",
         "--host", "0.0.0.0", "--port", str(free_port())],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "ANIMA_URL": anima_url},
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
    )

    assert finished.returncode == 2
    assert finished.stderr.count("\n") == 1
    assert "--host 0.0.0.0 is not a loopback address" in finished.stderr
    assert "--allowed-host" in finished.stderr


def test_a_non_loopback_host_accepts_only_the_allowed_hosts(anima_url, write_key):
    port = free_port()
    args = ["--host", "0.0.0.0", "--allowed-host", f"mcp.example.com:{port}"]
    with mcp_http(anima_url, *args, port=port) as port:
        allowed = initialize(port, {**bearer(write_key), "Host": f"mcp.example.com:{port}"})
        foreign = initialize(port, {**bearer(write_key), "Host": f"evil.example:{port}"})

    assert allowed.status_code == 200
    assert foreign.status_code == 421
