"""The memory resource: list (filters, ordering, cursor pages), retrieve, PATCH, soft
DELETE and restore — against the real database; the real bundled model where PATCH
re-embeds, the named fake embedder where a test needs vectors it controls."""

import socket
import uuid
from datetime import datetime, timedelta, timezone as dt_timezone

import numpy as np
import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from memories import embeddings
from memories.models import Memory, MemoryEmbedding, Tier
from memories.text import content_hash, normalized_hash
from tests.api_paths import ADD, BOOTSTRAP, MEMORIES, QUERY
from tests.factories import axis, make_memories
from tests.responses import bad_fields

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 10, 12, 0, tzinfo=dt_timezone.utc)


def detail(memory_id) -> str:
    return f"{MEMORIES}{memory_id}/"


def listed(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return [m["content"] for m in response.json()["data"]["memories"]]


def stored_vector(memory_id) -> np.ndarray:
    return np.asarray(MemoryEmbedding.objects.get(memory_id=memory_id).embedding, dtype=np.float32)


@pytest.fixture
def varied():
    """Five memories, one per filter value, created a day apart (a newest … e oldest)."""
    specs = [
        {"content": "a", "tier": Tier.ACTIVE, "category": "work", "tags": ["x", "y"], "source": "cli"},
        {"content": "b", "tier": Tier.THREAD, "category": "work", "tags": ["x"], "is_catalyst": True},
        {"content": "c", "tier": Tier.STABLE, "category": "home", "tags": ["y"], "source": "web"},
        {"content": "d", "tier": Tier.NETWORK, "is_catalyst": True, "source": "cli"},
        {"content": "e", "tier": Tier.ACTIVE, "category": "home"},
    ]
    for days, spec in enumerate(specs):
        spec["created_at"] = T0 - timedelta(days=days)
    return make_memories(specs, with_embeddings=False)


@pytest.fixture
def ranked():
    """Six memories whose orderings all differ; φ and access counts include ties."""
    specs = [
        # content, minutes old (created), minutes idle (last accessed), φ, accesses
        ("p", 1, 40, 2.0, 3),
        ("q", 2, 10, 0.5, 3),
        ("r", 3, 30, 2.0, 0),
        ("s", 4, 20, 0.0, 7),
        ("t", 5, 50, 4.5, 1),
        ("u", 6, 0, 0.0, 0),
    ]
    now = timezone.now()
    return make_memories(
        [
            {
                "content": content,
                "created_at": now - timedelta(minutes=created),
                "last_accessed": now - timedelta(minutes=idle),
                "resonance_phi": phi,
                "access_count": accesses,
            }
            for content, created, idle, phi, accesses in specs
        ],
        with_embeddings=False,
    )


# --- list -------------------------------------------------------------------------------------


def test_list_shows_the_live_memories_of_the_namespace_newest_first(api, varied):
    Memory.objects.filter(content="c").update(deleted_at=timezone.now())
    make_memories([{"content": "elsewhere"}], namespace="other", with_embeddings=False)

    assert listed(api.get(MEMORIES)) == ["a", "b", "d", "e"]


def test_list_item_has_the_public_fields_and_embedding_truncated(api, fake_embedder):
    memory = make_memories([{"content": "long", "vector": axis(0)}])[0]
    MemoryEmbedding.objects.filter(memory_id=memory.pk).update(truncated=True)

    item = api.get(MEMORIES).json()["data"]["memories"][0]

    assert item["id"] == str(memory.pk)
    assert item["embeddingTruncated"] is True
    assert "embedding" not in item
    assert {"accessCount", "resonancePhi", "tierLastUpdated", "isCatalyst", "createdAt"} <= set(item)


def test_list_response_shape(api, varied):
    data = api.get(f"{MEMORIES}?limit=2").json()["data"]

    assert set(data) == {"memories", "count", "nextCursor", "previousCursor"}
    assert data["count"] == 2
    assert data["previousCursor"] is None
    assert data["nextCursor"]


@pytest.mark.parametrize(
    "query, expected",
    [
        ("tier=active", ["a", "e"]),
        ("tier=network", ["d"]),
        ("category=home", ["c", "e"]),
        ("tag=x", ["a", "b"]),
        ("tag=x&tag=y", ["a"]),
        ("isCatalyst=true", ["b", "d"]),
        ("isCatalyst=false", ["a", "c", "e"]),
        ("source=cli", ["a", "d"]),
        ("createdAfter=2026-01-08T12:00:00Z", ["a", "b", "c"]),
        ("createdBefore=2026-01-08T12:00:00Z", ["d", "e"]),
        ("createdAfter=2026-01-07T00:00:00Z&createdBefore=2026-01-10T00:00:00Z", ["b", "c", "d"]),
        ("createdAfter=2026-01-09", ["a", "b"]),
        ("category=work&tier=thread&isCatalyst=true", ["b"]),
    ],
    ids=[
        "tier",
        "tier-network",
        "category",
        "tag",
        "tags-all-must-match",
        "catalyst",
        "not-catalyst",
        "source",
        "created-after-inclusive",
        "created-before-exclusive",
        "created-range",
        "created-after-a-date",
        "combined",
    ],
)
def test_list_filter(api, varied, query, expected):
    assert listed(api.get(f"{MEMORIES}?{query}")) == expected


def _expected_order(memories, field, descending):
    key = lambda m: (getattr(m, field), m.pk)  # noqa: E731
    return [m.content for m in sorted(memories, key=key, reverse=descending)]


@pytest.mark.parametrize(
    "ordering, field",
    [
        ("createdAt", "created_at"),
        ("lastAccessed", "last_accessed"),
        ("resonancePhi", "resonance_phi"),
        ("accessCount", "access_count"),
    ],
)
@pytest.mark.parametrize("descending", [False, True], ids=["asc", "desc"])
def test_list_ordering_breaks_ties_by_id(api, ranked, ordering, field, descending):
    prefix = "-" if descending else ""

    response = api.get(f"{MEMORIES}?ordering={prefix}{ordering}")

    assert listed(response) == _expected_order(ranked, field, descending)


def _walk(api, query: str) -> tuple[list[list[str]], list[str | None]]:
    """Every page following nextCursor: the pages' contents and their previousCursors."""
    pages, previous = [], []
    url = f"{MEMORIES}?{query}"
    while True:
        data = api.get(url).json()["data"]
        pages.append([m["content"] for m in data["memories"]])
        previous.append(data["previousCursor"])
        if data["nextCursor"] is None:
            return pages, previous
        url = f"{MEMORIES}?{query}&cursor={data['nextCursor']}"


def test_pages_cover_every_memory_once_in_order(api):
    make_memories([{"content": f"m{i:02d}"} for i in range(11)], with_embeddings=False)

    pages, previous = _walk(api, "limit=4")

    assert pages == [["m00", "m01", "m02", "m03"], ["m04", "m05", "m06", "m07"], ["m08", "m09", "m10"]]
    assert previous[0] is None and previous[1] and previous[2]


def test_pages_through_ties_neither_repeat_nor_skip(api):
    """All φ equal: only the id tells rows apart; an offset-free cursor still walks them all."""
    memories = make_memories([{"content": f"tie{i}", "resonance_phi": 1.0} for i in range(9)], with_embeddings=False)

    pages, _ = _walk(api, "limit=2&ordering=-resonancePhi")

    assert [c for page in pages for c in page] == _expected_order(memories, "resonance_phi", True)


def test_previous_cursor_leads_back_to_the_previous_page(api):
    make_memories([{"content": f"m{i:02d}"} for i in range(7)], with_embeddings=False)
    first = api.get(f"{MEMORIES}?limit=3").json()["data"]
    second = api.get(f"{MEMORIES}?limit=3&cursor={first['nextCursor']}").json()["data"]

    back = api.get(f"{MEMORIES}?limit=3&cursor={second['previousCursor']}").json()["data"]

    assert [m["content"] for m in back["memories"]] == ["m00", "m01", "m02"]
    assert back["previousCursor"] is None
    assert back["nextCursor"]


def test_pages_keep_their_place_when_memories_are_added(api):
    make_memories([{"content": f"m{i:02d}"} for i in range(6)], with_embeddings=False)
    first = api.get(f"{MEMORIES}?limit=3").json()["data"]
    make_memories([{"content": "newer"}], with_embeddings=False)

    second = api.get(f"{MEMORIES}?limit=3&cursor={first['nextCursor']}").json()["data"]

    assert [m["content"] for m in second["memories"]] == ["m03", "m04", "m05"]


def test_page_size_may_reach_the_maximum(api):
    make_memories([{"content": f"m{i:03d}"} for i in range(101)], with_embeddings=False)

    data = api.get(f"{MEMORIES}?limit=100").json()["data"]

    assert data["count"] == 100
    assert data["nextCursor"]


def test_default_page_size_is_twenty(api):
    make_memories([{"content": f"m{i:02d}"} for i in range(25)], with_embeddings=False)

    assert api.get(MEMORIES).json()["data"]["count"] == 20


@pytest.mark.parametrize(
    "query, field",
    [
        ("isCatalyst=yes", "isCatalyst"),
        ("isCatalyst=1", "isCatalyst"),
        ("createdAfter=yesterday", "createdAfter"),
        ("createdBefore=2026-13-01", "createdBefore"),
        ("createdAfter=2026-01-02&createdBefore=2026-01-01", "createdBefore"),
        ("tier=archive", "tier"),
        ("ordering=content", "ordering"),
        ("ordering=created_at", "ordering"),
        ("limit=101", "limit"),
        ("limit=0", "limit"),
        ("limit=ten", "limit"),
        ("cursor=not-a-cursor", "cursor"),
        ("category=" + "c" * 101, "category"),
        ("tag=" + "t" * 51, "tag"),
        ("is_catalyst=true", "is_catalyst"),
        ("tier=active&tier=thread", "tier"),
    ],
)
def test_bad_list_parameter_is_a_400_naming_it(api, query, field):
    response = api.get(f"{MEMORIES}?{query}")

    assert field in bad_fields(response)
    assert field in response.json()["error"]["message"]


def test_cursor_of_another_ordering_is_a_400(api):
    make_memories([{"content": f"m{i}"} for i in range(3)], with_embeddings=False)
    cursor = api.get(f"{MEMORIES}?limit=1").json()["data"]["nextCursor"]

    assert bad_fields(api.get(f"{MEMORIES}?limit=1&ordering=accessCount&cursor={cursor}")) == {"cursor"}


# --- retrieve, routes ------------------------------------------------------------------------------


def test_retrieve_returns_the_memory(api):
    memory = make_memories([{"content": "Dana is allergic to peanuts.", "tags": ["dana"]}], with_embeddings=False)[0]

    response = api.get(detail(memory.pk))

    assert response.status_code == 200
    shown = response.json()["data"]["memory"]
    assert shown["id"] == str(memory.pk)
    assert shown["content"] == "Dana is allergic to peanuts."
    assert shown["tags"] == ["dana"]


def test_routes_answer_without_a_trailing_slash(api):
    memory = make_memories([{"content": "slashless"}], with_embeddings=False)[0]

    assert api.get(MEMORIES.rstrip("/")).status_code == 200
    assert api.get(detail(memory.pk).rstrip("/")).status_code == 200
    assert api.post(f"{MEMORIES}{memory.pk}/restore").status_code == 200


def test_unknown_id_is_memory_not_found(api):
    missing = uuid.uuid4()

    response = api.get(detail(missing))

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "MEMORY_NOT_FOUND"
    assert response.json()["error"]["details"] == {"memoryId": str(missing)}


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_non_uuid_id_is_no_route(api, method):
    response = getattr(api, method)(f"{MEMORIES}not-a-uuid/")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


def test_uppercase_uuid_is_matched(api):
    memory = make_memories([{"content": "upper"}], with_embeddings=False)[0]

    assert api.get(detail(str(memory.pk).upper())).status_code == 200


@pytest.mark.parametrize(
    "call",
    [
        lambda api, pk: api.get(detail(pk)),
        lambda api, pk: api.patch(detail(pk), {"category": "mine"}, format="json"),
        lambda api, pk: api.delete(detail(pk)),
        lambda api, pk: api.post(f"{detail(pk)}restore/"),
    ],
    ids=["get", "patch", "delete", "restore"],
)
def test_another_namespace_memory_is_not_found(api, call):
    theirs = make_memories([{"content": "someone else's"}], namespace="other", with_embeddings=False)[0]

    response = call(api, theirs.pk)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "MEMORY_NOT_FOUND"
    assert Memory.objects.get(pk=theirs.pk).category is None
    assert Memory.objects.get(pk=theirs.pk).deleted_at is None


def test_merged_memory_is_not_found_and_names_the_survivor(api):
    survivor, merged = make_memories([{"content": "kept"}, {"content": "kept!"}], with_embeddings=False)
    Memory.objects.filter(pk=merged.pk).update(deleted_at=timezone.now(), merged_into=survivor.pk)

    response = api.get(detail(merged.pk))

    assert response.status_code == 404
    assert response.json()["error"]["details"]["mergedInto"] == str(survivor.pk)


def test_put_is_not_allowed(api):
    memory = make_memories([{"content": "no put"}], with_embeddings=False)[0]

    response = api.put(detail(memory.pk), {"content": "replaced"}, format="json")

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
    assert Memory.objects.get(pk=memory.pk).content == "no put"


def test_post_to_the_list_is_not_allowed(api):
    assert api.post(MEMORIES, {"content": "use add"}, format="json").status_code == 405


def test_add_query_and_bootstrap_still_route(post_json, api, fake_embedder):
    assert post_json(ADD, {"content": "still routed"}).status_code == 201
    assert post_json(QUERY, {"query": "still routed"}).status_code == 200
    assert api.get(BOOTSTRAP).status_code == 200


# --- PATCH ------------------------------------------------------------------------------------------


def test_patch_changes_the_given_fields_and_nothing_else(api, model_calls):
    memory = make_memories(
        [{"content": "The deploy runs on Fridays.", "category": "ops", "tags": ["deploy"]}], with_embeddings=False
    )[0]

    response = api.patch(
        detail(memory.pk),
        {"tags": ["deploy", "friday"], "source": "chat", "metadata": {"k": 1}, "isCatalyst": True},
        format="json",
    )

    assert response.status_code == 200
    shown = response.json()["data"]["memory"]
    assert shown["tags"] == ["deploy", "friday"]
    assert shown["source"] == "chat"
    assert shown["metadata"] == {"k": 1}
    assert shown["isCatalyst"] is True
    assert shown["category"] == "ops"
    assert shown["content"] == "The deploy runs on Fridays."
    assert shown["resonancePhi"] == 0.0
    assert response.json()["meta"]["embeddingProvider"] is None
    assert model_calls == []


def test_patch_null_clears_category_and_source(api):
    memory = make_memories([{"content": "clear me", "category": "c", "source": "s"}], with_embeddings=False)[0]

    api.patch(detail(memory.pk), {"category": None, "source": None}, format="json")

    memory.refresh_from_db()
    assert (memory.category, memory.source) == (None, None)


def test_patch_metadata_replaces_it_whole(api):
    memory = make_memories([{"content": "meta", "metadata": {"a": 1, "b": 2}}], with_embeddings=False)[0]

    api.patch(detail(memory.pk), {"metadata": {"b": 3}}, format="json")

    memory.refresh_from_db()
    assert memory.metadata == {"b": 3}


def test_patch_content_rehashes_and_reembeds_with_the_model(post_json, api):
    memory = post_json(ADD, {"content": "The staging server runs Debian 12."}).json()["data"]["memory"]
    before = stored_vector(memory["id"])

    response = api.patch(detail(memory["id"]), {"content": "Lunch is at noon in the atrium."}, format="json")

    assert response.status_code == 200
    assert response.json()["meta"]["embeddingProvider"] == "local"
    stored = Memory.objects.get(pk=memory["id"])
    assert stored.content == "Lunch is at noon in the atrium."
    assert stored.content_hash == content_hash("Lunch is at noon in the atrium.")
    assert stored.normalized_hash == normalized_hash("Lunch is at noon in the atrium.")
    after = stored_vector(memory["id"])
    expected = embeddings.embed_texts(["Lunch is at noon in the atrium."], namespace="default").embeddings[0].vector
    assert float(np.dot(before, after)) < 0.9
    assert np.allclose(after, expected, atol=1e-5)


def test_patch_with_unchanged_content_embeds_nothing(api, model_calls):
    memory = make_memories([{"content": "same", "vector": axis(3)}])[0]

    response = api.patch(detail(memory.pk), {"content": "same", "category": "c"}, format="json")

    assert response.status_code == 200
    assert model_calls == []
    assert np.allclose(stored_vector(memory.pk), axis(3))


def test_patch_to_the_content_of_another_memory_is_a_conflict_and_changes_nothing(api, model_calls):
    mine, theirs = make_memories([{"content": "mine", "vector": axis(0)}, {"content": "taken", "vector": axis(1)}])

    response = api.patch(detail(mine.pk), {"content": "taken", "category": "new"}, format="json")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "CONFLICT"
    assert response.json()["error"]["details"]["existingId"] == str(theirs.pk)
    mine.refresh_from_db()
    assert (mine.content, mine.category, mine.content_hash) == ("mine", None, content_hash("mine"))
    assert np.allclose(stored_vector(mine.pk), axis(0))
    assert model_calls == []


def test_patch_conflict_is_caught_by_the_unique_constraint(api, fake_embedder):
    """An add of the same content lands while the model embeds, after the first look: the
    partial unique index refuses the update and nothing of the PATCH is written."""
    mine = make_memories([{"content": "mine", "vector": axis(0)}])[0]
    racer = {}
    original = fake_embedder.embed_many

    def embed_while_another_add_lands(texts):
        racer["memory"] = make_memories([{"content": "contested", "vector": axis(1)}])[0]
        return original(texts)

    fake_embedder.embed_many = embed_while_another_add_lands

    response = api.patch(detail(mine.pk), {"content": "contested", "tags": ["t"]}, format="json")

    assert response.status_code == 409
    assert response.json()["error"]["details"]["existingId"] == str(racer["memory"].pk)
    mine.refresh_from_db()
    assert (mine.content, mine.tags) == ("mine", [])
    assert np.allclose(stored_vector(mine.pk), axis(0))


def test_patch_to_the_content_of_a_deleted_memory_is_allowed(api, fake_embedder):
    mine, gone = make_memories([{"content": "mine", "vector": axis(0)}, {"content": "old", "vector": axis(1)}])
    Memory.objects.filter(pk=gone.pk).update(deleted_at=timezone.now())

    assert api.patch(detail(mine.pk), {"content": "old"}, format="json").status_code == 200


@pytest.fixture
def unreachable_embedder(settings):
    """The real OpenAI-compatible provider aimed at a port where nothing listens."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    previous = embeddings.get_provider()
    settings.ANIMA_EMBEDDING_PROVIDER = "openai"
    settings.ANIMA_OPENAI_BASE_URL = f"http://127.0.0.1:{port}/v1"
    settings.ANIMA_OPENAI_RETRIES = 0
    settings.ANIMA_OPENAI_TIMEOUT = 0.5
    settings.ANIMA_OPENAI_SEND_DIMENSIONS = False
    embeddings.set_provider(embeddings.build_provider())
    yield
    embeddings.set_provider(previous)


def test_patch_content_when_the_embedder_is_down_is_a_503_and_writes_nothing(api, unreachable_embedder):
    memory = make_memories([{"content": "before", "vector": axis(0)}])[0]

    response = api.patch(detail(memory.pk), {"content": "after", "category": "c"}, format="json")

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "EMBEDDING_UNAVAILABLE"
    memory.refresh_from_db()
    assert (memory.content, memory.category) == ("before", None)
    assert np.allclose(stored_vector(memory.pk), axis(0))


@pytest.mark.parametrize(
    "body, field",
    [
        ({"content": ""}, "content"),
        ({"content": "   "}, "content"),
        ({"content": "x" * 50_001}, "content"),
        ({"tags": ["t"] * 21}, "tags"),
        ({"tags": None}, "tags"),
        ({"category": "c" * 101}, "category"),
        ({"isCatalyst": "yes"}, "isCatalyst"),
        ({"metadata": [1]}, "metadata"),
        ({"tier": "stable"}, "tier"),
        ({"is_catalyst": True}, "is_catalyst"),
    ],
)
def test_bad_patch_is_a_400_and_changes_nothing(api, body, field):
    memory = make_memories([{"content": "unchanged"}], with_embeddings=False)[0]

    response = api.patch(detail(memory.pk), body, format="json")

    assert field in bad_fields(response)
    memory.refresh_from_db()
    assert (memory.content, memory.tags, memory.tier, memory.is_catalyst) == ("unchanged", [], Tier.ACTIVE, False)


def test_patch_of_a_deleted_memory_is_not_found(api):
    memory = make_memories([{"content": "gone"}], with_embeddings=False)[0]
    Memory.objects.filter(pk=memory.pk).update(deleted_at=timezone.now())

    assert api.patch(detail(memory.pk), {"category": "c"}, format="json").status_code == 404


# --- DELETE and restore --------------------------------------------------------------------------------


@pytest.fixture
def doomed(fake_embedder):
    """One memory the fake embedder finds for the query "find the doomed one"."""
    fake_embedder.vectors["find the doomed one"] = axis(7)
    return make_memories([{"content": "The doomed memory.", "vector": axis(7)}])[0]


def query_contents(post_json) -> list[str]:
    return [m["content"] for m in post_json(QUERY, {"query": "find the doomed one"}).json()["data"]["memories"]]


def bootstrap_contents(api) -> list[str]:
    branches = api.get(BOOTSTRAP).json()["data"]["memories"]
    return [m["content"] for branch in branches.values() for m in branch]


def test_delete_is_soft(api, doomed):
    response = api.delete(detail(doomed.pk))

    assert response.status_code == 200
    data = response.json()["data"]
    assert data["id"] == str(doomed.pk)
    doomed.refresh_from_db()
    assert doomed.deleted_at is not None
    assert data["deletedAt"].startswith(doomed.deleted_at.strftime("%Y-%m-%dT%H:%M"))
    assert MemoryEmbedding.objects.filter(memory_id=doomed.pk).exists()


def test_deleted_memory_is_hidden_from_list_and_retrieve(api, doomed):
    api.delete(detail(doomed.pk))

    assert listed(api.get(MEMORIES)) == []
    assert api.get(detail(doomed.pk)).status_code == 404


def test_deleted_memory_is_hidden_from_query(api, post_json, doomed):
    assert query_contents(post_json) == ["The doomed memory."]

    api.delete(detail(doomed.pk))

    assert query_contents(post_json) == []


def test_deleted_memory_is_hidden_from_bootstrap(api, doomed):
    assert bootstrap_contents(api) == ["The doomed memory."]

    api.delete(detail(doomed.pk))

    assert bootstrap_contents(api) == []
    assert api.get(BOOTSTRAP).json()["data"]["distribution"]["total"] == 0


def test_deleting_twice_is_not_found(api, doomed):
    api.delete(detail(doomed.pk))

    assert api.delete(detail(doomed.pk)).status_code == 404


def test_restore_brings_it_back_everywhere(api, post_json, doomed):
    api.delete(detail(doomed.pk))

    response = api.post(f"{detail(doomed.pk)}restore/")

    assert response.status_code == 200
    assert response.json()["data"]["memory"]["id"] == str(doomed.pk)
    assert listed(api.get(MEMORIES)) == ["The doomed memory."]
    assert api.get(detail(doomed.pk)).status_code == 200
    assert bootstrap_contents(api) == ["The doomed memory."]
    assert query_contents(post_json) == ["The doomed memory."]


def test_restore_is_a_conflict_when_a_live_memory_has_the_content_now(api, post_json, doomed):
    api.delete(detail(doomed.pk))
    again = post_json(ADD, {"content": "The doomed memory."}).json()["data"]["memory"]

    response = api.post(f"{detail(doomed.pk)}restore/")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "CONFLICT"
    assert response.json()["error"]["details"]["existingId"] == again["id"]
    doomed.refresh_from_db()
    assert doomed.deleted_at is not None


def test_restore_of_a_live_memory_changes_nothing(api, doomed):
    response = api.post(f"{detail(doomed.pk)}restore/")

    assert response.status_code == 200
    assert response.json()["data"]["message"] == "Memory was not deleted; nothing changed."


def test_restore_of_a_merged_memory_is_not_found_naming_the_survivor(api):
    survivor, merged = make_memories([{"content": "kept"}, {"content": "kept."}], with_embeddings=False)
    Memory.objects.filter(pk=merged.pk).update(deleted_at=timezone.now(), merged_into=survivor.pk)

    response = api.post(f"{detail(merged.pk)}restore/")

    assert response.status_code == 404
    assert response.json()["error"]["details"]["mergedInto"] == str(survivor.pk)
    assert Memory.objects.get(pk=merged.pk).deleted_at is not None


def test_restore_with_a_body_key_is_a_400(api, doomed):
    api.delete(detail(doomed.pk))

    response = api.post(f"{detail(doomed.pk)}restore/", {"force": True}, format="json")

    assert bad_fields(response) == {"force"}
    assert Memory.objects.get(pk=doomed.pk).deleted_at is not None


def test_a_read_scope_key_may_list_and_retrieve_but_not_change(api_key_for):
    memory = make_memories([{"content": "read only"}], with_embeddings=False)[0]
    reader = APIClient()
    reader.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_for('read')}")

    assert reader.get(MEMORIES).status_code == 200
    assert reader.get(detail(memory.pk)).status_code == 200
    assert reader.patch(detail(memory.pk), {"category": "c"}, format="json").status_code == 403
    assert reader.delete(detail(memory.pk)).status_code == 403
    assert reader.post(f"{detail(memory.pk)}restore/").status_code == 403
    assert Memory.objects.get(pk=memory.pk).deleted_at is None


def test_without_a_key_the_resource_is_unauthorized(anonymous_api):
    response = anonymous_api.get(MEMORIES)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHORIZED"
