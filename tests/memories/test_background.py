"""Background work as rows (SPEC §5): what requests record, how drains are requested and
coalesced, how batches are claimed and applied. Real worker processes are in
``tests/ops/test_background_processes.py``."""

import threading
import time
import uuid
from datetime import timedelta
from itertools import combinations

import numpy as np
import pytest
from django.db import OperationalError, connection, transaction
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.tasks import async_task

from memories.background import REQUEST_STALE_SECONDS, drains_request, work_after_add
from memories.models import BackgroundDrain, BackgroundWork, Memory, MemoryAssociation, WorkKind
from memories.services.adding import memory_add
from memories.services.consolidation import Outcome
from memories.services.draining import work_drain, work_drain_batch
from tests.api_paths import ADD, QUERY
from tests.factories import make_memories

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued_for_real(monkeypatch):
    """Tasks go to the broker (the ORM queue) instead of running at once, as with a worker."""
    monkeypatch.setattr(Conf, "SYNC", False)


def drain_messages() -> list[str]:
    return sorted(entry.task["args"][0] for entry in OrmQ.objects.all() if entry.task["func"] == "memories.tasks.drain")


@pytest.fixture
def three_memories():
    return make_memories([{"content": f"note {i}", "vector": np.eye(384)[0] + 0.1 * np.eye(384)[i + 1]} for i in range(3)])


# What requests record


def test_a_query_in_a_conversation_leaves_cooccurrence_catalyst_and_access_work(post_json, three_memories, fake_embedder):
    fake_embedder.vectors["notes"] = np.eye(384)[0]

    response = post_json(QUERY, {"query": "notes", "conversationId": "c1", "similarityThreshold": 0})

    assert response.status_code == 200
    ids = sorted(m.id for m in three_memories)
    rows = {row.kind: row for row in BackgroundWork.objects.all()}
    assert set(rows) == {"cooccurrence", "catalyst", "access"}
    assert sorted(rows["cooccurrence"].memory_ids) == ids and rows["cooccurrence"].conversation_id == "c1"
    assert sorted(rows["catalyst"].memory_ids) == ids
    assert sorted(rows["access"].memory_ids) == ids
    assert rows["cooccurrence"].id < rows["catalyst"].id


def test_a_query_without_a_conversation_leaves_no_cooccurrence_work(post_json, three_memories, fake_embedder):
    fake_embedder.vectors["notes"] = np.eye(384)[0]

    post_json(QUERY, {"query": "notes", "similarityThreshold": 0})

    assert list(BackgroundWork.objects.order_by("id").values_list("kind", flat=True)) == ["catalyst", "access"]


def test_an_add_leaves_consolidation_and_catalyst_work(post_json):
    response = post_json(ADD, {"content": "A new fact to consolidate."})

    memory_id = uuid.UUID(response.json()["data"]["memory"]["id"])
    kinds = {row.kind: row.memory_ids for row in BackgroundWork.objects.all()}
    assert kinds == {"consolidation": [memory_id], "catalyst": [memory_id]}


def test_a_catalyst_add_leaves_no_catalyst_detection(post_json):
    post_json(ADD, {"content": "A pivotal fact.", "isCatalyst": True})

    assert list(BackgroundWork.objects.values_list("kind", flat=True)) == ["consolidation"]


def test_no_consolidation_work_when_it_is_switched_off(post_json, settings):
    settings.ANIMA_SEMANTIC_CONSOLIDATION = False

    post_json(ADD, {"content": "Consolidation is off."})

    assert list(BackgroundWork.objects.values_list("kind", flat=True)) == ["catalyst"]


def test_an_add_that_rolls_back_leaves_no_work():
    with pytest.raises(RuntimeError), transaction.atomic():
        memory_add(namespace="default", content="This add never commits.")
        raise RuntimeError("the request fails after the add")

    assert not BackgroundWork.objects.exists()
    assert not Memory.objects.exists()


# Requesting drains: at most one queued per kind


@pytest.mark.django_db(transaction=True)
def test_many_requests_queue_one_drain_per_kind(post_json, three_memories, fake_embedder, queued_for_real):
    fake_embedder.vectors["notes"] = np.eye(384)[0]

    for i in range(20):
        assert post_json(QUERY, {"query": "notes", "conversationId": f"c{i % 5}", "similarityThreshold": 0}).status_code == 200

    assert BackgroundWork.objects.count() == 60
    assert drain_messages() == ["access", "catalyst", "cooccurrence"]


