"""Co-occurrence: memories returned together become associated, and the association graph
is read through discover, hubs and network-stats."""

import math
import random
import threading
import uuid
from datetime import timedelta
from itertools import combinations

import pytest
from django.db import connection, transaction
from django.utils import timezone

from memories.models import BackgroundWork, MemoryAssociation, WorkKind
from memories.services.draining import work_drain_batch
from tests.api_paths import QUERY
from tests.factories import axis, make_memories

pytestmark = pytest.mark.django_db

DISCOVER = "/api/v1/associations/discover"
HUBS = "/api/v1/associations/hubs"
NETWORK_STATS = "/api/v1/associations/network-stats"


def expected_strength(count: int) -> float:
    return min(1.0, math.log10(1 + count) / 2)


def ordered(first, second) -> tuple:
    return (first, second) if first.id < second.id else (second, first)


def associate(first, second, count: int, *, contexts=(), namespace="default", when=None) -> MemoryAssociation:
    """One association row with the count (and the strength it implies) the test chooses."""
    a, b = ordered(first, second)
    when = when or timezone.now()
    return MemoryAssociation.objects.create(
        namespace=namespace,
        memory_a=a,
        memory_b=b,
        co_occurrence_count=count,
        strength=expected_strength(count),
        first_co_occurred_at=when - timedelta(days=1),
        last_co_occurred_at=when,
        conversation_contexts=list(contexts),
    )


def leave_work(memories, conversation_id="conv") -> None:
    """The co-occurrence row a query in ``conversation_id`` returning ``memories`` leaves."""
    BackgroundWork.objects.create(
        kind=WorkKind.COOCCURRENCE,
        namespace="default",
        memory_ids=[m.id for m in memories],
        conversation_id=conversation_id,
    )


def record(memories, conversation_id="conv") -> int:
    """One query's co-occurrences, left and drained at once; returns the rows applied."""
    leave_work(memories, conversation_id)
    return work_drain_batch(kind=WorkKind.COOCCURRENCE)


@pytest.fixture
def query_in_conversation(post_json, fake_embedder, django_capture_on_commit_callbacks):
    """POST a query and run the tasks it enqueues on commit (synchronous in tests)."""
    fake_embedder.vectors["q"] = axis(0)

    def query(**extra):
        with django_capture_on_commit_callbacks(execute=True):
            response = post_json(QUERY, {"query": "q", **extra})
        assert response.status_code == 200, response.json()
        return response.json()["data"]

    return query


@pytest.fixture
def four_close_memories():
    return make_memories([{"content": f"close {i}", "vector": axis(0, 1 + i, 0.1)} for i in range(4)])


# Recording through the query


def test_query_in_a_conversation_associates_every_pair_of_its_results_once(query_in_conversation, four_close_memories):
    data = query_in_conversation(conversationId="conv-1")

    returned = sorted(uuid.UUID(m["id"]) for m in data["memories"])
    assert returned == sorted(m.id for m in four_close_memories)
    rows = list(MemoryAssociation.objects.all())
    assert len(rows) == 4 * 3 // 2
    assert sorted((r.memory_a_id, r.memory_b_id) for r in rows) == list(combinations(returned, 2))
    for row in rows:
        assert row.memory_a_id < row.memory_b_id
        assert row.co_occurrence_count == 1
        assert row.strength == pytest.approx(math.log10(2) / 2) == pytest.approx(0.1505, abs=1e-4)
        assert row.conversation_contexts == ["conv-1"]
        assert row.namespace == "default"


def test_query_without_conversation_writes_no_association(query_in_conversation, four_close_memories):
    data = query_in_conversation()

    assert data["count"] == 4
    assert MemoryAssociation.objects.count() == 0


def test_query_with_a_single_result_writes_no_association(query_in_conversation):
    make_memories(
        [
            {"content": "the only match", "vector": axis(0)},
            {"content": "far away", "vector": axis(5)},
            {"content": "also far", "vector": axis(6)},
        ]
    )

    data = query_in_conversation(conversationId="conv-1")

    assert data["count"] == 1
    assert MemoryAssociation.objects.count() == 0


