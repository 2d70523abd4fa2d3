"""Redis as the shared cache and (optionally) the task broker, with real redis-server processes."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from urllib.parse import quote

import numpy as np
import pytest
from django.conf import settings
from django.core.cache import caches
from django.db import connection

from anima_site import metrics
from memories import embeddings
from memories.models import Memory
from tests.factories import make_memories


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def redis_url():
    """ANIMA_TEST_REDIS_URL, or a redis-server of our own on a free loopback port."""
    if os.environ.get("ANIMA_TEST_REDIS_URL"):
        yield os.environ["ANIMA_TEST_REDIS_URL"]
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: scripts/test installs it when run as root (apt-get)")
    port = _free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/5"
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=10)


def _redis_caches(url: str) -> dict:
    options = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}
    return {
        "default": {"BACKEND": "anima_site.cache.ResilientRedisCache", "LOCATION": url, "KEY_PREFIX": "anima-default", "OPTIONS": options},
        "embeddings": {"BACKEND": "anima_site.cache.ResilientRedisCache", "LOCATION": url, "KEY_PREFIX": "anima-emb", "TIMEOUT": 3600, "OPTIONS": options},
    }


def _database_url() -> str:
    db = connection.settings_dict
    host = db["HOST"] or db["OPTIONS"].get("host", "")
    return f"postgresql://{quote(db['USER'], safe='')}@{quote(host, safe='')}/{db['NAME']}"


def _django(code: str, env: dict) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code], cwd=settings.BASE_DIR, env=env, check=True, timeout=120,
        capture_output=True,
    )


def _env(redis: str, **extra) -> dict:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "anima_site.settings",
        "DATABASE_URL": _database_url(),
        "ANIMA_REDIS_URL": redis,
        **extra,
    }


@pytest.mark.django_db
def test_cache_counts_and_entries_are_shared_by_two_processes(settings, redis_url, api):
    settings.CACHES = _redis_caches(redis_url)
    caches["embeddings"].clear()

    # Another process embeds a text twice: one miss (model call), one hit.
    _django("from memories.embeddings import embed_texts; embed_texts(['shared text'], namespace='default'); embed_texts(['shared text'], namespace='default')", _env(redis_url))
    here = embeddings.embed_texts(["shared text"], namespace="default")  # this process finds the other's vector

    assert here.provider_label == "cache"
    stats = api.get("/api/v1/meta/cache-stats").json()["data"]["cache"]
    assert (stats["hits"], stats["misses"]) == (2, 1)
    assert stats["hitRate"] == pytest.approx(2 / 3, abs=1e-3)
    caches["embeddings"].clear()


@pytest.mark.django_db(transaction=True)
def test_a_task_enqueued_by_one_process_is_run_by_a_worker_through_redis(redis_url):
    same = np.ones(384)
    newer, older = make_memories(
        [{"content": "the cat sat on the mat!", "vector": same}, {"content": "The cat sat on the mat.", "vector": same}]
    )
    env = _env(redis_url, ANIMA_TASK_BROKER="redis", ANIMA_TASKS_SYNC="false", ANIMA_TASK_POLL="0.2")
    _django(f"from django_q.tasks import async_task; async_task('memories.tasks.consolidate_memory', '{newer.pk}')", env)
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"], cwd=settings.BASE_DIR, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not Memory.objects.filter(pk=newer.pk, merged_into=older.pk).exists():
            assert time.monotonic() < deadline, "the worker did not run the task"
            time.sleep(0.2)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:  # the Redis broker may sit in a blocking pop
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def _cache_errors() -> float:
    return sum(
        sample.value
        for family in metrics.CACHE_ERRORS.collect()
        for sample in family.samples
        if sample.name.endswith("_total")
    )


@pytest.mark.django_db
def test_requests_succeed_when_redis_is_down(settings, post_json, caplog):
    closed = _free_port()
    settings.CACHES = _redis_caches(f"redis://127.0.0.1:{closed}/0")
    settings.ANIMA_RATE_LIMIT = "5/min"  # the throttle's cache is down too: requests still pass
    before = _cache_errors()

    added = post_json("/api/v1/memories/add", {"content": "Redis is down but memory works."})
    found = post_json("/api/v1/memories/query", {"query": "does memory work without redis?"})
    repeated = [post_json("/api/v1/memories/query", {"query": "again"}).status_code for _ in range(6)]

    assert added.status_code == 201
    assert found.status_code == 200 and found.json()["data"]["count"] == 1
    assert repeated == [200] * 6
    assert _cache_errors() > before
    assert any("Redis cache unavailable" in record.getMessage() for record in caplog.records)
