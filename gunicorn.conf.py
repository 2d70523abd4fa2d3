"""gunicorn settings for Anima (used by ``manage.py serve`` and in production).

Each worker loads the embedding model once, after the fork (torch and fork do not mix),
and warms it before taking traffic. ``ANIMA_TORCH_THREADS`` × workers should not exceed
the cores; the defaults suit a 2-core machine.
"""

import os

bind = f"{os.environ.get('ANIMA_HOST', '127.0.0.1')}:{os.environ.get('ANIMA_PORT', '8000')}"
workers = int(os.environ.get("ANIMA_WEB_WORKERS", "2"))
threads = int(os.environ.get("ANIMA_WEB_THREADS", "4"))
worker_class = "gthread"
timeout = int(os.environ.get("ANIMA_WEB_TIMEOUT", "60"))
graceful_timeout = 8  # serve kills what is left after 10 s
keepalive = 5
# The longest request line gunicorn accepts (its maximum); longer ones get its own 400.
limit_request_line = 8190
# One line per request on stdout; ANIMA_WEB_ACCESS_LOG=off leaves it out (measured: within
# the noise of a single client, see README "Benchmarks and load test").
accesslog = None if os.environ.get("ANIMA_WEB_ACCESS_LOG", "on").lower() in ("off", "false", "0") else "-"
errorlog = "-"
wsgi_app = "anima_site.wsgi:application"


def child_exit(server, worker):
    """Prometheus multiprocess mode: forget the samples of a worker that is gone."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker):
    from memories.embeddings import get_provider

    get_provider().check_ready()