@pytest.mark.django_db(transaction=True)
def test_a_drain_that_started_lets_the_next_request_queue_another(queued_for_real):
    assert drains_request(["catalyst"]) == ["catalyst"]
    assert drains_request(["catalyst"]) == []

    work_drain(kind="catalyst")  # a worker took the message and started

    assert drains_request(["catalyst"]) == ["catalyst"]
    assert drain_messages() == ["catalyst", "catalyst"]


@pytest.mark.django_db(transaction=True)
def test_a_queued_drain_older_than_the_stale_limit_is_presumed_lost(queued_for_real):
    drains_request(["consolidation"])
    BackgroundDrain.objects.filter(kind="consolidation").update(
        queued_at=timezone.now() - timedelta(seconds=REQUEST_STALE_SECONDS + 1)
    )

    assert drains_request(["consolidation"]) == ["consolidation"]


# Draining


def _leave(kind, memories, conversation_id=None):
    return BackgroundWork.objects.create(
        kind=kind, namespace="default", memory_ids=[m.id for m in memories], conversation_id=conversation_id
    )


def test_catalyst_work_waits_for_the_cooccurrences_recorded_before_it():
    hub, *others = make_memories([{"content": f"m{i}"} for i in range(6)], with_embeddings=False)
    for other in others:
        _leave(WorkKind.COOCCURRENCE, [hub, other], conversation_id="c1")
    _leave(WorkKind.CATALYST, [hub])

    assert work_drain_batch(kind=WorkKind.CATALYST) == 0  # the pairs before it are not counted yet
    assert work_drain_batch(kind=WorkKind.COOCCURRENCE) == 5
    assert work_drain_batch(kind=WorkKind.CATALYST) == 1

    candidate = Memory.objects.get(pk=hub.pk).metadata["catalystCandidate"]
    assert candidate["reasons"] == ["high_connectivity"] and candidate["signals"]["connections"] == 5


def test_a_cooccurrence_drain_runs_the_catalyst_drain_after_it():
    hub, *others = make_memories([{"content": f"m{i}"} for i in range(6)], with_embeddings=False)
    for other in others:
        _leave(WorkKind.COOCCURRENCE, [hub, other], conversation_id="c1")
    _leave(WorkKind.CATALYST, [hub])

    work_drain(kind=WorkKind.COOCCURRENCE)  # tests run tasks at once: the catalyst drain too

    assert not BackgroundWork.objects.exists()
    assert "catalystCandidate" in Memory.objects.get(pk=hub.pk).metadata


def test_consolidation_merges_every_waiting_memory_once():
    same = np.ones(384)
    pairs = [
        make_memories([{"content": f"the cat sat on mat {i}!", "vector": same + np.eye(384)[i]},
                       {"content": f"The cat sat on mat {i}.", "vector": same + np.eye(384)[i]}])
        for i in range(3)
    ]  # fmt: skip
    for newer, _ in pairs:
        _leave(WorkKind.CONSOLIDATION, [newer])
    _leave(WorkKind.CONSOLIDATION, [pairs[0][0]])  # the same memory twice in one batch

    assert work_drain(kind=WorkKind.CONSOLIDATION) == 4  # one memory per batch

    for newer, older in pairs:
        assert Memory.objects.get(pk=newer.pk).merged_into_id == older.pk
        assert len(Memory.objects.get(pk=older.pk).metadata["semanticVariants"]) == 1


def test_a_memory_whose_consolidation_fails_does_not_block_the_others(monkeypatch):
    from memories.services import draining

    first, second = make_memories([{"content": "a", "vector": np.eye(384)[0]}, {"content": "b", "vector": np.eye(384)[1]}])
    seen = []

    def consolidate(*, memory_id):
        seen.append(memory_id)
        if memory_id == first.id:
            Memory.objects.filter(pk=first.pk).update(content="half-written")
            raise ValueError("a bug in one memory's consolidation")
        return Outcome.NO_CANDIDATE

    monkeypatch.setattr(draining, "memory_consolidate", consolidate)
    _leave(WorkKind.CONSOLIDATION, [first, second])

    assert work_drain_batch(kind=WorkKind.CONSOLIDATION) == 1

    assert seen == [first.id, second.id]
    assert Memory.objects.get(pk=first.pk).content == "a"  # its savepoint rolled back
    assert not BackgroundWork.objects.exists()


def test_a_drain_past_its_budget_hands_the_rest_to_a_successor(monkeypatch, queued_for_real):
    from memories.services import draining

    pair = make_memories([{"content": "a"}, {"content": "b"}], with_embeddings=False)
    for i in range(5):
        _leave(WorkKind.COOCCURRENCE, pair, conversation_id=f"c{i}")
    monkeypatch.setitem(draining.BATCH_ROWS, WorkKind.COOCCURRENCE, 2)

    applied = work_drain(kind=WorkKind.COOCCURRENCE, budget_seconds=0)

    assert applied == 2
    assert BackgroundWork.objects.filter(kind="cooccurrence").count() == 3
    assert "cooccurrence" in drain_messages()


