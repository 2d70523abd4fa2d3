"""The benchmark harness cannot rot: a tiny run writes a well-formed report and leaves nothing behind.

Timings are not asserted (the suite runs on shared machines); the shape of the report,
the clean-up and the load test's pass/fail rule are.
"""

import json
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.management import call_command

from locustfiles.budget import EndpointStats, budget_violations, p95_budgets
from locustfiles.loadrun import read_stats
from locustfiles.report import evaluate_targets
from locustfiles.texts import MEMORY_TEXT_COUNT, QUERY_TEXTS, memory_text
from django_q.conf import Conf
from django_q.models import OrmQ, Task

from keys.models import ApiKey
from memories.models import Memory, MemoryEmbedding, TierCount
from tests.factories import make_memories

SERIES = {"add_new", "add_duplicate", "query_cold", "query_warm", "query_warm_semantic", "bootstrap"}
BYSTANDER = "smoke-bystander"
TARGET_IDS = {
    "query_warm_p50",
    "query_warm_p95",
    "query_new_p50",
    "query_scale_ratio",
    "agreement",
    "add_new_p50",
    "add_duplicate_p50",
    "bootstrap_p50",
    "locust_mix",
    "saturation",
}


def _names_bench(args) -> bool:
    """A task argument naming a benchmark namespace or conversation (``bench-…``)."""
    return any(isinstance(arg, str) and arg.startswith("bench-") for arg in args or ())


@pytest.fixture(scope="module")
def smoke_run(django_db_setup, django_db_blocker, tmp_path_factory):
    """One tiny run for the module, committed for real, its tasks queued as in production (no
    worker runs), so the run's own clean-up of the queue is exercised too.

    Beside it, a memory of another namespace that the run must neither change nor remove.
    """
    out = tmp_path_factory.mktemp("benchmark")
    with django_db_blocker.unblock(), pytest.MonkeyPatch.context() as patch:
        patch.setattr(Conf, "SYNC", False)
        [bystander] = make_memories([{"content": "Bystanders keep their memories.", "vector": np.ones(384)}], namespace=BYSTANDER)
        call_command(
            "benchmark", "--synthetic", "--sizes", "150,300", "--iterations", "3", "--agreement-queries", "3",
            "--out", str(out), "--name", "smoke", "--no-progress", "--profile", "2", stdout=StringIO(),
        )  # fmt: skip
    yield out, bystander
    with django_db_blocker.unblock():
        Memory.objects.filter(namespace=BYSTANDER).delete()
        TierCount.objects.filter(namespace=BYSTANDER).delete()


def test_the_largest_size_is_profiled_per_statement_and_per_python_stage(smoke_run):
    out, _ = smoke_run
    report = json.loads((out / "smoke.json").read_text())

    assert "profile" not in report["sizes"][0]
    profile = report["sizes"][-1]["profile"]
    assert set(profile) == {"query_warm", "add_new", "add_duplicate", "bootstrap"}
    for run in profile.values():
        assert run["requests"] == 2
        assert run["wallMsPerRequest"] > 0 and run["cpuMsPerRequest"] > 0 and run["databaseCpuMsPerRequest"] >= 0
        assert run["statements"] and all(row["perRequest"] > 0 for row in run["statements"])
        assert 0 < run["sqlMsPerRequest"] < run["wallMsPerRequest"]
        assert any(row["function"].startswith("memories/") for row in run["stages"])
        assert run["hotspots"] and all(row["msPerRequest"] >= 0 for row in run["hotspots"])
    hnsw = [row for row in profile["query_warm"]["statements"] if "memories_memoryembedding" in row["statement"]]
    assert hnsw and "'" not in "".join(row["statement"] for row in hnsw)  # literals stripped
    assert "## Where the time goes (300 memories" in (out / "smoke.md").read_text()


