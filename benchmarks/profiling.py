"""Where a request's time goes: per SQL statement, per Python stage, and CPU per request.

``profile_operations`` runs each single-client operation of the benchmark (warm query, new
add, duplicate add, bootstrap) ``requests`` times through the in-process client and
records, per request on average:

- **wall** ms, and **CPU** ms of this process (``time.process_time``: Django, DRF, the
  service's Python, the model when it embeds) and of the PostgreSQL backend serving the
  connection (its ``/proc/<pid>/stat`` user + system ticks, when the server runs on
  this machine; ``None`` otherwise);
- **statements**: every SQL statement through ``connection.execute_wrapper``, grouped by
  its shape (``SELECT … FROM memories_memoryembedding …``; literals, vectors and id lists
  stripped), with its count and ms per request — the round trips and what they cost
  from the client's side (network, planning, execution);
- **Python stages**: ``cProfile`` over the same requests in a second pass (its overhead
  would distort the first, and inflates these times by up to 2×: read them as shares),
  the functions of Anima's packages and the request framework with the most cumulative
  time per request, and the **hotspots**: every function by its own time.

The database CPU is read in clock ticks (10 ms on Linux): over 200 requests it resolves
0.05 ms a request, over a handful nothing.

Profiling is read-only instrumentation: the requests are the benchmark's own.
"""

import cProfile
import os
import pstats
import re
import time
from collections import defaultdict

from django.db import connection

from locustfiles.texts import QUERY_TEXTS

#: The packages whose functions the stage table shows (plus the request handling around them).
STAGE_PACKAGES = ("memories/", "anima_site/", "keys/", "reflections/", "meta/", "rest_framework/", "django/core/handlers/")
STAGE_ROWS = 15
STATEMENT_ROWS = 12

_LITERALS = re.compile(r"'(?:[^']|'')*'|\b\d+(?:\.\d+)?(?:e[-+]?\d+)?\b|%s", re.IGNORECASE)
_SPACES = re.compile(r"\s+")
_LISTS = re.compile(r"\((?:\s*\?\s*,?)+\)")


def statement_shape(sql: str, width: int = 110) -> str:
    """The statement with its literals, parameters and lists replaced by ``?``, shortened."""
    shape = _SPACES.sub(" ", _LITERALS.sub("?", sql)).strip()
    shape = _LISTS.sub("(…)", shape)
    return shape if len(shape) <= width else shape[: width - 1] + "…"


class StatementRecorder:
    """A ``connection.execute_wrapper``: the ms and count of each statement shape."""

    def __init__(self):
        self.ms: dict[str, float] = defaultdict(float)
        self.count: dict[str, int] = defaultdict(int)

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            shape = statement_shape(sql)
            self.ms[shape] += (time.perf_counter() - started) * 1000
            self.count[shape] += 1


def _backend_cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of a local process, None when it cannot be read."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _backend_pid() -> int | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _function(filename: str, line: int, name: str) -> str:
    where = filename.replace(os.sep, "/")
    for marker in ("/site-packages/", "/work/", "/lib/python"):
        if marker in where:
            where = where.split(marker, 1)[1]
    for package in STAGE_PACKAGES:
        if f"/{package}" in where:
            where = where[where.index(package) :]
    return f"{where.removesuffix('.py')}:{line} {name}"


def _stages(profile: cProfile.Profile, requests: int) -> tuple[list[dict], list[dict]]:
    """(Anima's and the request framework's functions by cumulative time, every function
    by its own time), per request."""
    stages, hotspots = [], []
    for (filename, line, name), (_, calls, tottime, cumtime, _) in pstats.Stats(profile).stats.items():
        function = _function(filename, line, name)
        row = {"function": function, "callsPerRequest": round(calls / requests, 1)}
        hotspots.append({**row, "msPerRequest": round(tottime * 1000 / requests, 3)})
        if function.startswith(STAGE_PACKAGES):
            stages.append({**row, "msPerRequest": round(cumtime * 1000 / requests, 3)})
    stages.sort(key=lambda row: -row["msPerRequest"])
    hotspots.sort(key=lambda row: -row["msPerRequest"])
    return stages[:STAGE_ROWS], hotspots[:STAGE_ROWS]


def profile_operation(operation, requests: int) -> dict:
    """One operation (a callable making one request), profiled as the module says."""
    operation()  # warm: caches, the model, the plan cache
    pid = _backend_pid()
    recorder = StatementRecorder()
    cpu, backend, wall = time.process_time(), _backend_cpu_seconds(pid), time.perf_counter()
    with connection.execute_wrapper(recorder):
        for _ in range(requests):
            operation()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    backend_after = _backend_cpu_seconds(pid)
    backend_ms = None if backend is None or backend_after is None else round((backend_after - backend) * 1000 / requests, 3)
    statements = [
        {"statement": shape, "msPerRequest": round(ms / requests, 3), "perRequest": round(recorder.count[shape] / requests, 2)}
        for shape, ms in sorted(recorder.ms.items(), key=lambda item: -item[1])
    ]
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(requests):
        operation()
    profile.disable()
    stages, hotspots = _stages(profile, requests)
    return {
        "requests": requests,
        "wallMsPerRequest": round(wall * 1000 / requests, 3),
        "cpuMsPerRequest": round(cpu * 1000 / requests, 3),
        "databaseCpuMsPerRequest": backend_ms,
        "sqlMsPerRequest": round(sum(recorder.ms.values()) / requests, 3),
        "statementsPerRequest": round(sum(recorder.count.values()) / requests, 2),
        "statements": statements[:STATEMENT_ROWS],
        "stages": stages,
        "hotspots": hotspots,
    }


def profile_operations(probe, requests: int) -> dict:
    """Each of the probe's single-client operations (``benchmarks.benchmarking.Probe``); the
    warm query asks the load test's questions in turn (their vectors cached by then)."""
    asked = iter(range(10**9))
    return {
        "query_warm": profile_operation(lambda: probe.query(QUERY_TEXTS[next(asked) % len(QUERY_TEXTS)]), requests),
        "add_new": profile_operation(probe.add_new, requests),
        "add_duplicate": profile_operation(probe.add_duplicate, requests),
        "bootstrap": profile_operation(probe.bootstrap, requests),
    }
