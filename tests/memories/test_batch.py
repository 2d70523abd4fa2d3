"""``POST /api/v1/memories/add-batch`` against the real database and the real bundled model
(the ``model_calls`` spy counts what the model is asked to embed)."""

import random

import pytest
from rest_framework.test import APIClient

from memories.models import MAX_CONTENT_CHARS, Memory, MemoryEmbedding, Tier
from tests.api_paths import ADD_BATCH as BATCH
from tests.factories import DIM, make_memories
from tests.responses import bad_fields

pytestmark = pytest.mark.django_db


TOPICS = ["gardening", "the staging server", "Dana's diet", "the quarterly report", "jazz records", "the bike"]


def new_texts(count: int) -> list[str]:
    return [f"Note {i} about {TOPICS[i % len(TOPICS)]}: item {i * 7 + 3} was checked." for i in range(count)]


def existing(count: int, **fields) -> list[Memory]:
    """Memories stored before the batch (bulk, with stand-in vectors)."""
    return make_memories(
        [
            {"content": f"Stored before: fact {i}.", "vector": [1.0 + i] + [1.0] * (DIM - 1), **fields}
            for i in range(count)
        ]
    )


@pytest.fixture
def mixed():
    """100 items: 82 new contents, 5 of them repeated, 10 restatements of 9 stored memories
    (the first one twice) and 3 invalid items, in a fixed shuffled order."""
    stored = existing(9)
    fresh = new_texts(82)
    invalid = [
        ({"content": "x" * (MAX_CONTENT_CHARS + 1)}, "content"),
        ({"category": "no content"}, "content"),
        ({"content": "Fine text, but a key nobody defined.", "colour": "blue"}, "colour"),
    ]
    entries = (
        [("new", {"content": text}) for text in fresh]
        + [("repeat", {"content": text}) for text in fresh[:5]]
        + [("stored", {"content": m.content}) for m in [stored[0], *stored]]
        + [("invalid", (body, field)) for body, field in invalid]
    )
    random.Random(7).shuffle(entries)
    # A repeat must come after its first occurrence to be the repeat: order the pairs so.
    seen, ordered = set(), []
    for kind, value in entries:
        if kind in ("new", "repeat") and value["content"] not in seen:
            kind = "new"
            seen.add(value["content"])
        elif kind in ("new", "repeat"):
            kind = "repeat"
        ordered.append((kind, value))
    return stored, fresh, ordered


def items_of(ordered) -> list[dict]:
    return [value[0] if kind == "invalid" else value for kind, value in ordered]


def test_a_mixed_batch_reports_each_item_in_order(post_json, model_calls, mixed):
    stored, fresh, ordered = mixed

    response = post_json(BATCH, {"items": items_of(ordered)})

    assert response.status_code == 201, response.json()
    data = response.json()["data"]
    assert data["counts"] == {"created": 82, "duplicate": 15, "invalid": 3}
    ids = {m.content: str(m.pk) for m in Memory.objects.all()}
    assert [entry["index"] for entry in data["items"]] == list(range(100))
    for entry, (kind, value) in zip(data["items"], ordered):
        if kind == "invalid":
            body, field = value
            assert entry["status"] == "invalid" and entry["memoryId"] is None
            assert entry["field"] == field and entry["message"]
        else:
            assert entry["status"] == ("created" if kind == "new" else "duplicate"), (kind, value)
            assert entry["memoryId"] == ids[value["content"]]


def test_a_mixed_batch_creates_exactly_the_new_rows(post_json, model_calls, mixed):
    stored, fresh, ordered = mixed

    post_json(BATCH, {"items": items_of(ordered)})

    assert Memory.objects.count() == 9 + 82
    assert sorted(Memory.objects.exclude(pk__in=[m.pk for m in stored]).values_list("content", flat=True)) == sorted(
        fresh
    )
    assert MemoryEmbedding.objects.exclude(memory_id__in=[m.pk for m in stored]).count() == 82


def test_a_mixed_batch_calls_the_model_once_for_the_new_contents(post_json, model_calls, mixed):
    stored, fresh, ordered = mixed
    first_seen = [value["content"] for kind, value in ordered if kind == "new"]

    response = post_json(BATCH, {"items": items_of(ordered)})

    assert model_calls == [first_seen]
    assert sorted(first_seen) == sorted(fresh)
    assert response.json()["meta"]["embeddingProvider"] == "local"