@pytest.mark.django_db(transaction=True)
def test_concurrent_drains_of_one_kind_count_every_pair_exactly_once(monkeypatch):
    from memories.services import draining

    memories = make_memories([{"content": f"m{i}"} for i in range(8)], with_embeddings=False)
    rng = np.random.default_rng(16)
    expected = {}
    for i in range(400):
        chosen = [memories[j] for j in rng.choice(8, size=3, replace=False)]
        _leave(WorkKind.COOCCURRENCE, chosen, conversation_id=f"c{i % 5}")
        for pair in combinations(sorted(m.id for m in chosen), 2):
            expected[pair] = expected.get(pair, 0) + 1
    monkeypatch.setitem(draining.BATCH_ROWS, WorkKind.COOCCURRENCE, 7)
    applied, errors = [], []

    def drain():
        try:
            while done := work_drain_batch(kind=WorkKind.COOCCURRENCE):
                applied.append(done)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=drain) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sum(applied) == 400
    counts = dict(((a, b), n) for a, b, n in MemoryAssociation.objects.values_list("memory_a_id", "memory_b_id", "co_occurrence_count"))
    assert counts == expected


def test_a_task_queued_by_an_earlier_version_still_counts_its_pairs(django_capture_on_commit_callbacks):
    trio = make_memories([{"content": f"m{i}"} for i in range(3)], with_embeddings=False)

    with django_capture_on_commit_callbacks(execute=True):
        async_task("memories.tasks.after_query", "default", [str(m.id) for m in trio], "conv-old", str(uuid.uuid4()))

    assert MemoryAssociation.objects.count() == 3
    assert not BackgroundWork.objects.exists()


def test_work_after_add_names_only_memories_that_are_not_catalysts():
    plain, catalyst = make_memories([{"content": "plain"}, {"content": "pivotal", "is_catalyst": True}], with_embeddings=False)

    work_after_add(namespace="default", memories=[plain, catalyst])

    rows = {(row.kind, tuple(row.memory_ids)) for row in BackgroundWork.objects.all()}
    assert rows == {("catalyst", (plain.id,)), ("consolidation", (plain.id,)), ("consolidation", (catalyst.id,))}


def test_a_transient_database_error_keeps_the_consolidation_for_a_successor(monkeypatch, queued_for_real):
    from memories.services import draining

    (memory,) = make_memories([{"content": "a", "vector": np.eye(384)[0]}])

    def deadlocked(*, memory_id):
        raise OperationalError("deadlock detected")

    monkeypatch.setattr(draining, "memory_consolidate", deadlocked)
    _leave(WorkKind.CONSOLIDATION, [memory])

    assert work_drain(kind=WorkKind.CONSOLIDATION) == 0

    assert BackgroundWork.objects.filter(kind="consolidation").count() == 1
    assert "consolidation" in drain_messages()


@pytest.mark.django_db(transaction=True)
def test_a_purge_waits_for_a_batch_that_names_the_memory_instead_of_deadlocking(api):
    trio = make_memories([{"content": f"m{i}"} for i in range(3)], with_embeddings=False)
    _leave(WorkKind.COOCCURRENCE, trio, conversation_id="c1")
    claimed, purging, errors = threading.Event(), threading.Event(), []

    def drain_slowly():
        try:
            with transaction.atomic():
                rows = draining._claim(WorkKind.COOCCURRENCE, 10)
                claimed.set()
                purging.wait(timeout=10)
                time.sleep(0.5)  # the purge is under way, waiting for these rows
                draining._apply_cooccurrences(rows)  # locks the memories (foreign-key checks)
                BackgroundWork.objects.filter(pk__in=[row.id for row in rows]).delete()
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    from memories.services import draining

    thread = threading.Thread(target=drain_slowly)
    thread.start()
    assert claimed.wait(timeout=10)
    purging.set()
    response = api.delete(f"/api/v1/memories/{trio[0].id}?purge=true")
    thread.join(timeout=30)

    assert errors == []
    assert response.status_code == 200, response.json()
    assert not Memory.objects.filter(pk=trio[0].id).exists()
    remaining = MemoryAssociation.objects.values_list("memory_a_id", "memory_b_id")
    assert list(remaining) == [tuple(sorted((trio[1].id, trio[2].id)))]