def test_nine_repeated_queries_give_count_nine_and_strength_one_half(query_in_conversation, four_close_memories):
    for _ in range(9):
        query_in_conversation(conversationId="conv-1")

    rows = list(MemoryAssociation.objects.all())
    assert len(rows) == 6
    assert {r.co_occurrence_count for r in rows} == {9}
    assert all(r.strength == pytest.approx(0.5) for r in rows)
    assert all(r.conversation_contexts == ["conv-1"] for r in rows)


# The recording service


@pytest.mark.parametrize("batches", ["one batch", "one batch per query"])
def test_contexts_keep_the_twenty_most_recent_conversations_most_recent_first(batches):
    pair = make_memories([{"content": "a"}, {"content": "b"}], with_embeddings=False)

    for i in range(25):
        if batches == "one batch":
            leave_work(pair, conversation_id=f"conv-{i}")
        else:
            record(pair, conversation_id=f"conv-{i}")
    work_drain_batch(kind=WorkKind.COOCCURRENCE)

    row = MemoryAssociation.objects.get()
    assert row.co_occurrence_count == 25
    assert row.conversation_contexts == [f"conv-{i}" for i in range(24, 4, -1)]


@pytest.mark.parametrize("batches", ["one batch", "one batch per query"])
def test_contexts_hold_each_conversation_once_moved_to_the_front_when_seen_again(batches):
    pair = make_memories([{"content": "a"}, {"content": "b"}], with_embeddings=False)

    for conversation in ["conv-a", "conv-b", "conv-c", "conv-a"]:
        if batches == "one batch":
            leave_work(pair, conversation_id=conversation)
        else:
            record(pair, conversation_id=conversation)
    work_drain_batch(kind=WorkKind.COOCCURRENCE)

    row = MemoryAssociation.objects.get()
    assert row.co_occurrence_count == 4
    assert row.conversation_contexts == ["conv-a", "conv-c", "conv-b"]


def test_a_batch_counts_each_query_and_is_gone_once_applied():
    trio = make_memories([{"content": "a"}, {"content": "b"}, {"content": "c"}], with_embeddings=False)
    for _ in range(3):
        leave_work(trio)
    leave_work(trio[:2])

    applied = work_drain_batch(kind=WorkKind.COOCCURRENCE)
    again = work_drain_batch(kind=WorkKind.COOCCURRENCE)

    assert (applied, again) == (4, 0)
    assert BackgroundWork.objects.count() == 0
    counts = {(r.memory_a_id, r.memory_b_id): r.co_occurrence_count for r in MemoryAssociation.objects.all()}
    a, b, c = (m.id for m in trio)
    assert counts == {tuple(sorted((a, b))): 4, tuple(sorted((a, c))): 3, tuple(sorted((b, c))): 3}


def test_a_batch_that_fails_before_its_commit_is_applied_once_later():
    trio = make_memories([{"content": "a"}, {"content": "b"}, {"content": "c"}], with_embeddings=False)
    leave_work(trio)

    with pytest.raises(RuntimeError), transaction.atomic():
        work_drain_batch(kind=WorkKind.COOCCURRENCE)
        raise RuntimeError("the worker dies before the commit")
    assert MemoryAssociation.objects.count() == 0
    work_drain_batch(kind=WorkKind.COOCCURRENCE)

    assert list(MemoryAssociation.objects.values_list("co_occurrence_count", flat=True)) == [1, 1, 1]
    assert BackgroundWork.objects.count() == 0


def test_pairs_with_a_memory_that_is_gone_are_skipped():
    trio = make_memories([{"content": "a"}, {"content": "b"}, {"content": "c"}], with_embeddings=False)
    leave_work(trio)
    trio[2].delete()

    work_drain_batch(kind=WorkKind.COOCCURRENCE)

    assert list(MemoryAssociation.objects.values_list("memory_a_id", "memory_b_id")) == [
        tuple(sorted((trio[0].id, trio[1].id)))
    ]


def test_strength_follows_the_count_up_to_one():
    pair = make_memories([{"content": "a"}, {"content": "b"}], with_embeddings=False)

    for _ in range(99):
        record(pair)
    at_99 = MemoryAssociation.objects.get().strength
    record(pair)

    row = MemoryAssociation.objects.get()
    assert at_99 == pytest.approx(1.0)
    assert row.co_occurrence_count == 100
    assert row.strength == pytest.approx(1.0)


