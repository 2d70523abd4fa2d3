"""Whether a task cluster makes progress: what ``manage.py serve`` watches.

A cluster is stalled when, for longer than the window (``ANIMA_TASK_TIMEOUT`` × 2, and
the cluster has run at least that long):

- work is waiting and no batch of any kind was applied — the workers are dead, hung or
  cannot reach the database; or
- the broker holds more than ``STALLED_QUEUE_DEPTH`` messages — with drains coalesced
  it holds a few per kind, so a growing queue means tasks run but are never
  acknowledged (a worker killed while holding the result queue's lock wedges django-q2
  that way).

``serve`` then restarts the cluster (``ClusterRestart`` row, log line, metric).
"""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import connection

from memories.background import drains_request, oldest_pending_seconds, pending_kinds
from memories.models import BackgroundDrain
from meta.models import ClusterRestart
from meta.selectors import queue_stats

logger = logging.getLogger("anima.serve")

STALLED_QUEUE_DEPTH = 100


@dataclass(frozen=True)
class Progress:
    #: Age of the oldest work waiting; None when nothing waits.
    oldest_pending_seconds: float | None
    #: Seconds since the last batch was applied; None when none ever was.
    seconds_since_progress: float | None
    queued_messages: int


def stall_window() -> float:
    return settings.ANIMA_TASK_TIMEOUT * 2


def progress_read() -> Progress:
    with connection.cursor() as cursor:
        cursor.execute("SELECT extract(epoch FROM now() - max(progressed_at)) FROM memories_backgrounddrain")
        since = cursor.fetchone()[0]
    return Progress(
        oldest_pending_seconds=oldest_pending_seconds(),
        seconds_since_progress=None if since is None else float(since),
        queued_messages=queue_stats()["queued"],
    )


def stall_reason(progress: Progress, *, cluster_seconds: float, window: float) -> str | None:
    """Why the cluster counts as stalled, or None when it does not."""
    if cluster_seconds <= window:
        return None
    waiting = progress.oldest_pending_seconds
    idle = progress.seconds_since_progress
    if waiting is not None and waiting > window and (idle is None or idle > window):
        return f"work has waited {waiting:.0f} s and no batch was applied for {window:.0f} s"
    if progress.queued_messages > STALLED_QUEUE_DEPTH:
        return f"the broker holds {progress.queued_messages} messages (tasks are not being acknowledged)"
    return None


def cluster_restarted(reason: str) -> None:
    """Record a restart, and ask again for the drains the old cluster may have taken with it."""
    logger.warning("task cluster restarted: %s", reason)
    ClusterRestart.objects.create(reason=reason[:300])
    BackgroundDrain.objects.update(queued_at=None)
    drains_request(pending_kinds())
