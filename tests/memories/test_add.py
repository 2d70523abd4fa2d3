import threading

import pytest
from django.db import connection

from memories.models import Memory, MemoryAccess, MemoryEmbedding
from tests.api_paths import ADD

pytestmark = pytest.mark.django_db


def test_new_content_is_stored_with_its_embedding(post_json):
    response = post_json(ADD, {"content": "The user likes green tea.", "tags": ["drinks"], "category": "preference"})

    assert response.status_code == 201
    body = response.json()
    assert body["success"] is True
    assert body["data"]["isDuplicate"] is False
    assert body["meta"]["embeddingProvider"] == "local"
    memory = body["data"]["memory"]
    assert memory["tier"] == "active"
    assert memory["resonancePhi"] == 0.0
    assert memory["tags"] == ["drinks"]
    assert "embedding" not in memory
    assert MemoryEmbedding.objects.filter(memory_id=memory["id"]).count() == 1


def test_catalyst_starts_with_phi_one(post_json):
    response = post_json(ADD, {"content": "Everything changed after the rewrite.", "isCatalyst": True})

    assert response.json()["data"]["memory"]["resonancePhi"] == 1.0
    assert response.json()["data"]["memory"]["isCatalyst"] is True


def test_duplicate_counts_an_access_and_embeds_nothing(post_json, model_calls):
    first = post_json(ADD, {"content": "Standup is at 9:30."}).json()["data"]["memory"]
    model_calls.clear()

    response = post_json(ADD, {"content": "Standup is at 9:30.", "category": "ignored", "tags": ["ignored"]})

    assert response.status_code == 200
    body = response.json()
    assert body["data"]["isDuplicate"] is True
    assert body["meta"]["embeddingProvider"] is None
    assert model_calls == []
    memory = body["data"]["memory"]
    assert memory["id"] == first["id"]
    assert memory["accessCount"] == 1
    assert memory["category"] is None and memory["tags"] == []  # PATCH changes fields, add does not
    assert MemoryAccess.objects.filter(memory_id=first["id"]).count() == 1
    assert Memory.objects.count() == 1


def test_fifth_duplicate_add_promotes_to_thread(post_json):
    post_json(ADD, {"content": "Repeated fact."})
    for _ in range(5):
        response = post_json(ADD, {"content": "Repeated fact."})

    assert response.json()["data"]["memory"]["tier"] == "thread"
    assert response.json()["meta"]["promotions"][0]["toTier"] == "thread"


def test_content_differing_only_in_case_is_a_new_memory(post_json):
    post_json(ADD, {"content": "Use tabs."})
    response = post_json(ADD, {"content": "use tabs."})

    assert response.status_code == 201
    assert Memory.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_adds_create_one_row(api, api_key_for):
    from rest_framework.test import APIClient

    key = api_key_for("write")

    api.post(ADD, {"content": "warm-up so the model is loaded"}, format="json")
    barrier = threading.Barrier(20)
    statuses, errors = [], []

    def add():
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
            barrier.wait()
            statuses.append(client.post(ADD, {"content": "The deploy key rotates monthly."}, format="json").status_code)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=add) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(statuses) == [200] * 19 + [201]
    memory = Memory.objects.get(content="The deploy key rotates monthly.")
    assert memory.access_count == 19
    assert MemoryEmbedding.objects.filter(memory=memory).count() == 1
