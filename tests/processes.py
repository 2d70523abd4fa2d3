"""Real processes against the test database: a django-q2 cluster, or ``manage.py serve``.

Each runs in its own process group (so a test can signal the whole group) and writes its
output to a log file the test can read (worker pids: "ready for work at <pid>").
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import psutil
from django.conf import settings
from django.db import connection

READY = re.compile(r"ready for work at (\d+)")


def database_url() -> str:
    db = connection.settings_dict
    host = db["HOST"] or db["OPTIONS"].get("host", "")
    port = f":{db['PORT']}" if db["PORT"] else ""
    password = f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else ""
    return f"postgresql://{quote(db['USER'], safe='')}{password}@{quote(host, safe='')}{port}/{db['NAME']}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environment(**overrides: str) -> dict:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "anima_site.settings",
        "DATABASE_URL": database_url(),
        "ANIMA_TASKS_SYNC": "false",
        "ANIMA_TASK_POLL": "0.2",
        "ANIMA_TASK_BROKER": "orm",
    }
    env.update(overrides)
    return env


def start(command: list[str], env: dict, log: Path) -> subprocess.Popen:
    with open(log, "ab") as output:
        return subprocess.Popen(
            command, cwd=settings.BASE_DIR, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop_group(process: subprocess.Popen, sig=signal.SIGTERM, grace: float = 15) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, sig)
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # whatever is left of the group
    except ProcessLookupError:
        pass
    process.wait()


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def worker_pids(log: Path) -> list[int]:
    """Task workers that said they were ready and are still alive, latest last."""
    pids = [int(pid) for pid in READY.findall(log.read_text(errors="replace"))]
    return [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]


def leaves(root_pid: int) -> list[psutil.Process]:
    """The processes under ``root_pid`` that have no children of their own."""
    return [child for child in psutil.Process(root_pid).children(recursive=True) if not child.children()]


@dataclass
class Served:
    process: subprocess.Popen
    base: str
    key: str
    log: Path

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers={"Authorization": f"Bearer {self.key}"}, timeout=30)

    def cluster(self) -> psutil.Process:
        """The task cluster serve runs now (``manage.py qcluster``, its direct child)."""
        for child in psutil.Process(self.process.pid).children():
            if "qcluster" in " ".join(child.cmdline()):
                return child
        raise AssertionError("serve runs no task cluster")


@contextmanager
def served(tmp_path: Path, **overrides: str):
    """``manage.py serve`` on a free loopback port against the test database."""
    port = free_port()
    env = environment(**{"ANIMA_RATE_LIMIT": "off", **overrides, "ANIMA_DATA_DIR": str(tmp_path), "ANIMA_PORT": str(port)})
    log = tmp_path / "serve.log"
    process = start([sys.executable, "manage.py", "serve"], env, log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, f"serve exited during start-up:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "serve did not come up"
            time.sleep(0.5)
        yield Served(process=process, base=base, key=(tmp_path / "local-api-key").read_text().strip(), log=log)
    finally:
        try:  # serve's children run in groups of their own: find them while serve is alive
            family = psutil.Process(process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            family = []
        stop_group(process, signal.SIGKILL)
        for member in family:
            try:
                member.kill()
            except psutil.NoSuchProcess:
                pass
