"""Event time: ``occurredAt`` — when the remembered thing happened (SPEC "Event time")."""

import io
import json
from datetime import UTC, datetime

import numpy as np
import pytest
from django.core.management import call_command

from memories.models import Memory
from tests.api_paths import ADD, QUERY
from tests.api_paths import ADD_BATCH as BATCH, MEMORIES as LIST
from tests.factories import DIM, make_memories

pytestmark = pytest.mark.django_db


def _far_vector(i: int) -> np.ndarray:
    vector = np.zeros(DIM, dtype=np.float32)
    vector[10 + i] = 1.0
    return vector


def test_add_stores_and_returns_occurred_at(post_json):
    body = {"content": "Went to the LGBTQ support group.", "occurredAt": "2023-05-07T18:00:00+02:00"}

    response = post_json(ADD, body)

    assert response.status_code == 201
    memory = response.json()["data"]["memory"]
    assert memory["occurredAt"] == "2023-05-07T16:00:00Z"
    assert Memory.objects.get(pk=memory["id"]).occurred_at == datetime(2023, 5, 7, 16, tzinfo=UTC)


def test_occurred_at_defaults_to_the_time_it_was_stored(post_json):
    memory = post_json(ADD, {"content": "No date given."}).json()["data"]["memory"]

    assert memory["occurredAt"] == memory["createdAt"]


def test_add_batch_takes_occurred_at_per_item(post_json):
    response = post_json(
        BATCH,
        {"items": [{"content": "first", "occurredAt": "2022-01-02T03:04:05Z"}, {"content": "second"}]},
    )

    first, second = (Memory.objects.get(pk=item["memoryId"]) for item in response.json()["data"]["items"])
    assert first.occurred_at == datetime(2022, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert second.occurred_at == second.created_at


@pytest.mark.parametrize(
    "value",
    ["yesterday", "2023-13-01T00:00:00Z", 20230507, "9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00"],
    ids=["words", "month-13", "number", "past-9999-in-utc", "before-year-1-in-utc"],
)
def test_a_bad_occurred_at_is_a_400_naming_it_and_writes_nothing(post_json, value):
    response = post_json(ADD, {"content": "dated", "occurredAt": value})

    assert response.status_code == 400
    assert "occurredAt" in response.json()["error"]["details"]["fields"]
    assert not Memory.objects.exists()


def test_a_bad_occurred_at_in_a_batch_refuses_that_item_only(post_json):
    response = post_json(BATCH, {"items": [{"content": "good"}, {"content": "bad", "occurredAt": "soon"}]})

    items = response.json()["data"]["items"]
    assert [item["status"] for item in items] == ["created", "invalid"]
    assert items[1]["field"] == "occurredAt"
    assert list(Memory.objects.values_list("content", flat=True)) == ["good"]


def test_patch_changes_occurred_at(api):
    [memory] = make_memories([{"content": "m", "vector": _far_vector(0)}])

    response = api.patch(f"{LIST}{memory.id}/", {"occurredAt": "2021-06-01T00:00:00Z"}, format="json")

    assert response.status_code == 200
    memory.refresh_from_db()
    assert memory.occurred_at == datetime(2021, 6, 1, tzinfo=UTC)


def test_query_and_list_filter_by_occurred_at(post_json, api, fake_embedder):
    make_memories(
        [
            {"content": "spring", "vector": _far_vector(0), "occurred_at": datetime(2023, 4, 1, tzinfo=UTC)},
            {"content": "summer", "vector": _far_vector(1), "occurred_at": datetime(2023, 7, 1, tzinfo=UTC)},
            {"content": "winter", "vector": _far_vector(2), "occurred_at": datetime(2023, 12, 1, tzinfo=UTC)},
        ]
    )
    fake_embedder.vectors["season"] = np.ones(DIM, dtype=np.float32)
    body = {"query": "season", "occurredAfter": "2023-05-01T00:00:00Z", "occurredBefore": "2023-12-01T00:00:00Z"}

    queried = post_json(QUERY, {**body, "similarityThreshold": 0}).json()["data"]["memories"]
    listed = api.get(LIST, {"occurredAfter": "2023-05-01T00:00:00Z", "occurredBefore": "2023-12-01T00:00:00Z"})

    assert [m["content"] for m in queried] == ["summer"]
    assert [m["content"] for m in listed.json()["data"]["memories"]] == ["summer"]


def test_an_empty_occurred_range_is_a_400(post_json):
    response = post_json(
        QUERY, {"query": "q", "occurredAfter": "2023-05-01T00:00:00Z", "occurredBefore": "2023-05-01T00:00:00Z"}
    )

    assert response.status_code == 400
    assert "occurredBefore" in response.json()["error"]["details"]["fields"]


def test_a_question_naming_the_month_finds_what_happened_then(post_json, fake_embedder):
    make_memories(
        [
            {"content": "Caroline went hiking.", "vector": _far_vector(0), "occurred_at": datetime(2023, 5, 8, tzinfo=UTC)},
            {"content": "Caroline swam.", "vector": _far_vector(1), "occurred_at": datetime(2023, 8, 8, tzinfo=UTC)},
        ]
    )
    fake_embedder.vectors["What did Caroline do in August 2023?"] = _far_vector(5)

    hits = post_json(QUERY, {"query": "What did Caroline do in August 2023?"}).json()["data"]["memories"]

    assert hits[0]["content"] == "Caroline swam."


def test_export_and_import_keep_occurred_at(tmp_path):
    when = datetime(2020, 2, 29, 12, 30, tzinfo=UTC)
    make_memories([{"content": "leap day", "vector": _far_vector(0), "occurred_at": when}])
    path = tmp_path / "out.jsonl"
    call_command("export_memories", "--output", str(path), "--with-embeddings", "--no-progress", stdout=io.StringIO())
    assert json.loads(path.read_text().splitlines()[0])["occurredAt"] == "2020-02-29T12:30:00.000000Z"
    Memory.objects.all().delete()

    call_command("import_memories", str(path), "--no-progress", stdout=io.StringIO(), stderr=io.StringIO())

    assert Memory.objects.get().occurred_at == when