@pytest.mark.django_db(transaction=True)
def test_concurrent_overlapping_batches_neither_deadlock_nor_lose_counts():
    memories = make_memories([{"content": f"m{i}"} for i in range(12)], with_embeddings=False)
    rng = random.Random(20240611)
    plans = [[rng.sample(memories, 8) for _ in range(5)] for _ in range(10)]
    expected: dict[tuple, int] = {}
    for plan in plans:
        for subset in plan:
            for pair in combinations(sorted(m.id for m in subset), 2):
                expected[pair] = expected.get(pair, 0) + 1
    start = threading.Barrier(len(plans))
    errors = []

    def run(thread_no, plan):
        try:
            start.wait(timeout=30)
            for call_no, subset in enumerate(plan):
                record(subset, conversation_id=f"t{thread_no}-{call_no}")
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n, plan)) for n, plan in enumerate(plans)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    rows = MemoryAssociation.objects.values_list("memory_a_id", "memory_b_id", "co_occurrence_count")
    counts = {(a, b): n for a, b, n in rows}
    assert counts == expected
    for row in MemoryAssociation.objects.all():
        assert row.strength == pytest.approx(expected_strength(row.co_occurrence_count))
        assert len(row.conversation_contexts) == min(20, row.co_occurrence_count)


# Reading the graph


@pytest.fixture
def star():
    """A centre with five neighbours of known counts; two share the capped strength 1.0."""
    centre, *others = make_memories(
        [
            {"content": "centre"},
            {"content": "n150", "category": "work", "tags": ["x", "y"], "access_count": 7},
            {"content": "n99"},
            {"content": "n9", "tier": "thread"},
            {"content": "n3"},
            {"content": "n1"},
        ],
        with_embeddings=False,
    )
    neighbours = dict(zip(["n150", "n99", "n9", "n3", "n1"], others))
    # Weakest first, so that an order by row id would come out the other way round.
    for name, count in [("n1", 1), ("n3", 3), ("n9", 9), ("n99", 99), ("n150", 150)]:
        associate(centre, neighbours[name], count, contexts=[f"conv-{name}", "conv-0"])
    return centre, neighbours


def discover(api, **params):
    return api.get(DISCOVER, params)


def test_discover_orders_neighbours_by_strength_then_count(api, star):
    centre, _ = star

    response = discover(api, memoryId=centre.id)

    assert response.status_code == 200
    data = response.json()["data"]
    assert data["memoryId"] == str(centre.id)
    assert [n["content"] for n in data["associations"]] == ["n150", "n99", "n9", "n3", "n1"]
    assert data["count"] == 5


def test_discover_shows_the_neighbour_and_the_pair(api, star):
    centre, neighbours = star
    neighbour = neighbours["n150"]
    pair = MemoryAssociation.objects.get(memory_a=min(centre.id, neighbour.id), memory_b=max(centre.id, neighbour.id))

    first = discover(api, memoryId=centre.id).json()["data"]["associations"][0]

    assert first == {
        "memoryId": str(neighbour.id),
        "content": "n150",
        "tier": "active",
        "category": "work",
        "tags": ["x", "y"],
        "accessCount": 7,
        "coOccurrenceCount": 150,
        "strength": 1.0,
        "firstCoOccurredAt": pair.first_co_occurred_at.isoformat().replace("+00:00", "Z"),
        "lastCoOccurredAt": pair.last_co_occurred_at.isoformat().replace("+00:00", "Z"),
        "conversationContexts": ["conv-n150", "conv-0"],
    }


def test_discover_works_from_either_end_of_a_pair(api, star):
    centre, neighbours = star

    associations = discover(api, memoryId=neighbours["n9"].id).json()["data"]["associations"]

    assert [(n["memoryId"], n["coOccurrenceCount"], n["tier"]) for n in associations] == [(str(centre.id), 9, "active")]


def test_discover_min_strength_filters_weaker_pairs(api, star):
    centre, _ = star

    default = discover(api, memoryId=centre.id).json()["data"]["associations"]
    strong = discover(api, memoryId=centre.id, minStrength=0.31).json()["data"]["associations"]

    assert [n["content"] for n in default] == ["n150", "n99", "n9", "n3", "n1"]  # 0.1505 ≥ 0.1
    assert [n["content"] for n in strong] == ["n150", "n99", "n9"]  # n3: 0.301 < 0.31


