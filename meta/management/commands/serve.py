"""``manage.py serve``: everything needed to answer requests, in one command.

Loading settings starts the embedded PostgreSQL when ``DATABASE_URL`` is unset (this
process holds it; it stops when this command stops). Then: migrate, the database system
checks (pgvector version, embedding space), collectstatic (the admin, Swagger UI), the first local
API key, the env-driven staff user, then gunicorn with ``gunicorn.conf.py`` and the
django-q2 worker cluster (``manage.py qcluster``). The children inherit ``DATABASE_URL``
and never start a database of their own.

While serving, it watches the task cluster (``meta.supervision``): when work waits and no
batch was applied for ``ANIMA_TASK_TIMEOUT`` × 2, the cluster is restarted. Ctrl-C or
SIGTERM stops the children (their process groups are killed after
``STOP_GRACE_SECONDS``), then the database, and exits 0; when a child ends on its own,
serve stops the other and exits non-zero.
"""

import logging
import os
import shutil
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from memories.embeddings import get_provider
from meta import supervision

logger = logging.getLogger("anima.serve")


class Command(BaseCommand):
    help = "Migrate, check and serve Anima (gunicorn); starts the embedded database when DATABASE_URL is unset."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("ANIMA_HOST", "127.0.0.1"))
        parser.add_argument("--port", default=os.environ.get("ANIMA_PORT", "8000"))

    def handle(self, *args, host, port, **options):
        self.stdout.write("==> migrating")
        call_command("migrate", interactive=False, verbosity=0)
        call_command("check", databases=["default"], fail_level="ERROR")
        call_command("collectstatic", interactive=False, verbosity=0, ignore_patterns=list(STATIC_NOT_SERVED))
        call_command("ensure_local_key")
        call_command("ensure_superuser")  # only when ANIMA_ADMIN_USERNAME is set
        self.stdout.write("==> preparing the embedding model (the first run exports it to ONNX: a few seconds)")
        get_provider().prepare()
        # Prometheus multiprocess mode: every child writes its samples here; /metrics merges them.
        metrics_dir = settings.ANIMA_DATA_DIR / "prometheus"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "DATABASE_URL": settings.DATABASE_URL, "ANIMA_HOST": host, "ANIMA_PORT": str(port)}
        gunicorn = [sys.executable, "-m", "gunicorn", "--config", str(settings.BASE_DIR / "gunicorn.conf.py")]
        self.stdout.write(f"==> Anima on http://{host}:{port}/  (API: /api/v1/, docs: /api/docs/; Ctrl-C stops)")
        stopping = []  # before the children start: a Ctrl-C from now on stops them in order
        signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(signum))
        signal.signal(signal.SIGINT, lambda signum, frame: stopping.append(signum))
        gunicorn_process = subprocess.Popen(gunicorn, cwd=settings.BASE_DIR, env=env, start_new_session=True)
        cluster = _start_cluster(env)
        queue = supervision.QueueWatch()
        cluster_started = next_check = time.monotonic()
        # When either child ends on its own, stop the other: a server without its worker is half a server.
        while not stopping and gunicorn_process.poll() is None and cluster.poll() is None:
            time.sleep(0.5)
            if not stopping and time.monotonic() >= next_check:
                next_check = time.monotonic() + CHECK_SECONDS
                reason = _stall_reason(time.monotonic() - cluster_started, queue)
                if reason:
                    _stop_group(cluster, grace=RESTART_GRACE_SECONDS)
                    cluster = _start_cluster(env)
                    cluster_started = time.monotonic()
                    queue = supervision.QueueWatch()
                    _restarted(reason)
        requested = bool(stopping)
        codes = _stop_all([gunicorn_process, cluster])
        if requested:
            self.stdout.write(f"==> stopped (exit codes: web {codes[0]}, tasks {codes[1]})")
            sys.exit(0)
        self.stderr.write(f"==> a child ended on its own (exit codes: web {codes[0]}, tasks {codes[1]}); stopped")
        sys.exit(max(codes) if max(codes) > 0 else 1)


#: Static files never served (Redoc is not mounted; source maps are only for debugging the
#: bundles): skipping them keeps each start's collectstatic ~7 s shorter (no compression).
STATIC_NOT_SERVED = ("redoc", "*.map")
#: How often serve looks at the cluster's progress.
CHECK_SECONDS = 5
#: Ctrl-C / SIGTERM: the children get this long to stop before their groups are killed.
STOP_GRACE_SECONDS = 10
RESTART_GRACE_SECONDS = 3


def _start_cluster(env: dict) -> subprocess.Popen:
    # Its own process group: a terminal's Ctrl-C reaches only serve, which stops the
    # children in order (django-q2's cluster hangs when its own children get the SIGINT).
    return subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"], cwd=settings.BASE_DIR, env=env, start_new_session=True
    )


def _stall_reason(cluster_seconds: float, queue: supervision.QueueWatch) -> str | None:
    """Why the cluster should be restarted, or None; never raises (serve must keep serving)."""
    try:
        progress = supervision.progress_read()
    except Exception:  # the database or the Redis broker is down: nothing to judge by
        logger.warning("could not read the background progress", exc_info=True)
        close_old_connections()
        return None
    queue.observe(time.monotonic(), progress.queued_messages)
    window = supervision.stall_window()
    return supervision.stall_reason(progress, cluster_seconds=cluster_seconds, window=window, queue=queue)


def _restarted(reason: str) -> None:
    try:
        supervision.cluster_restarted(reason)
    except Exception:  # the restart happened; only its bookkeeping failed
        logger.warning("task cluster restarted (%s); could not record it", reason, exc_info=True)
        close_old_connections()


def _signal_group(child: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(child.pid, signum)
    except ProcessLookupError:
        pass


def _terminate(child: subprocess.Popen) -> None:
    """SIGTERM to the leader only: gunicorn's master and django-q2's cluster stop their own
    children in order (a cluster whose children get the signal too hangs)."""
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)


def _stop_group(child: subprocess.Popen, *, grace: float) -> int:
    _terminate(child)
    try:
        return child.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        _signal_group(child, signal.SIGKILL)
        return child.wait()


def _stop_all(children: list[subprocess.Popen]) -> list[int]:
    """SIGTERM every child, wait up to ``STOP_GRACE_SECONDS`` in all, then kill what is left of their groups.

    Killing a task cluster loses nothing: its batches roll back and are claimed again.
    """
    for child in children:
        _terminate(child)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    codes = []
    for child in children:
        try:
            codes.append(child.wait(timeout=max(0.1, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            _signal_group(child, signal.SIGKILL)
            codes.append(child.wait())
    for child in children:  # a group outlives its leader: end its other members too
        _signal_group(child, signal.SIGKILL)
    return codes
