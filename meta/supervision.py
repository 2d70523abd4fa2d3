"""Whether a task cluster makes progress: what ``manage.py serve`` watches.

A cluster is stalled when, for longer than the window (``ANIMA_TASK_TIMEOUT`` × 2, and
the cluster has run at least that long):

- work is waiting and no batch of any kind was applied — the workers are dead, hung or
  cannot reach the database; or
- the broker held more than ``STALLED_QUEUE_DEPTH`` messages all along and did not
  shrink — with drains coalesced it holds a few per kind, so a queue that stays long
  means tasks run but are never acknowledged (a worker killed while holding the result
  queue's lock wedges django-q2 that way), while a long queue that shrinks (the
  one-message-per-request backlog of an older version, say) is a cluster at work.

``serve`` then restarts the cluster (``ClusterRestart`` row, log line, metric).
"""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction

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
    """Three small reads, each allowed 2 s: a hung database must not hold serve's loop."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = '2s'")
        cursor.execute("SELECT extract(epoch FROM now() - max(progressed_at)) FROM memories_backgrounddrain")
        since = cursor.fetchone()[0]
        oldest = oldest_pending_seconds()
    return Progress(
        oldest_pending_seconds=oldest,
        seconds_since_progress=None if since is None else float(since),
        queued_messages=queue_stats().queued,
    )


class QueueWatch:
    """The broker's depth over time, for the "never acknowledged" rule."""

    def __init__(self):
        self.samples: list[tuple[float, int]] = []

    def observe(self, at: float, depth: int) -> None:
        self.samples.append((at, depth))

    def stuck(self, *, window: float) -> int | None:
        """The depth now when it stayed above ``STALLED_QUEUE_DEPTH`` for ``window`` seconds
        without shrinking; None otherwise."""
        if not self.samples:
            return None
        now, depth = self.samples[-1]
        self.samples = [(at, d) for at, d in self.samples if at >= now - window * 2]
        older = [(at, d) for at, d in self.samples if at <= now - window]
        if not older:
            return None  # not watched for a whole window yet
        start = older[-1]
        recent = [d for at, d in self.samples if at >= start[0]]
        if min(recent) > STALLED_QUEUE_DEPTH and depth >= start[1]:
            return depth
        return None


def stall_reason(
    progress: Progress, *, cluster_seconds: float, window: float, queue: QueueWatch | None = None
) -> str | None:
    """Why the cluster counts as stalled, or None when it does not."""
    if cluster_seconds <= window:
        return None
    waiting = progress.oldest_pending_seconds
    idle = progress.seconds_since_progress
    if waiting is not None and waiting > window and (idle is None or idle > window):
        return f"work has waited {waiting:.0f} s and no batch was applied for {window:.0f} s"
    stuck = queue.stuck(window=window) if queue is not None else None
    if stuck is not None:
        return f"the broker has held over {STALLED_QUEUE_DEPTH} messages for {window:.0f} s ({stuck} now): tasks are not acknowledged"
    return None


def cluster_restarted(reason: str) -> None:
    """Record a restart, and ask again for the drains the old cluster may have taken with it."""
    logger.warning("task cluster restarted: %s", reason)
    ClusterRestart.objects.create(reason=reason[:300])
    BackgroundDrain.objects.update(queued_at=None)
    drains_request(pending_kinds())
