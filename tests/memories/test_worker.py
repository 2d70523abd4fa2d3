"""A real django-q2 worker process (``manage.py qcluster``) against the test database."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from django.conf import settings
from django.db import connection
from django_q.tasks import async_task

from memories.models import Memory
from tests.factories import make_memories

pytestmark = pytest.mark.django_db(transaction=True)

TASK_TIMEOUT = 4
TASK_RETRY = 6


def _database_url() -> str:
    db = connection.settings_dict
    host = db["HOST"] or db["OPTIONS"].get("host", "")
    port = f":{db['PORT']}" if db["PORT"] else ""
    password = f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else ""
    return f"postgresql://{quote(db['USER'], safe='')}{password}@{quote(host, safe='')}{port}/{db['NAME']}"


def start_worker() -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "anima_site.settings",
        "DATABASE_URL": _database_url(),
        "ANIMA_TASK_TIMEOUT": str(TASK_TIMEOUT),
        "ANIMA_TASK_RETRY": str(TASK_RETRY),
        "ANIMA_TASK_POLL": "0.2",
        "ANIMA_TASKS_SYNC": "false",
        "ANIMA_TASK_BROKER": "orm",  # the durable broker: what these tests are about
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the cluster's children die with it
    )


def stop_worker(process: subprocess.Popen, sig=signal.SIGTERM) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def duplicate_pair():
    same = np.ones(384)
    newer, older = make_memories(
        [
            {"content": "the cat sat on the mat!", "vector": same},
            {"content": "The cat sat on the mat.", "vector": same},
        ]
    )
    return older, newer


def _merged(newer) -> bool:
    return Memory.objects.filter(pk=newer.pk, merged_into__isnull=False).exists()


def test_the_worker_picks_up_enqueued_work(duplicate_pair):
    older, newer = duplicate_pair
    async_task("memories.tasks.consolidate_memory", str(newer.pk), sync=False)
    worker = start_worker()
    try:
        wait_for(lambda: _merged(newer), 60, "the worker to merge the pair")
    finally:
        stop_worker(worker)

    assert Memory.objects.get(pk=newer.pk).merged_into_id == older.pk


def test_a_worker_killed_mid_task_loses_nothing(duplicate_pair, tmp_path):
    older, newer = duplicate_pair
    marker = tmp_path / "started"
    async_task("tests.memories.worker_tasks.slow_consolidate", str(newer.pk), str(marker), 2.5, sync=False)

    worker = start_worker()
    try:
        wait_for(marker.exists, 60, "the task to start")
        stop_worker(worker, signal.SIGKILL)  # mid-transaction: the merge must roll back
        assert not _merged(newer)
        worker = start_worker()
        wait_for(lambda: _merged(newer), 60, "the re-delivered task to merge the pair")
    finally:
        stop_worker(worker)

    survivor = Memory.objects.get(pk=older.pk)
    assert len(survivor.metadata["semanticVariants"]) == 1
    assert survivor.access_count == 1
    assert Path(marker).read_text().splitlines() == ["merged", "merged"]
