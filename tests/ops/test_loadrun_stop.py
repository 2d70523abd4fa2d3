"""The load run's server set leaves no process behind, even one that ignores SIGTERM."""

import os
import signal
import subprocess
import sys
import time

from locustfiles import loadrun

# A parent that exits on SIGTERM and a child (its own fork) that ignores it: what a
# qcluster whose workers are busy looks like to the signal.
PARENT = """
import os, signal, sys, time
pid = os.fork()
if pid == 0:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        time.sleep(0.1)
print(pid, flush=True)
while True:
    time.sleep(0.1)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it has ended all the same.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ")[1][0] != "Z"


def test_stop_ends_the_whole_group_including_a_child_that_ignores_sigterm(monkeypatch):
    monkeypatch.setattr(loadrun, "STOP_TIMEOUT_SECONDS", 1)
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    child = int(parent.stdout.readline())
    assert _alive(child)

    started = time.monotonic()
    loadrun._stop([parent])

    assert parent.returncode == -signal.SIGTERM
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)
    assert time.monotonic() - started < 5


def test_stop_returns_at_once_when_the_group_exits_on_sigterm(monkeypatch):
    monkeypatch.setattr(loadrun, "STOP_TIMEOUT_SECONDS", 30)
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)

    started = time.monotonic()
    loadrun._stop([process])

    assert process.returncode == -signal.SIGTERM
    assert time.monotonic() - started < 5