def test_a_small_run_writes_json_markdown_and_png(smoke_run):
    out, _ = smoke_run
    report = json.loads((out / "smoke.json").read_text())

    assert [entry["size"] for entry in report["sizes"]] == [150, 300]
    for entry in report["sizes"]:
        assert set(entry["latency"]) == SERIES | {"cacheSurprises"}
        for name in SERIES:
            stats = entry["latency"][name]
            assert stats["n"] == 3
            assert 0 < stats["p50"] <= stats["p95"] <= stats["p99"] <= stats["max"]
        assert entry["agreement"]["queries"] == 3
        assert 0 <= entry["agreement"]["mean"] <= 1
        assert entry["liveMemories"] >= entry["size"]
    assert {"cpuCount", "cpuModel", "memoryGiB", "python", "postgresql", "pgvector"} <= set(report["machine"])
    assert {row["id"] for row in report["targets"]} == TARGET_IDS
    assert all(entry["embeddingMs"]["p50"] > 0 for entry in report["sizes"])
    assert (out / "smoke.md").read_text().startswith("# Anima benchmark")
    assert (out / "smoke-query-latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.django_db
def test_a_run_removes_its_namespace_and_key_and_leaves_others_alone(smoke_run):
    _, bystander = smoke_run
    assert not Memory.objects.filter(namespace__startswith="bench-").exists()
    assert not MemoryEmbedding.objects.filter(namespace__startswith="bench-").exists()
    assert not TierCount.objects.filter(namespace__startswith="bench-").exists()
    assert not ApiKey.objects.filter(namespace__startswith="bench-").exists()
    assert not [row for row in OrmQ.objects.all() if _names_bench(row.task.get("args"))]
    assert not [task for task in Task.objects.all() if _names_bench(task.args)]
    other = Memory.objects.get(pk=bystander.pk)
    assert (other.access_count, other.resonance_phi, other.deleted_at) == (0, 0.0, None)


def test_generated_statements_are_distinct():
    texts = [memory_text(i) for i in range(20_000)] + [memory_text(MEMORY_TEXT_COUNT - 1)]

    assert len(set(texts)) == len(texts)
    assert len(set(QUERY_TEXTS)) == len(QUERY_TEXTS) == 50


def test_the_load_test_fails_on_a_slow_endpoint_or_too_many_errors():
    budgets = p95_budgets({"ANIMA_LOCUST_P95_MS": "50", "ANIMA_LOCUST_P95_MS_ADD": "80"})
    fine = [EndpointStats("add", 100, 0, 70), EndpointStats("query", 300, 1, 45), EndpointStats("bootstrap", 100, 0, 9)]
    slow = [EndpointStats("add", 100, 0, 70), EndpointStats("query", 300, 0, 51)]
    failing = [EndpointStats("query", 100, 2, 10)]

    assert budget_violations(fine, budgets=budgets, error_rate=0.01) == []
    assert budget_violations(slow, budgets=budgets, error_rate=0.01) == ["query: p95 51 ms > budget 50 ms"]
    assert budget_violations(failing, budgets=budgets, error_rate=0.01) == ["error rate 2.00% > 1.00% (2 of 100)"]


def test_locust_csv_stats_are_read_per_endpoint(tmp_path):
    columns = (
        "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,"
        "Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%"
    )
    rows = [
        "POST,query,300,0,12,14.2,5,80,4000,5.0,0.0,12,13,14,15,18,25,30,40,80,80,80",
        ",Aggregated,300,0,12,14.2,5,80,4000,5.0,0.0,12,13,14,15,18,25,30,40,80,80,80",
    ]
    path = tmp_path / "run_stats.csv"
    path.write_text("\n".join([columns, *rows]) + "\n")

    stats = read_stats(path)

    assert stats["endpoints"]["query"] == {
        "requests": 300, "failures": 0, "requestsPerSecond": 5.0, "p50": 12.0, "p95": 25.0, "p99": 40.0,
        "max": 80.0, "mean": 14.2,
    }  # fmt: skip
    assert stats["total"]["requests"] == 300


def test_the_locustfile_compiles():
    path = Path(settings.BASE_DIR) / "locustfiles" / "locustfile.py"

    compile(path.read_text(), str(path), "exec")


def _series(p50, p95=None):
    return {"p50": p50, "p95": p95 or p50, "p99": p95 or p50}


def test_targets_judge_the_http_series_and_bound_adds_by_the_embedding_time():
    in_process = {name: _series(99.0) for name in ("query_warm", "query_cold", "add_new", "add_duplicate", "bootstrap")}
    http = {
        "query_warm": _series(9.0, 19.0),
        "query_cold": _series(31.0),
        "add_new": _series(29.0),
        "add_duplicate": _series(4.0),
        "bootstrap": _series(6.0),
    }
    report = {
        "sizes": [
            {"latency": {**in_process, "query_warm": _series(10.0)}},
            {"latency": {**in_process, "query_warm": _series(12.0)}, "agreement": {"mean": 0.995}, "embeddingMs": _series(20.0)},
        ],
        "http": {"latency": http},
        "locust": {
            "mix": {"total": {"failures": 0}, "endpoints": {"query": {"p95": 80.0}, "add": {"p95": 120.0}}},
            "saturation": {"total": {"failures": 1, "requestsPerSecond": 160.0}},
        },
    }

    met = {row["id"]: (row["measured"], row["met"]) for row in evaluate_targets(report)}

    assert met["query_warm_p50"] == (9.0, True)  # HTTP, not the in-process 12
    assert met["query_new_p50"] == (31.0, False)  # embedding 20 + 10
    assert met["add_new_p50"] == (29.0, False)  # embedding 20 + 8
    assert met["add_duplicate_p50"] == (4.0, True)
    assert met["bootstrap_p50"] == (6.0, False)
    assert met["query_scale_ratio"] == (1.2, True)
    assert met["agreement"] == (0.995, True)
    assert met["locust_mix"] == (120.0, False)
    assert met["saturation"] == (160.0, False)  # one error
    shown = {row["id"]: row["target"] for row in evaluate_targets(report)}
    assert shown["add_new_p50"] == "add, new content, p50 <= embedding + 8 = 28"
