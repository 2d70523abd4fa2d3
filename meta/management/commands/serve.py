"""``manage.py serve``: everything needed to answer requests, in one command.

Loading settings starts the embedded PostgreSQL when ``DATABASE_URL`` is unset (this
process holds it; it stops when this command stops). Then: migrate, the database system
checks (pgvector version, embedding space), collectstatic for the admin, the first local
API key, the env-driven staff user, then gunicorn with ``gunicorn.conf.py`` and the
django-q2 worker cluster (``manage.py qcluster``). The children inherit ``DATABASE_URL``
and never start a database of their own. Ctrl-C or SIGTERM stops the children, then the
database.
"""

import os
import shutil
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Migrate, check and serve Anima (gunicorn); starts the embedded database when DATABASE_URL is unset."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("ANIMA_HOST", "127.0.0.1"))
        parser.add_argument("--port", default=os.environ.get("ANIMA_PORT", "8000"))

    def handle(self, *args, host, port, **options):
        self.stdout.write("==> migrating")
        call_command("migrate", interactive=False, verbosity=0)
        call_command("check", databases=["default"], fail_level="ERROR")
        call_command("collectstatic", interactive=False, verbosity=0)
        call_command("ensure_local_key")
        call_command("ensure_superuser")  # only when ANIMA_ADMIN_USERNAME is set
        # Prometheus multiprocess mode: every child writes its samples here; /metrics merges them.
        metrics_dir = settings.ANIMA_DATA_DIR / "prometheus"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "DATABASE_URL": settings.DATABASE_URL, "ANIMA_HOST": host, "ANIMA_PORT": str(port)}
        gunicorn = [sys.executable, "-m", "gunicorn", "--config", str(settings.BASE_DIR / "gunicorn.conf.py")]
        self.stdout.write(f"==> Anima on http://{host}:{port}/  (API: /api/v1/, docs: /api/docs/; Ctrl-C stops)")
        worker = [sys.executable, "manage.py", "qcluster"]
        # Each child in its own process group: a terminal's Ctrl-C reaches only this
        # process, which stops the children in order (django-q2's cluster hangs when its
        # own children get the SIGINT directly).
        children = [
            subprocess.Popen(gunicorn, cwd=settings.BASE_DIR, env=env, start_new_session=True),
            subprocess.Popen(worker, cwd=settings.BASE_DIR, env=env, start_new_session=True),
        ]

        def stop(signum, frame):
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        # When either child ends, stop the other: a server without its worker is half a server.
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        stop(None, None)
        codes = [_wait_or_kill(child) for child in children]
        self.stdout.write("==> stopped")
        sys.exit(max(codes) if max(codes) > 0 else 0)


def _wait_or_kill(child: subprocess.Popen, grace: float = 30) -> int:
    """Wait for a stopping child; after ``grace`` seconds kill its whole process group."""
    try:
        return child.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        return child.wait()