def test_discover_limit_keeps_the_strongest(api, star):
    centre, _ = star

    data = discover(api, memoryId=centre.id, limit=2).json()["data"]

    assert [n["content"] for n in data["associations"]] == ["n150", "n99"]
    assert data["count"] == 2


@pytest.fixture
def graph():
    """hub: 6 connections; mid: 3 (hub, leaf1, leaf2); leaves have 1–2."""
    hub, mid, *leaves = make_memories(
        [{"content": "hub"}, {"content": "mid"}] + [{"content": f"leaf{i}"} for i in range(5)], with_embeddings=False
    )
    associate(hub, mid, 9)
    for leaf, count in zip(leaves, [1, 3, 1, 1, 1]):
        associate(hub, leaf, count)
    associate(mid, leaves[0], 99)
    associate(mid, leaves[1], 1)
    return hub, mid, leaves


def test_hubs_rank_by_connections_with_their_totals_and_mean_strength(api, graph):
    hub, mid, leaves = graph

    data = api.get(HUBS, {"minConnections": 1, "limit": 2}).json()["data"]

    hubs = data["hubs"]
    assert [h["memoryId"] for h in hubs] == [str(hub.id), str(mid.id)]
    assert [h["totalConnections"] for h in hubs] == [6, 3]
    assert [h["totalCoOccurrences"] for h in hubs] == [9 + 1 + 3 + 1 + 1 + 1, 9 + 99 + 1]
    hub_strengths = [expected_strength(c) for c in [9, 1, 3, 1, 1, 1]]
    assert hubs[0]["avgStrength"] == pytest.approx(sum(hub_strengths) / 6, abs=1e-4)
    assert hubs[1]["avgStrength"] == pytest.approx((0.5 + 1.0 + expected_strength(1)) / 3, abs=1e-4)
    assert hubs[0]["content"] == "hub"
    assert data["count"] == 2


def test_hubs_count_every_memory_with_enough_connections(api, graph):
    hub, mid, leaves = graph

    hubs = api.get(HUBS, {"minConnections": 1, "limit": 50}).json()["data"]["hubs"]

    totals = {h["memoryId"]: (h["totalConnections"], h["totalCoOccurrences"]) for h in hubs}
    assert totals == {
        str(hub.id): (6, 16),
        str(mid.id): (3, 109),
        str(leaves[0].id): (2, 100),
        str(leaves[1].id): (2, 4),
        str(leaves[2].id): (1, 1),
        str(leaves[3].id): (1, 1),
        str(leaves[4].id): (1, 1),
    }


def test_hubs_min_connections_defaults_to_five(api, graph):
    hub, _, _ = graph

    hubs = api.get(HUBS).json()["data"]["hubs"]

    assert [(h["memoryId"], h["totalConnections"]) for h in hubs] == [(str(hub.id), 6)]


def test_hubs_min_connections_drops_less_connected_memories(api, graph):
    hub, mid, _ = graph

    hubs = api.get(HUBS, {"minConnections": 3}).json()["data"]["hubs"]

    assert [h["memoryId"] for h in hubs] == [str(hub.id), str(mid.id)]


def test_hubs_ignore_other_namespaces(api, graph):
    far = make_memories([{"content": f"far{i}"} for i in range(7)], namespace="other", with_embeddings=False)
    for other in far[1:]:
        associate(far[0], other, 50, namespace="other")

    hubs = api.get(HUBS, {"minConnections": 5}).json()["data"]["hubs"]

    assert [h["content"] for h in hubs] == ["hub"]


def test_network_stats_sum_up_one_memorys_associations(api, graph):
    hub, _, _ = graph
    counts = [9, 1, 3, 1, 1, 1]

    response = api.get(NETWORK_STATS, {"memoryId": hub.id})

    assert response.status_code == 200
    data = response.json()["data"]
    assert data["memoryId"] == str(hub.id)
    assert data["totalAssociations"] == 6
    assert data["avgStrength"] == pytest.approx(sum(expected_strength(c) for c in counts) / 6, abs=1e-4)
    assert data["maxStrength"] == pytest.approx(0.5, abs=1e-4)
    assert data["totalCoOccurrences"] == sum(counts)


