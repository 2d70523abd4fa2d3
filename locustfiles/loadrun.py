"""Start the production server set and drive locust against it (``manage.py benchmark --locust``).

The server set is what ``manage.py serve`` starts, minus the migrations: gunicorn with
``gunicorn.conf.py`` and a django-q2 worker cluster (``manage.py qcluster``), both on the
benchmark's database (``DATABASE_URL``), on a free port, with per-key throttling off.
No Django here: this module only starts processes and reads locust's CSV.
"""

import csv
import os
import runpy
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from locustfiles.budget import EndpointStats, budget_violations, max_error_rate, p95_budgets

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
READY_TIMEOUT_SECONDS = 180
STOP_TIMEOUT_SECONDS = 30


class LoadRunError(Exception):
    pass


@dataclass(frozen=True)
class ServerSet:
    url: str
    log: Path
    gunicorn: dict


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def gunicorn_settings(base_dir: Path) -> dict:
    """workers, threads and worker class as gunicorn.conf.py resolves them in this environment."""
    conf = runpy.run_path(str(base_dir / "gunicorn.conf.py"))
    return {"workers": conf["workers"], "threads": conf["threads"], "workerClass": conf["worker_class"]}


def _wait_ready(url: str, processes: list[subprocess.Popen], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if any(process.poll() is not None for process in processes):
            break
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    raise LoadRunError(f"the server set did not become ready at {url}; log tail:\n{tail}")


def _signal_group(pgid: int, signum: int) -> bool:
    """Send ``signum`` to the process group; False when no process of it is left."""
    try:
        os.killpg(pgid, signum)  # the process and every child it forked (gunicorn workers, q workers)
    except ProcessLookupError:
        return False
    return True


def _stop(processes: list[subprocess.Popen]) -> None:
    """SIGTERM each started process group; SIGKILL the groups still alive after the timeout.

    Each child was started in a session of its own, so its group holds exactly what this
    run started, and a group outlives its leader: a qcluster whose parent exits first
    cannot leave its workers behind, because the wait is for the whole group.
    """
    for process in processes:
        _signal_group(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    alive = list(processes)
    while alive and time.monotonic() < deadline:
        for process in alive:
            process.poll()  # reap the leader, or it stays a zombie member of its group
        alive = [process for process in alive if _signal_group(process.pid, 0)]
        if alive:
            time.sleep(0.2)
    for process in alive:
        _signal_group(process.pid, signal.SIGKILL)
    for process in processes:
        process.wait()


@contextmanager
def server_set(*, base_dir: Path, database_url: str, workdir: Path, with_worker: bool = True):
    """gunicorn (and the task worker) on a free port; stopped, with SIGTERM, on exit."""
    port = free_port()
    metrics_dir = workdir / "prometheus"
    metrics_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "ANIMA_HOST": "127.0.0.1",
        "ANIMA_PORT": str(port),
        "ANIMA_RATE_LIMIT": "off",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    log = workdir / "server.log"
    commands = [[sys.executable, "-m", "gunicorn", "--config", str(base_dir / "gunicorn.conf.py")]]
    if with_worker:
        commands.append([sys.executable, "manage.py", "qcluster"])
    processes: list[subprocess.Popen] = []
    url = f"http://127.0.0.1:{port}"
    try:
        with open(log, "ab") as output:
            for command in commands:
                processes.append(
                    subprocess.Popen(
                        command, cwd=base_dir, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
                    )
                )
        _wait_ready(url, processes, log)
        yield ServerSet(url=url, log=log, gunicorn=gunicorn_settings(base_dir))
    finally:
        _stop(processes)


def _number(value: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def read_stats(csv_path: Path) -> dict:
    """locust's ``<prefix>_stats.csv``: per endpoint and the aggregate."""
    endpoints, total = {}, None
    with open(csv_path, newline="") as file:
        for row in csv.DictReader(file):
            stats = {
                "requests": int(_number(row["Request Count"])),
                "failures": int(_number(row["Failure Count"])),
                "requestsPerSecond": round(_number(row["Requests/s"]), 1),
                "p50": _number(row["50%"]),
                "p95": _number(row["95%"]),
                "p99": _number(row["99%"]),
                "max": _number(row["Max Response Time"]),
                "mean": round(_number(row["Average Response Time"]), 1),
            }
            if row["Name"] == "Aggregated":
                total = stats
            else:
                endpoints[row["Name"]] = stats
    return {"endpoints": endpoints, "total": total}


def run_locust(
    *, url: str, key: str, users: int, spawn_rate: int, seconds: int, think_seconds: float, check: bool, workdir: Path, name: str
) -> dict:
    """One headless locust run of the traffic mix; its stats, exit code and budget verdict."""
    prefix = workdir / name
    env = {
        **os.environ,
        "ANIMA_API_KEY": key,
        "ANIMA_LOCUST_THINK_SECONDS": str(think_seconds),
        "ANIMA_LOCUST_CHECK": "true" if check else "false",
    }
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", str(users), "-r", str(spawn_rate),
        "-t", f"{seconds}s", "--host", url, "--csv", str(prefix), "--only-summary", "--stop-timeout", "5",
    ]  # fmt: skip
    load_before = os.getloadavg()[0]
    with open(workdir / f"{name}.log", "wb") as output:
        completed = subprocess.run(command, env=env, stdout=output, stderr=subprocess.STDOUT, timeout=seconds + 180)
    stats = read_stats(Path(f"{prefix}_stats.csv"))
    endpoint_stats = [
        EndpointStats(name=n, requests=s["requests"], failures=s["failures"], p95_ms=s["p95"]) for n, s in stats["endpoints"].items()
    ]
    problems = budget_violations(endpoint_stats, budgets=p95_budgets(env), error_rate=max_error_rate(env))
    return {
        "users": users,
        "spawnRate": spawn_rate,
        "seconds": seconds,
        "thinkSeconds": think_seconds,
        "exitCode": completed.returncode,
        "budgets": {"p95Ms": p95_budgets(env), "maxErrorRate": max_error_rate(env)},
        "problems": problems,
        "passed": not problems,
        "loadAverageBefore": round(load_before, 2),
        "loadAverageAfter": round(os.getloadavg()[0], 2),
        **stats,
    }
