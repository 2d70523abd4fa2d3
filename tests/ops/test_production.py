"""The production process set, started by the README's serve command on loopback: gunicorn
(2 workers, static files by WhiteNoise, DEBUG off, a required secret key) and the
django-q2 cluster — exercised through HTTP: add, query, bootstrap, the admin, /metrics."""

import os
import re
import signal
import threading
import time
import uuid

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from memories.models import BackgroundWork, WorkKind
from tests.processes import served, wait_for


@pytest.fixture
def production_set(tmp_path):
    overrides = {
        "ANIMA_DEBUG": "false",
        "ANIMA_REQUIRE_SECRET_KEY": "true",
        "ANIMA_SECRET_KEY": "a-production-secret-for-this-test-only-0123456789",
        "ANIMA_ADMIN_USERNAME": "staff",
        "ANIMA_ADMIN_PASSWORD": "correct horse battery staple",
        "ANIMA_WEB_WORKERS": "2",
        "ANIMA_RATE_LIMIT": "1200/min",  # the default: serve as shipped
    }
    with served(tmp_path, **overrides) as server:
        yield server.base, server.key, server.process


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

    # Ctrl-C under load with a backlog (thousands of batches) still stops in 15 s and exits 0.
    BackgroundWork.objects.bulk_create(
        BackgroundWork(kind=WorkKind.CONSOLIDATION, namespace="default", memory_ids=[uuid.uuid4()]) for _ in range(20_000)
    )
    # An add makes the server ask for a consolidation drain (this process's messages are
    # signed with another secret key: the served cluster would refuse them).
    assert api.post("/api/v1/memories/add", json={"content": "A second memory asks for a drain."}).status_code == 201
    loading, done = threading.Event(), threading.Event()
    load = threading.Thread(target=_keep_querying, args=(base, key, loading, done))
    load.start()
    try:
        assert loading.wait(timeout=30)
        wait_for(lambda: BackgroundWork.objects.count() < 20_000, 60, "the cluster to work on the backlog")
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole group
        interrupted = time.monotonic()
        assert process.wait(timeout=30) == 0
        assert time.monotonic() - interrupted < 15
    finally:
        done.set()
        load.join(timeout=30)
    assert BackgroundWork.objects.filter(kind=WorkKind.CONSOLIDATION).exists()  # the rest waits, durable, for the next start


def _keep_querying(base: str, key: str, started: threading.Event, done: threading.Event) -> None:
    """Queries one after another until ``done``; a failure (the server is stopping) is not an error here."""
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=10) as client:
        while not done.is_set():
            try:
                client.post("/api/v1/memories/query", json={"query": "production", "conversationId": "load"})
                started.set()
            except httpx.HTTPError:
                time.sleep(0.1)
