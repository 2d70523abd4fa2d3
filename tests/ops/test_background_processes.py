"""Background work with real processes: workers killed mid-batch, a burst counted exactly,
a cluster whose every leaf is killed, a task side that stops (SPEC §5, issue 16).

Clusters and ``manage.py serve`` run against the test database (``tests/processes.py``)
with the ORM broker. ``.ci/run`` runs them once, in its plain pass (marker ``processes``).
"""

import os
import signal
import sys
import threading
import time
from itertools import combinations

import numpy as np
import pytest
from django.db import connection
from django_q.conf import Conf

from memories.background import drains_request
from memories.models import BackgroundWork, Memory, MemoryAssociation, WorkKind
from meta.models import ClusterRestart
from tests.factories import make_memories
from tests.processes import environment, served, start, stop_group, wait_for, worker_pids

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.processes]

KINDS = [kind.value for kind in WorkKind]


@pytest.fixture
def to_the_broker(monkeypatch):
    """This process enqueues drains for the real cluster instead of running them itself."""
    monkeypatch.setattr(Conf, "SYNC", False)


def _batch_in_flight() -> bool:
    """Some other session holds a claimed batch (SELECT … FOR UPDATE takes RowShareLock)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            "WHERE c.relname = 'memories_backgroundwork' AND l.mode = 'RowShareLock' AND l.pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0] > 0


def _pair_counts() -> dict:
    rows = MemoryAssociation.objects.values_list("memory_a_id", "memory_b_id", "co_occurrence_count")
    return {(a, b): n for a, b, n in rows}


def test_killing_a_worker_mid_batch_again_and_again_loses_nothing_and_doubles_nothing(tmp_path, to_the_broker):
    rng = np.random.default_rng(16)
    specs = []
    for i in range(600):  # each newer memory restates an older one: consolidation merges it
        direction = rng.standard_normal(384)
        specs += [{"content": f"the cat sat on mat number {i}!", "vector": direction},
                  {"content": f"The cat sat on mat number {i}.", "vector": direction}]  # fmt: skip
    made = make_memories(specs)  # the first of each two is the newer
    twins = list(zip(made[0::2], made[1::2]))
    BackgroundWork.objects.bulk_create(
        BackgroundWork(kind=WorkKind.CONSOLIDATION, namespace="default", memory_ids=[newer.id]) for newer, _ in twins
    )
    plain = make_memories([{"content": f"plain {i}", "vector": rng.standard_normal(384)} for i in range(10)])
    expected = {}
    work = []
    for i in range(3000):
        chosen = sorted((plain[j].id for j in rng.choice(10, size=3, replace=False)))
        work.append(
            BackgroundWork(kind=WorkKind.COOCCURRENCE, namespace="default", memory_ids=chosen, conversation_id=f"c{i % 5}")
        )
        for pair in combinations(chosen, 2):
            expected[pair] = expected.get(pair, 0) + 1
    BackgroundWork.objects.bulk_create(work)

    log = tmp_path / "cluster.log"
    env = environment(ANIMA_TASK_WORKERS="1", ANIMA_TASK_TIMEOUT="4", ANIMA_TASK_RETRY="6")
    cluster = start([sys.executable, "manage.py", "qcluster"], env, log)
    kills = 0
    try:
        wait_for(lambda: worker_pids(log), 60, "the worker to start")
        drains_request(KINDS)
        while kills < 5 and BackgroundWork.objects.exists():
            time.sleep(rng.uniform(0.05, 0.5))
            wait_for(lambda: _batch_in_flight() or not BackgroundWork.objects.exists(), 30, "a batch in flight", 0.01)
            alive = worker_pids(log)
            if not BackgroundWork.objects.exists():
                break
            if not alive:  # the lock is a killed worker's, not yet rolled back
                continue
            victim = alive[-1]
            os.kill(victim, signal.SIGKILL)  # one worker, not the cluster
            kills += 1
            wait_for(lambda: worker_pids(log) not in ([], [victim]), 30, "django-q2 to start a new worker")
            drains_request(KINDS)  # as the next request would: the killed drain had cleared its mark
        wait_for(lambda: not BackgroundWork.objects.exists(), 120, "the backlog to drain", interval=0.5)
    finally:
        stop_group(cluster)

    assert kills >= 3
    assert _pair_counts() == expected
    for newer, older in twins:
        survivor = Memory.objects.get(pk=older.pk)
        assert Memory.objects.get(pk=newer.pk).merged_into_id == older.pk
        assert len(survivor.metadata["semanticVariants"]) == 1
        assert survivor.access_count == 1
        assert survivor.resonance_phi == pytest.approx(0.1)


FACTS = ["Dana drinks green tea every morning.", "The office moved to Lisbon in March.", "Sprint planning is on Mondays."]


def _add_facts(api) -> list:
    ids = []
    for fact in FACTS:
        response = api.post("/api/v1/memories/add", json={"content": fact})
        assert response.status_code == 201, response.text
        ids.append(response.json()["data"]["memory"]["id"])
    return sorted(ids)


def _query(api, conversation: str) -> list:
    body = {"query": "what do I know?", "limit": 3, "similarityThreshold": 0, "conversationId": conversation}
    response = api.post("/api/v1/memories/query", json=body)
    assert response.status_code == 200, response.text
    return response.json()["data"]["memories"]


def test_a_burst_is_counted_exactly_and_work_resumes_after_every_leaf_of_the_cluster_is_killed(tmp_path):
    with served(tmp_path, ANIMA_TASK_TIMEOUT="5", ANIMA_TASK_RETRY="8") as server:
        api = server.api()
        _add_facts(api)
        errors = []

        def burst(thread_no):
            client = server.api()
            try:
                for call in range(50):
                    assert len(_query(client, f"conv-{(thread_no * 50 + call) % 5}")) == 3
            except Exception as exc:  # collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=burst, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        assert errors == []
        wait_for(lambda: sorted(_pair_counts().values()) == [400, 400, 400], 30, "every pair counted 400 times")
        row = MemoryAssociation.objects.first()
        assert sorted(row.conversation_contexts) == [f"conv-{i}" for i in range(5)]

        cluster = server.cluster()
        for leaf in [child for child in cluster.children(recursive=True) if not child.children()]:
            leaf.kill()
        _query(api, "after-the-kill")
        wait_for(lambda: sorted(_pair_counts().values()) == [401, 401, 401], 90, "the new conversation counted")
        assert "after-the-kill" in MemoryAssociation.objects.first().conversation_contexts


def test_a_stopped_task_side_turns_health_503_and_serve_restarts_it(tmp_path):
    with served(tmp_path, ANIMA_TASK_TIMEOUT="5", ANIMA_TASK_RETRY="8", ANIMA_BACKGROUND_STALL_SECONDS="5") as server:
        api = server.api()
        _add_facts(api)
        wait_for(lambda: not BackgroundWork.objects.exists(), 30, "the adds' work to drain")
        assert api.get("/health").status_code == 200
        cluster = server.cluster()

        os.killpg(cluster.pid, signal.SIGSTOP)  # the task side stops: alive, doing nothing
        _query(api, "while-stopped")

        def unhealthy():
            response = api.get("/health")
            return response.status_code == 503 and response.json()["failing"] == ["background"]

        wait_for(unhealthy, 5 + 30, "/health to answer 503 naming background")
        wait_for(lambda: ClusterRestart.objects.exists(), 60, "serve to restart the stalled cluster")
        wait_for(lambda: api.get("/health").status_code == 200, 60, "/health to recover")
        assert sorted(_pair_counts().values()) == [1, 1, 1]
        assert server.cluster().pid != cluster.pid
        assert "no batch was applied" in ClusterRestart.objects.get().reason
        metrics = api.get("/metrics").text
        assert "anima_task_cluster_restarts_total 1.0" in metrics