def test_a_mixed_batch_counts_one_access_per_repeat(post_json, mixed):
    stored, fresh, ordered = mixed

    post_json(BATCH, {"items": items_of(ordered)})

    counts = dict(Memory.objects.values_list("content", "access_count"))
    assert [counts[m.content] for m in stored] == [2] + [1] * 8
    assert [counts[text] for text in fresh] == [1] * 5 + [0] * 77


def test_every_duplicate_in_a_batch_counts_an_access(post_json):
    first, second = existing(2)
    contents = [first.content, "A new fact.", first.content, second.content, "A new fact."]
    items = [{"content": content} for content in contents]

    response = post_json(BATCH, {"items": items})

    assert [e["status"] for e in response.json()["data"]["items"]] == [
        "duplicate", "created", "duplicate", "duplicate", "duplicate"
    ]
    counts = dict(Memory.objects.values_list("content", "access_count"))
    assert counts == {first.content: 2, second.content: 1, "A new fact.": 1}


def test_a_batch_of_duplicates_only_is_200_and_embeds_nothing(post_json, model_calls):
    [memory] = existing(1)

    response = post_json(BATCH, {"items": [{"content": memory.content}]})

    assert response.status_code == 200
    assert response.json()["data"]["counts"] == {"created": 0, "duplicate": 1, "invalid": 0}
    assert response.json()["meta"]["embeddingProvider"] is None
    assert model_calls == []


def test_batch_accesses_promote_and_are_reported(post_json):
    [memory] = existing(1, access_count=4)

    response = post_json(BATCH, {"items": [{"content": memory.content}, {"content": memory.content}]})

    memory.refresh_from_db()
    assert memory.access_count == 6 and memory.tier == Tier.THREAD
    assert response.json()["meta"]["promotions"] == [
        {"memoryId": str(memory.pk), "fromTier": "active", "toTier": "thread"}
    ]


def test_an_item_over_the_content_bound_is_invalid_and_the_others_go_in(post_json):
    response = post_json(
        BATCH, {"items": [{"content": "y" * (MAX_CONTENT_CHARS + 1)}, {"content": "Short enough.", "tags": ["t"]}]}
    )

    assert response.status_code == 201
    too_long, stored = response.json()["data"]["items"]
    assert too_long["status"] == "invalid" and too_long["field"] == "content" and too_long["memoryId"] is None
    assert str(MAX_CONTENT_CHARS) in too_long["message"]
    assert stored["status"] == "created"
    assert list(Memory.objects.values_list("content", "tags")) == [("Short enough.", ["t"])]


def test_an_item_keeps_its_fields(post_json):
    body = {"content": "Full item.", "category": "c", "tags": ["a", "b"], "source": "cli", "isCatalyst": True,
            "metadata": {"k": {"n": 1}}}

    post_json(BATCH, {"items": [body]})

    memory = Memory.objects.get()
    assert (memory.category, memory.tags, memory.source, memory.is_catalyst, memory.metadata) == (
        "c", ["a", "b"], "cli", True, {"k": {"n": 1}}
    )
    assert memory.resonance_phi == 1.0


@pytest.mark.parametrize(
    "body, field",
    [
        ({"items": [{"content": f"c{i}"} for i in range(101)]}, "items"),
        ({"items": []}, "items"),
        ({"items": {"content": "not a list"}}, "items"),
        ({"items": "not a list"}, "items"),
        ({}, "items"),
        ({"items": [{"content": "fine"}], "dryRun": True}, "dryRun"),
    ],
    ids=["101 items", "0 items", "object", "string", "missing", "unknown key"],
)
def test_bad_request_names_the_field_and_writes_nothing(post_json, model_calls, body, field):
    response = post_json(BATCH, body)

    assert bad_fields(response) == {field}
    assert Memory.objects.count() == 0
    assert model_calls == []


def test_batch_needs_a_write_key(api_key_for, model_calls):
    reader = APIClient()
    reader.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_for('read')}")

    response = reader.post(BATCH, {"items": [{"content": "A new fact."}]}, format="json")

    assert response.status_code == 403
    assert Memory.objects.count() == 0 and model_calls == []
