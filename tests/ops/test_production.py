"""The production process set, started by the README's serve command on loopback: gunicorn
(2 workers, static files by WhiteNoise, DEBUG off, a required secret key) and the
django-q2 cluster — exercised through HTTP: add, query, bootstrap, the admin, /metrics."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from urllib.parse import quote

import httpx
import pytest
from django.conf import settings
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def production_set(tmp_path):
    db = connection.settings_dict
    host = db["HOST"] or db["OPTIONS"].get("host", "")
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "anima_site.settings",
        "DATABASE_URL": f"postgresql://{quote(db['USER'], safe='')}@{quote(host, safe='')}/{db['NAME']}",
        "ANIMA_DATA_DIR": str(tmp_path),
        "ANIMA_PORT": str(port),
        "ANIMA_DEBUG": "false",
        "ANIMA_REQUIRE_SECRET_KEY": "true",
        "ANIMA_SECRET_KEY": "a-production-secret-for-this-test-only-0123456789",
        "ANIMA_ADMIN_USERNAME": "staff",
        "ANIMA_ADMIN_PASSWORD": "correct horse battery staple",
        "ANIMA_WEB_WORKERS": "2",
        "ANIMA_TASK_POLL": "0.2",
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "serve"], cwd=settings.BASE_DIR, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert process.poll() is None, "serve exited during start-up"
        assert time.monotonic() < deadline, "the production set did not come up"
        time.sleep(0.5)
    key = (tmp_path / "local-api-key").read_text().strip()
    yield base, key, process
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.mark.django_db(transaction=True)
def test_the_production_set_serves_the_api_the_admin_and_metrics(production_set):
    base, key, process = production_set
    api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30)

    added = api.post("/api/v1/memories/add", json={"content": "Production serves this memory."})
    found = api.post("/api/v1/memories/query", json={"query": "what does production serve?", "conversationId": "p1"})
    boot = api.get("/api/v1/memories/bootstrap")
    assert added.status_code == 201
    assert found.json()["data"]["memories"][0]["content"] == "Production serves this memory."
    assert boot.json()["data"]["distribution"]["total"] == 1
    assert api.get("/api/v1/memories/bootstrap", headers={"Authorization": ""}).status_code == 401

    static = httpx.get(f"{base}/static/admin/css/base.css")
    assert static.status_code == 200 and "text/css" in static.headers["content-type"]

    browser = httpx.Client(base_url=base, timeout=30)
    login_page = browser.get("/admin/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.text).group(1)
    logged_in = browser.post(
        "/admin/login/?next=/admin/memories/memory/",
        data={"csrfmiddlewaretoken": token, "username": "staff", "password": "correct horse battery staple",
              "next": "/admin/memories/memory/"},
        headers={"Referer": f"{base}/admin/login/"},
    )
    assert logged_in.status_code == 302
    changelist = browser.get("/admin/memories/memory/")
    assert changelist.status_code == 200 and "Production serves this memory." in changelist.text

    families = {f.name: f for f in text_string_to_metric_families(httpx.get(f"{base}/metrics").text)}
    lookups = families["anima_embedding_cache_lookups"]
    assert sum(s.value for s in lookups.samples if s.name.endswith("_total")) >= 2  # from both workers' files
    assert any(s.labels.get("tier") == "active" and s.value == 1 for s in families["anima_memories"].samples)

    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole group
    assert process.wait(timeout=60) == 0
