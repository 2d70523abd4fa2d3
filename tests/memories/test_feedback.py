"""Feedback: ``POST /memories/feedback`` and ``memory_feedback`` move φ by one step per mark."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from memories.models import Memory, MemoryAccess, Tier, TierPromotion
from memories.ranking import FEEDBACK_PHI_STEP, PHI_MAX
from memories.services.feedback import memory_feedback
from tests.api_paths import FEEDBACK
from tests.factories import make_memories

pytestmark = pytest.mark.django_db


def one(**fields) -> Memory:
    [memory] = make_memories([{"content": "m", **fields}], with_embeddings=False)
    return memory


def phi_of(memory: Memory) -> float:
    memory.refresh_from_db()
    return memory.resonance_phi


def test_useful_raises_phi_by_the_step_and_counts_one_access(post_json):
    memory = one(resonance_phi=1.0)

    response = post_json(FEEDBACK, {"memoryIds": [str(memory.id)], "useful": True, "conversationId": "conv-7"})

    assert response.status_code == 200
    data = response.json()["data"]
    assert data == {
        "updated": [{"memoryId": str(memory.id), "resonancePhi": 1.0 + FEEDBACK_PHI_STEP, "accessCount": 1}],
        "notFound": [],
        "useful": True,
    }
    assert phi_of(memory) == 1.0 + FEEDBACK_PHI_STEP
    access = MemoryAccess.objects.get()
    assert (access.memory_id, access.conversation_id) == (memory.id, "conv-7")


def test_not_useful_lowers_phi_by_the_step(post_json):
    memory = one(resonance_phi=2.0)

    response = post_json(FEEDBACK, {"memoryIds": [str(memory.id)], "useful": False})

    assert response.status_code == 200
    assert response.json()["data"]["useful"] is False
    assert phi_of(memory) == 2.0 - FEEDBACK_PHI_STEP
    assert MemoryAccess.objects.filter(memory=memory).count() == 1


def test_not_useful_floors_phi_at_zero(post_json):
    memory = one(resonance_phi=FEEDBACK_PHI_STEP / 2)

    response = post_json(FEEDBACK, {"memoryIds": [str(memory.id)], "useful": False})

    assert response.json()["data"]["updated"][0]["resonancePhi"] == 0.0
    assert phi_of(memory) == 0.0


def test_useful_caps_phi_at_five(post_json):
    memory = one(resonance_phi=PHI_MAX - FEEDBACK_PHI_STEP / 2)

    response = post_json(FEEDBACK, {"memoryIds": [str(memory.id)], "useful": True})

    assert response.json()["data"]["updated"][0]["resonancePhi"] == PHI_MAX
    assert phi_of(memory) == PHI_MAX


def test_unknown_other_namespace_deleted_and_merged_ids_are_not_found_and_unchanged(post_json):
    live, deleted, merged = make_memories(
        [{"content": "live"}, {"content": "deleted"}, {"content": "merged"}], with_embeddings=False
    )
    Memory.objects.filter(pk=deleted.pk).update(deleted_at=timezone.now())
    Memory.objects.filter(pk=merged.pk).update(deleted_at=timezone.now(), merged_into=live)
    elsewhere = one(namespace="other")
    unknown = uuid.uuid4()
    missing = [unknown, elsewhere.id, deleted.id, merged.id]

    response = post_json(FEEDBACK, {"memoryIds": [str(i) for i in [unknown, live.id, *missing[1:]]], "useful": True})

    assert response.status_code == 200
    data = response.json()["data"]
    assert data["notFound"] == [str(i) for i in missing]
    assert [entry["memoryId"] for entry in data["updated"]] == [str(live.id)]
    assert list(MemoryAccess.objects.values_list("memory_id", flat=True)) == [live.id]
    unchanged = Memory.objects.filter(pk__in=missing)
    assert [(m.resonance_phi, m.access_count) for m in unchanged] == [(0.0, 0)] * 3


def test_repeated_ids_count_once(post_json):
    memory = one()

    response = post_json(FEEDBACK, {"memoryIds": [str(memory.id)] * 3, "useful": True})

    assert len(response.json()["data"]["updated"]) == 1
    assert phi_of(memory) == FEEDBACK_PHI_STEP
    assert MemoryAccess.objects.count() == 1


def test_crossing_the_access_threshold_promotes_and_meta_lists_it(post_json, settings):
    memory = one(access_count=settings.ANIMA_PROMOTE_TO_THREAD_AT - 1)

    response = post_json(FEEDBACK, {"memoryIds": [str(memory.id)], "useful": True})

    assert response.json()["meta"]["promotions"] == [
        {"memoryId": str(memory.id), "fromTier": "active", "toTier": "thread"}
    ]
    memory.refresh_from_db()
    assert memory.tier == Tier.THREAD
    assert TierPromotion.objects.get().memory_id == memory.id


def test_no_promotion_leaves_meta_without_promotions(post_json):
    memory = one()

    response = post_json(FEEDBACK, {"memoryIds": [str(memory.id)], "useful": True})

    assert "promotions" not in response.json()["meta"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"memoryIds": [], "useful": True}, "memoryIds"),
        ({"memoryIds": [str(uuid.uuid4()) for _ in range(101)], "useful": True}, "memoryIds"),
        ({"memoryIds": ["not-a-uuid"], "useful": True}, "memoryIds"),
        ({"memoryIds": [12345], "useful": True}, "memoryIds"),
        ({"memoryIds": "{id}", "useful": True}, "memoryIds"),
        ({"useful": True}, "memoryIds"),
        ({"memoryIds": ["{id}"]}, "useful"),
        ({"memoryIds": ["{id}"], "useful": "yes"}, "useful"),
        ({"memoryIds": ["{id}"], "useful": 1}, "useful"),
        ({"memoryIds": ["{id}"], "useful": True, "conversationId": "c" * 201}, "conversationId"),
        ({"memoryIds": ["{id}"], "useful": True, "conversationId": ""}, "conversationId"),
        ({"memoryIds": ["{id}"], "useful": True, "memory_ids": ["{id}"]}, "memory_ids"),
    ],
)
def test_bad_input_is_a_validation_error_naming_the_field_and_writes_nothing(post_json, body, field):
    memory = one(resonance_phi=1.0)
    fill = {"{id}": str(memory.id)}
    body = {
        key: [fill.get(item, item) for item in value] if isinstance(value, list) else fill.get(value, value)
        for key, value in body.items()
    }

    response = post_json(FEEDBACK, body)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert field in error["details"]["fields"]
    assert MemoryAccess.objects.count() == 0
    memory.refresh_from_db()
    assert (memory.resonance_phi, memory.access_count) == (1.0, 0)


def test_read_scope_key_is_forbidden_and_writes_nothing(api_key_for):
    memory = one(resonance_phi=1.0)
    reader = APIClient()
    reader.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_for('read')}")

    response = reader.post(FEEDBACK, {"memoryIds": [str(memory.id)], "useful": True}, format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "FORBIDDEN"
    assert MemoryAccess.objects.count() == 0
    assert phi_of(memory) == 1.0


def test_write_scope_key_may_give_feedback(api_key_for):
    memory = one()
    writer = APIClient()
    writer.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_for('write')}")

    response = writer.post(FEEDBACK, {"memoryIds": [str(memory.id)], "useful": True}, format="json")

    assert response.status_code == 200


def _statements(memory_ids) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        memory_feedback(namespace="default", memory_ids=memory_ids, useful=True)
    return [q["sql"].split(None, 3)[:3] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]


def test_feedback_costs_the_same_statements_for_one_memory_and_for_fifty():
    memories = make_memories([{"content": f"m{i}"} for i in range(51)], with_embeddings=False)

    one_memory = _statements([memories[0].id])
    fifty = _statements([m.id for m in memories[1:]])

    # One statement: the UPDATE … FROM the locked rows (count, φ, tier) with the access
    # rows (and any promotion's audit rows) as CTEs of it.
    assert one_memory == fifty == [["WITH", "target", "AS"]]
