"""What serve watches (``meta.supervision``) and what Prometheus is told about background work."""

from datetime import timedelta

import pytest
from django.utils import timezone

from memories.models import BackgroundWork, WorkKind
from meta.models import ClusterRestart
from meta.supervision import Progress, QueueWatch, progress_read, stall_reason
from tests.meta.test_cache_and_metrics import scrape, value

WINDOW = 60


def progress(waiting=None, idle=None, queued=0) -> Progress:
    return Progress(oldest_pending_seconds=waiting, seconds_since_progress=idle, queued_messages=queued)


@pytest.mark.parametrize(
    "state, cluster_seconds, stalled",
    [
        (progress(), 600, False),  # nothing waits
        (progress(waiting=61, idle=5), 600, False),  # old work, but batches are being applied
        (progress(waiting=30, idle=600), 600, False),  # idle, but the work is young
        (progress(waiting=61, idle=61), 600, True),
        (progress(waiting=61, idle=None), 600, True),  # no batch was ever applied
        (progress(waiting=61, idle=61), 59, False),  # a cluster younger than the window gets its chance
    ],
)
def test_a_cluster_is_stalled_only_when_work_waits_and_nothing_moves_for_the_window(state, cluster_seconds, stalled):
    assert (stall_reason(state, cluster_seconds=cluster_seconds, window=WINDOW) is not None) == stalled


def watched(depths, every=5.0) -> QueueWatch:
    queue = QueueWatch()
    for index, depth in enumerate(depths):
        queue.observe(index * every, depth)
    return queue


@pytest.mark.parametrize(
    "depths, stalled",
    [
        ([150] * 14, True),  # 65 s above the limit, not shrinking: tasks are never acknowledged
        ([150 + 10 * i for i in range(14)], True),  # growing
        ([800 - 40 * i for i in range(14)], False),  # a long queue that shrinks: a cluster at work
        ([150] * 6 + [90] + [150] * 7, False),  # it was short within the window
        ([150] * 12, False),  # not watched for a whole window yet
        ([5] * 14, False),
    ],
)
def test_a_long_queue_counts_as_stalled_only_when_it_stays_long_and_does_not_shrink(depths, stalled):
    queue = watched(depths)
    reason = stall_reason(progress(queued=depths[-1]), cluster_seconds=600, window=WINDOW, queue=queue)

    assert (reason is not None) == stalled
    if stalled:
        assert "not acknowledged" in reason


@pytest.mark.django_db
def test_progress_reads_the_oldest_work_and_the_last_batch():
    row = BackgroundWork.objects.create(kind=WorkKind.CATALYST, namespace="default", memory_ids=[])
    BackgroundWork.objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(seconds=90))

    read = progress_read()

    assert 85 <= read.oldest_pending_seconds < 120  # the database's now() is its transaction's start
    assert read.seconds_since_progress is None


@pytest.mark.django_db
def test_prometheus_reports_background_work_per_kind_and_cluster_restarts(api):
    row = BackgroundWork.objects.create(kind=WorkKind.COOCCURRENCE, namespace="default", memory_ids=[])
    BackgroundWork.objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(seconds=42))
    BackgroundWork.objects.create(kind=WorkKind.COOCCURRENCE, namespace="default", memory_ids=[])
    ClusterRestart.objects.create(reason="test")

    samples = scrape(api)

    assert value(samples, "anima_background_pending", kind="cooccurrence") == 2
    assert value(samples, "anima_background_pending", kind="catalyst") == 0
    assert 40 <= value(samples, "anima_background_lag_seconds", kind="cooccurrence") < 60
    assert value(samples, "anima_background_lag_seconds", kind="consolidation") == 0
    assert value(samples, "anima_task_cluster_restarts_total") == 1