def test_network_stats_of_an_unconnected_memory_are_zero(api):
    [alone] = make_memories([{"content": "alone"}], with_embeddings=False)

    data = api.get(NETWORK_STATS, {"memoryId": alone.id}).json()["data"]

    totals = (data["totalAssociations"], data["avgStrength"], data["maxStrength"], data["totalCoOccurrences"])
    assert totals == (0, 0, 0, 0)


def test_associations_to_deleted_memories_are_left_out_by_all_three_alike(api, graph):
    hub, mid, leaves = graph
    leaves[1].deleted_at = timezone.now()  # hub–leaf1 (count 3) and mid–leaf1 (count 1) go
    leaves[1].save(update_fields=["deleted_at"])

    discovered = discover(api, memoryId=hub.id).json()["data"]
    stats = api.get(NETWORK_STATS, {"memoryId": hub.id}).json()["data"]
    hubs = {h["memoryId"]: h for h in api.get(HUBS, {"minConnections": 1, "limit": 50}).json()["data"]["hubs"]}

    assert str(leaves[1].id) not in [n["memoryId"] for n in discovered["associations"]]
    assert discovered["count"] == stats["totalAssociations"] == hubs[str(hub.id)]["totalConnections"] == 5
    assert stats["totalCoOccurrences"] == hubs[str(hub.id)]["totalCoOccurrences"] == 9 + 1 + 1 + 1 + 1
    assert stats["avgStrength"] == pytest.approx(hubs[str(hub.id)]["avgStrength"], abs=1e-4)
    assert hubs[str(mid.id)]["totalConnections"] == 2
    assert str(leaves[1].id) not in hubs


def test_a_deleted_memory_has_no_neighbours_or_stats(api, graph):
    hub, _, _ = graph
    hub.deleted_at = timezone.now()
    hub.save(update_fields=["deleted_at"])

    assert discover(api, memoryId=hub.id).status_code == 404
    assert api.get(NETWORK_STATS, {"memoryId": hub.id}).status_code == 404


# Bad input


@pytest.mark.parametrize(
    "path, params, field",
    [
        (DISCOVER, {"memoryId": "not-a-uuid"}, "memoryId"),
        (DISCOVER, {}, "memoryId"),
        (DISCOVER, {"memoryId": "{id}", "minStrength": 2}, "minStrength"),
        (DISCOVER, {"memoryId": "{id}", "minStrength": -0.1}, "minStrength"),
        (DISCOVER, {"memoryId": "{id}", "minStrength": "strong"}, "minStrength"),
        (DISCOVER, {"memoryId": "{id}", "limit": 0}, "limit"),
        (DISCOVER, {"memoryId": "{id}", "limit": 101}, "limit"),
        (DISCOVER, {"memoryId": "{id}", "limit": "ten"}, "limit"),
        (DISCOVER, {"memoryId": "{id}", "min_strength": 0.5}, "min_strength"),
        (HUBS, {"limit": 0}, "limit"),
        (HUBS, {"limit": 51}, "limit"),
        (HUBS, {"minConnections": 0}, "minConnections"),
        (HUBS, {"min_connections": 2}, "min_connections"),
        (NETWORK_STATS, {"memoryId": "not-a-uuid"}, "memoryId"),
        (NETWORK_STATS, {"memoryId": "{id}", "depth": 2}, "depth"),
    ],
)
def test_bad_association_parameters_are_rejected_naming_the_field(api, path, params, field):
    [memory] = make_memories([{"content": "m"}], with_embeddings=False)
    params = {key: str(memory.id) if value == "{id}" else value for key, value in params.items()}

    response = api.get(path, params)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert field in error["details"]["fields"]
    assert field in error["message"]


@pytest.mark.parametrize("path", [DISCOVER, NETWORK_STATS])
def test_unknown_memory_is_memory_not_found(api, path):
    make_memories([{"content": "m"}], with_embeddings=False)
    unknown = uuid.uuid4()

    response = api.get(path, {"memoryId": unknown})

    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "MEMORY_NOT_FOUND"
    assert error["details"]["memoryId"] == str(unknown)


def test_memory_of_another_namespace_is_not_found(api):
    [elsewhere] = make_memories([{"content": "m"}], namespace="other", with_embeddings=False)

    response = discover(api, memoryId=elsewhere.id)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "MEMORY_NOT_FOUND"
