"""Catalyst candidates (raised, never flipped), the catalysts list and the φ statistics."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from memories.models import Memory, MemoryAccess, MemoryAssociation
from memories.services.catalysts import catalyst_confirm, catalyst_dismiss, catalysts_detect
from tests.api_paths import ADD
from tests.factories import make_memories

pytestmark = pytest.mark.django_db

CATALYSTS = "/api/v1/memories/catalysts"
STATS = "/api/v1/memories/stats"


def one(content="plain words", **fields) -> Memory:
    [memory] = make_memories([{"content": content, **fields}], with_embeddings=False)
    return memory


def candidate_of(memory) -> dict | None:
    memory.refresh_from_db()
    return memory.metadata.get("catalystCandidate")


def connect(memory, others) -> None:
    MemoryAssociation.objects.bulk_create(
        [
            MemoryAssociation(
                namespace=memory.namespace,
                memory_a_id=min(memory.id, other.id),
                memory_b_id=max(memory.id, other.id),
                co_occurrence_count=1,
                strength=0.15,
            )
            for other in others
        ]
    )


def accessed(memory, *ages: timedelta) -> None:
    now = timezone.now()
    MemoryAccess.objects.bulk_create([MemoryAccess(memory=memory, accessed_at=now - age) for age in ages])


# Detection


def test_a_content_marker_raises_a_candidate():
    memory = one("I realized the cache was the bottleneck")

    raised = catalysts_detect(memory_ids=[memory.id])

    assert raised == [memory.id]
    candidate = candidate_of(memory)
    assert candidate["reasons"] == ["content_marker"]
    assert candidate["signals"]["markers"] == ["realized"]
    assert candidate["detectedAt"]


def test_a_marker_inside_another_word_does_not_count():
    memory = one("an unrealized plan")

    assert catalysts_detect(memory_ids=[memory.id]) == []
    assert candidate_of(memory) is None


def test_a_marker_phrase_raises_a_candidate():
    memory = one("That changed everything.")

    catalysts_detect(memory_ids=[memory.id])

    assert candidate_of(memory)["signals"]["markers"] == ["changed everything"]


def test_three_accesses_within_ten_minutes_raise_rapid_access():
    memory = one()
    accessed(memory, timedelta(minutes=1), timedelta(minutes=4), timedelta(minutes=9))

    catalysts_detect(memory_ids=[memory.id])

    candidate = candidate_of(memory)
    assert candidate["reasons"] == ["rapid_access"]
    assert candidate["signals"]["recentAccesses"] == 3


def test_accesses_older_than_ten_minutes_do_not_count_as_rapid():
    memory = one()
    accessed(memory, timedelta(minutes=1), timedelta(minutes=4), timedelta(minutes=11), timedelta(hours=2))

    assert catalysts_detect(memory_ids=[memory.id]) == []
    assert candidate_of(memory) is None


def test_five_live_associations_raise_high_connectivity():
    memory = one()
    connect(memory, make_memories([{"content": f"n{i}"} for i in range(5)], with_embeddings=False))

    catalysts_detect(memory_ids=[memory.id])

    candidate = candidate_of(memory)
    assert candidate["reasons"] == ["high_connectivity"]
    assert candidate["signals"]["connections"] == 5


def test_associations_with_deleted_memories_do_not_count_towards_connectivity():
    memory = one()
    others = make_memories([{"content": f"n{i}"} for i in range(5)], with_embeddings=False)
    connect(memory, others)
    Memory.objects.filter(pk=others[0].pk).update(deleted_at=timezone.now())

    assert catalysts_detect(memory_ids=[memory.id]) == []
    assert candidate_of(memory) is None


def test_every_signal_is_reported_together():
    memory = one("A eureka moment")
    accessed(memory, timedelta(0), timedelta(0), timedelta(0))
    connect(memory, make_memories([{"content": f"n{i}"} for i in range(6)], with_embeddings=False))

    catalysts_detect(memory_ids=[memory.id])

    candidate = candidate_of(memory)
    assert candidate["reasons"] == ["rapid_access", "high_connectivity", "content_marker"]
    assert candidate["signals"] == {"recentAccesses": 3, "connections": 6, "markers": ["eureka"]}


def test_detection_never_makes_a_catalyst_and_keeps_other_metadata():
    memory = one("A real breakthrough", metadata={"origin": "notes"})

    catalysts_detect(memory_ids=[memory.id])

    memory.refresh_from_db()
    assert memory.is_catalyst is False
    assert memory.metadata["origin"] == "notes"
    assert "catalystCandidate" in memory.metadata


def test_a_memory_already_a_catalyst_is_skipped():
    memory = one("A real breakthrough", is_catalyst=True)

    assert catalysts_detect(memory_ids=[memory.id]) == []
    assert candidate_of(memory) is None


def test_a_second_run_raises_nothing_new():
    memory = one("A real breakthrough")
    catalysts_detect(memory_ids=[memory.id])
    first = candidate_of(memory)

    assert catalysts_detect(memory_ids=[memory.id]) == []
    assert candidate_of(memory) == first


def test_a_dismissed_candidate_is_not_raised_again():
    memory = one("A real breakthrough")
    catalysts_detect(memory_ids=[memory.id])

    assert catalyst_dismiss(memory_ids=[memory.id]) == 1
    assert candidate_of(memory) is None
    assert catalysts_detect(memory_ids=[memory.id]) == []

    memory.refresh_from_db()
    assert "catalystCandidate" not in memory.metadata
    assert "dismissedAt" in memory.metadata["catalystDismissed"]
    assert memory.is_catalyst is False


def test_confirming_a_candidate_makes_a_catalyst_and_clears_the_candidate():
    memory = one("A real breakthrough")
    catalysts_detect(memory_ids=[memory.id])

    assert catalyst_confirm(memory_ids=[memory.id]) == 1

    memory.refresh_from_db()
    assert memory.is_catalyst is True
    assert "catalystCandidate" not in memory.metadata


def test_added_memory_with_a_marker_ends_with_a_candidate(post_json, fake_embedder, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = post_json(ADD, {"content": "I realized the cache was the bottleneck"})

    assert response.status_code == 201
    memory = Memory.objects.get(pk=response.json()["data"]["memory"]["id"])
    assert memory.metadata["catalystCandidate"]["reasons"] == ["content_marker"]
    assert memory.is_catalyst is False


def test_memory_added_as_a_catalyst_gets_no_candidate(post_json, fake_embedder, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = post_json(ADD, {"content": "I realized the cache was the bottleneck", "isCatalyst": True})

    assert response.status_code == 201
    memory = Memory.objects.get(pk=response.json()["data"]["memory"]["id"])
    assert "catalystCandidate" not in memory.metadata
    assert memory.is_catalyst is True
    assert memory.resonance_phi == 1.0


# GET /memories/catalysts


def test_catalysts_are_the_top_memories_by_phi_then_access_count(api):
    # Equal φ: the smaller id goes to the fewer accesses, so an order by id would fail.
    smaller_id, larger_id = sorted([uuid.uuid4(), uuid.uuid4()])
    make_memories(
        [
            {"content": "low", "resonance_phi": 0.5, "access_count": 50},
            {"content": "high-few", "resonance_phi": 3.0, "access_count": 2, "id": smaller_id},
            {"content": "high-many", "resonance_phi": 3.0, "access_count": 9, "is_catalyst": True, "id": larger_id},
            {"content": "top", "resonance_phi": 4.5},
            {"content": "deleted", "resonance_phi": 5.0, "deleted_at": timezone.now()},
        ],
        with_embeddings=False,
    )
    make_memories([{"content": "elsewhere", "resonance_phi": 5.0}], namespace="other", with_embeddings=False)

    data = api.get(CATALYSTS, {"limit": 3}).json()["data"]

    assert [c["content"] for c in data["catalysts"]] == ["top", "high-many", "high-few"]
    assert data["count"] == 3
    shown = [(c["phi"], c["isCatalyst"], c["accessCount"]) for c in data["catalysts"][1:]]
    assert shown == [(3.0, True, 9), (3.0, False, 2)]


def test_catalysts_show_when_each_was_last_accessed(api):
    memory = one(resonance_phi=2.0)

    [shown] = api.get(CATALYSTS).json()["data"]["catalysts"]

    assert shown["id"] == str(memory.id)
    assert shown["lastAccessed"] == memory.last_accessed.isoformat().replace("+00:00", "Z")


def test_catalysts_default_to_ten(api):
    make_memories([{"content": f"m{i}", "resonance_phi": i / 10} for i in range(12)], with_embeddings=False)

    assert api.get(CATALYSTS).json()["data"]["count"] == 10


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"limit": "many"}, {"top": 3}])
def test_bad_catalysts_parameters_are_rejected(api, params):
    response = api.get(CATALYSTS, params)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert set(params) <= set(error["details"]["fields"])


# GET /memories/stats


def test_stats_sum_phi_over_live_memories_of_the_namespace(api):
    make_memories(
        [
            {"content": "a1", "resonance_phi": 1.234, "category": "alpha", "is_catalyst": True},
            {"content": "a2", "resonance_phi": 0.5, "category": "alpha"},
            {"content": "b1", "resonance_phi": 2.3456, "category": "beta"},
            {"content": "none", "resonance_phi": 0.0},
            {
                "content": "gone",
                "resonance_phi": 5.0,
                "category": "alpha",
                "is_catalyst": True,
                "deleted_at": timezone.now(),
            },
        ],
        with_embeddings=False,
    )
    make_memories(
        [{"content": "far", "resonance_phi": 4.9, "category": "alpha", "is_catalyst": True}],
        namespace="other",
        with_embeddings=False,
    )

    response = api.get(STATS)

    assert response.status_code == 200
    assert response.json()["data"] == {
        "totalPhi": 4.08,  # 4.0796
        "avgPhi": 1.02,  # 1.0199
        "maxPhi": 2.3456,
        "catalystCount": 1,
        "totalMemories": 4,
        "topCategory": {"category": "beta", "totalPhi": 2.35, "memoryCount": 1},  # beta 2.3456 > alpha 1.734
    }


def test_top_category_is_null_without_categories(api):
    make_memories([{"content": "x", "resonance_phi": 1.0}], with_embeddings=False)

    assert api.get(STATS).json()["data"]["topCategory"] is None


def test_stats_of_an_empty_namespace_are_zero(api):
    make_memories([{"content": "far", "resonance_phi": 3.0, "category": "c"}], namespace="other", with_embeddings=False)

    data = api.get(STATS).json()["data"]

    assert data == {
        "totalPhi": 0,
        "avgPhi": 0,
        "maxPhi": 0,
        "catalystCount": 0,
        "totalMemories": 0,
        "topCategory": None,
    }


def test_stats_reject_unknown_parameters(api):
    response = api.get(STATS, {"namespace": "other"})

    assert response.status_code == 400
    assert "namespace" in response.json()["error"]["details"]["fields"]
