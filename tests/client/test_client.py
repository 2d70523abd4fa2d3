"""``AnimaClient`` against a live Anima: every method, its request and its typed result."""

import asyncio
import inspect
from datetime import UTC, date, datetime, timedelta, timezone as dt_timezone
from uuid import UUID

import pytest
from django.utils import timezone

from anima_client import AnimaClient, AsyncAnimaClient, Forbidden, NotFound, Unauthorized, ValidationError, formatting
from anima_client.models import QueryHit
from memories.models import Memory, MemoryAssociation, TierPromotion
from reflections.models import ConversationReflection, MetaReflection
from tests.client.conftest import FAST_RETRY

pytestmark = pytest.mark.django_db(transaction=True)


def test_add_returns_the_memory_and_flags_a_duplicate(anima):
    first = anima.add(
        "Dana is allergic to peanuts.", category="health", tags=["dana"], source="test", metadata={"k": [1]}
    )
    again = anima.add("Dana is allergic to peanuts.")

    assert first.is_duplicate is False
    assert first.memory.content == "Dana is allergic to peanuts."
    assert (first.memory.category, first.memory.tags, first.memory.source) == ("health", ["dana"], "test")
    assert first.memory.metadata == {"k": [1]}
    assert first.memory.tier == "active"
    assert first.meta.embedding_provider == "local"
    assert first.meta.request_id
    assert again.is_duplicate is True
    assert again.memory.id == first.memory.id
    assert again.memory.access_count == 1
    assert again.meta.embedding_provider is None


def test_add_a_catalyst_starts_with_phi_one(anima):
    memory = anima.add("We moved the whole stack to PostgreSQL.", is_catalyst=True).memory

    assert memory.is_catalyst is True
    assert memory.resonance_phi == 1.0


def test_query_finds_by_meaning_with_similarity_and_weight(anima):
    anima.add("Dana is allergic to peanuts.")
    anima.add("The staging server runs Debian 12.")

    result = anima.query("What food should Dana avoid?", limit=1)

    assert result.count == 1
    assert result.query == "What food should Dana avoid?"
    hit = result.memories[0]
    assert isinstance(hit, QueryHit)
    assert hit.content == "Dana is allergic to peanuts."
    assert 0.3 <= hit.similarity <= 1
    assert hit.structural_weight > 0
    assert hit.access_count == 1
    assert result.meta.query_time is not None


def test_query_passes_threshold_tiers_category_tags_and_mode(anima):
    anima.add("Staging runs Debian 12.", category="infra", tags=["staging"])
    anima.add("Production runs Debian 11.", category="infra", tags=["production"])
    anima.add("Debian is Dana's favourite distribution.", category="people")

    tagged = anima.query("Debian", category="infra", tags=["staging"], tiers=["active"], mode="hybrid")
    strict = anima.query("Debian", threshold=0.99, mode="semantic")  # hybrid keeps word matches
    stable_only = anima.query("Debian", tiers=["stable"])

    assert [hit.content for hit in tagged.memories] == ["Staging runs Debian 12."]
    assert tagged.memories[0].text_score > 0
    assert strict.memories == []
    assert stable_only.count == 0


def test_query_with_a_conversation_id_records_co_occurrence(anima):
    anima.add("Dana is allergic to peanuts.")
    anima.add("Dana also cannot eat almonds.")

    anima.query("Dana food allergies", conversation_id="conv-client-1", threshold=0.1)

    pair = MemoryAssociation.objects.get()
    assert pair.co_occurrence_count == 1
    assert pair.conversation_contexts == ["conv-client-1"]


def test_bootstrap_groups_the_memories_by_tier_with_the_distribution(anima):
    ids = [anima.add(f"Bootstrap memory number {n}.").memory.id for n in range(3)]
    anima.update_tier(ids[0], "stable")
    anima.update_tier(ids[1], "thread")

    result = anima.bootstrap(limit=10, conversation_id="conv-boot")

    assert [m.id for m in result.memories.stable] == [ids[0]]
    assert [m.id for m in result.memories.thread] == [ids[1]]
    assert [m.id for m in result.memories.active] == [ids[2]]
    assert (result.distribution.active, result.distribution.thread, result.distribution.stable) == (1, 1, 1)
    assert result.distribution.total == 3
    assert [m.id for m in result.all] == [ids[0], ids[1], ids[2]]


def test_bootstrap_sends_includes_active_limit_and_max_chars(anima):
    for n in range(3):
        anima.add(f"Active memory {n}.")

    no_active = anima.bootstrap(include_active=False)
    two_active = anima.bootstrap(active_limit=2, include_thread=False, include_stable=False)
    tight = anima.bootstrap(max_chars=len("Active memory 0."))

    assert no_active.all == []
    assert len(two_active.memories.active) == 2
    assert len(tight.all) == 1


def test_update_tier_reports_the_move_then_none_when_already_there(anima):
    memory = anima.add("Use tabs in this repository.").memory

    moved = anima.update_tier(memory.id, "stable", reason="confirmed by the user")
    unchanged = anima.update_tier(str(memory.id), "stable")

    assert moved.memory.tier == "stable"
    assert (moved.promotion.from_tier, moved.promotion.to_tier) == ("active", "stable")
    assert moved.promotion.reason == "confirmed by the user"
    assert unchanged.promotion is None
    assert TierPromotion.objects.filter(memory_id=memory.id).count() == 1


def test_catalysts_lists_by_phi(anima):
    anima.add("An ordinary note.")
    catalyst = anima.add("Switching to event sourcing changed everything.", is_catalyst=True).memory

    result = anima.catalysts(limit=1)

    assert result.count == 1
    assert result.catalysts[0].id == catalyst.id
    assert result.catalysts[0].phi == 1.0
    assert result.catalysts[0].is_catalyst is True


def test_stats_totals_phi_of_the_namespace(anima):
    anima.add("A catalyst memory.", is_catalyst=True, category="work")
    anima.add("A plain memory.", category="home")

    stats = anima.stats()

    assert stats.total_memories == 2
    assert stats.catalyst_count == 1
    assert stats.total_phi == 1.0
    assert stats.top_category.category == "work"


def test_associations_discover_hubs_and_network_stats(anima):
    ids = [anima.add(text).memory.id for text in ("Dana likes tea.", "Dana likes green tea.", "Dana drinks tea daily.")]
    anima.query("Dana tea", conversation_id="conv-a", threshold=0.1)

    discovered = anima.associations.discover(ids[0], min_strength=0.1, limit=5)
    hubs = anima.associations.hubs(min_connections=2, limit=5)
    stats = anima.associations.network_stats(ids[0])

    assert discovered.memory_id == ids[0]
    assert {a.memory_id for a in discovered.associations} == {ids[1], ids[2]}
    assert discovered.associations[0].conversation_contexts == ["conv-a"]
    assert discovered.associations[0].co_occurrence_count == 1
    assert {hub.memory_id for hub in hubs.hubs} == set(ids)
    assert hubs.hubs[0].total_connections == 2
    assert stats.total_associations == 2
    assert stats.total_co_occurrences == 2


def test_memory_get_patch_delete_and_restore(anima):
    memory = anima.add("The office is on the 3rd floor.", category="office").memory

    got = anima.memories.get(memory.id)
    patched = anima.memories.patch(memory.id, category=None, tags=["office"], metadata={"floor": 3})
    deleted = anima.memories.delete(memory.id)
    restored = anima.memories.restore(memory.id)

    assert (got.id, got.content, got.category) == (memory.id, memory.content, "office")
    assert patched.memory.category is None
    assert patched.memory.tags == ["office"]
    assert patched.memory.metadata == {"floor": 3}
    assert deleted.id == memory.id
    assert deleted.deleted_at is not None
    assert restored.memory.id == memory.id
    assert anima.memories.get(memory.id).tags == ["office"]


def test_memory_patch_with_new_content_re_embeds(anima):
    memory = anima.add("The office is on the 3rd floor.").memory

    patched = anima.memories.patch(memory.id, content="The office is on the 4th floor.")

    assert patched.memory.content == "The office is on the 4th floor."
    assert patched.meta.embedding_provider == "local"
    assert anima.query("Which floor is the office on?", limit=1).memories[0].id == memory.id


def test_memories_list_pages_with_a_cursor(anima):
    for n in range(3):
        anima.add(f"Listed memory {n}.", category="listed")

    first = anima.memories.list(category="listed", limit=2, ordering="createdAt")
    second = anima.memories.list(category="listed", limit=2, ordering="createdAt", cursor=first.next_cursor)

    assert [m.content for m in first.memories] == ["Listed memory 0.", "Listed memory 1."]
    assert [m.content for m in second.memories] == ["Listed memory 2."]


def test_conversation_end_returns_the_services_reflection(anima):
    metrics = {"memories_loaded": 10, "memories_accessed": 2, "queries_executed": 1, "custom": {"kept": True}}

    reflection = anima.conversation_end("conv-end-1", metrics)

    assert reflection.conversation_id == "conv-end-1"
    assert reflection.reflection_type == "conversation_end"
    assert reflection.session_metrics == metrics
    assert reflection.metrics["friction"]["feel"] == "rough"
    assert reflection.insights
    assert MetaReflection.objects.filter(conversation_id="conv-end-1").count() == 1


def test_conversation_reflection_records_the_scores(anima):
    reflection = anima.conversation_reflection(
        "conv-feel-1", context_quality=8, continuity_score=7, needed_correction=True, general_notes="good"
    )

    assert (reflection.context_quality, reflection.continuity_score) == (8, 7)
    assert reflection.needed_correction is True
    assert reflection.general_notes == "good"
    assert ConversationReflection.objects.get().conversation_id == "conv-feel-1"


def test_handshake_get_generate_and_history(anima):
    anima.add("Anima stores memories for assistants.", is_catalyst=True)

    current = anima.handshake.get()
    reused = anima.handshake.get()
    fresh = anima.handshake.generate(force=True)
    history = anima.handshake.history(limit=5)

    assert current.created is True
    assert "Anima stores memories" in current.prompt_text
    assert current.expires_at > current.created_at
    assert (reused.id, reused.created) == (current.id, False)
    assert fresh.created is True and fresh.id != current.id
    assert [h.id for h in history.handshakes] == [fresh.id, current.id]


def test_a_read_keys_handshake_is_composed_not_stored_and_says_so(anima, anima_url, api_key_for):
    anima.add("Anima stores memories for assistants.", is_catalyst=True)

    with AnimaClient(anima_url, api_key_for("read")) as reader:
        note = reader.handshake.get()
    text = formatting.handshake_text(note)

    assert (note.id, note.created) == (None, False)
    assert "Anima stores memories" in note.prompt_text
    assert text.endswith(f"({formatting.HANDSHAKE_NOT_STORED})")
    assert "None" not in text
    assert anima.handshake.history().count == 0


def test_health_reports_every_check(anima):
    health = anima.health()

    assert health.ok is True
    assert set(health.checks) >= {"database", "pgvector", "embedding", "cache", "queue"}
    assert all(check.status == "ok" for check in health.checks.values())


def test_url_and_key_come_from_the_environment(anima_url, write_key, monkeypatch):
    monkeypatch.setenv("ANIMA_URL", anima_url + "/")
    monkeypatch.setenv("ANIMA_API_KEY", write_key)

    with AnimaClient() as client:
        assert client.base_url == anima_url
        assert client.add("From the environment.").is_duplicate is False


def test_models_give_back_the_api_shape(anima):
    result = anima.add("Shape check.", tags=["t"])

    shown = result.to_api()

    assert set(shown) == {"memory", "isDuplicate", "message"}
    assert shown["memory"]["accessCount"] == 0
    assert shown["memory"]["contentHash"] == result.memory.content_hash
    assert UUID(shown["memory"]["id"]) == result.memory.id


def test_async_client_has_the_same_methods(anima_url, write_key):
    async def session():
        async with AsyncAnimaClient(anima_url, write_key) as client:
            added = await client.add("Async Dana likes oolong tea.", category="drinks")
            found = await client.query("What tea does Dana like?", conversation_id="conv-async")
            boot = await client.bootstrap(limit=5)
            got = await client.memories.get(added.memory.id)
            handshake = await client.handshake.get()
            stats = await client.stats()
            return added, found, boot, got, handshake, stats

    added, found, boot, got, handshake, stats = asyncio.run(session())

    assert found.memories[0].id == added.memory.id
    assert [m.id for m in boot.memories.active] == [added.memory.id]
    assert got.category == "drinks"
    assert handshake.prompt_text
    assert stats.total_memories == 1


def test_async_client_methods_mirror_the_sync_ones_as_coroutines():
    sync_client, async_client = AnimaClient("http://127.0.0.1:9"), AsyncAnimaClient("http://127.0.0.1:9")
    pairs = [(sync_client, async_client)] + [
        (getattr(sync_client, part), getattr(async_client, part)) for part in ("associations", "handshake", "memories")
    ]

    for sync_owner, async_owner in pairs:
        names = {name for name in dir(sync_owner) if not name.startswith("_") and callable(getattr(sync_owner, name))}
        names -= {"close"}
        assert names, type(sync_owner)
        for name in names:
            method = getattr(async_owner, name)
            assert inspect.iscoroutinefunction(method), name
            assert inspect.signature(method) == inspect.signature(getattr(sync_owner, name)), name
            assert method.__doc__ == getattr(sync_owner, name).__doc__, name


# --- batch add, query filters, recency, pinned memories, purge --------------------------------


def test_add_batch_reports_each_item_in_order(anima):
    stored = anima.add("Already here: the cat is called Miso.").memory

    result = anima.add_batch(
        [
            "Batch: the boiler was serviced in March.",
            {"content": "Batch: Dana runs on Tuesdays.", "tags": ("dana",), "is_catalyst": True, "metadata": {"k": 1}},
            "Already here: the cat is called Miso.",
            {"content": "   "},
            "Batch: the boiler was serviced in March.",
        ]
    )

    assert [(item.index, item.status) for item in result.items] == [
        (0, "created"), (1, "created"), (2, "duplicate"), (3, "invalid"), (4, "duplicate"),
    ]
    ids = result.memory_ids
    assert ids[2] == stored.id
    assert ids[3] is None and ids[4] == ids[0]
    assert (result.items[3].field, bool(result.items[3].message)) == ("content", True)
    assert [item.index for item in result.invalid] == [3]
    assert (result.counts.created, result.counts.duplicate, result.counts.invalid) == (2, 2, 1)
    assert result.meta.embedding_provider == "local"
    tagged = anima.memories.get(ids[1])
    assert (tagged.tags, tagged.is_catalyst, tagged.metadata) == (["dana"], True, {"k": 1})
    assert anima.memories.get(stored.id).access_count == 1


def test_add_batch_of_nothing_is_a_validation_error(anima):
    with pytest.raises(ValidationError) as caught:
        anima.add_batch([])
    with pytest.raises(TypeError):
        anima.add_batch("one string is not a batch")

    assert "items" in caught.value.fields


@pytest.fixture
def deploys(anima):
    """Three deploy notes: apollo (new), zeus (new) and apollo created and last used 30 days ago."""
    apollo = anima.add("The Apollo release ships on Fridays.", source="notes", metadata={"project": "apollo"}).memory
    zeus = anima.add("Zeus deployments need a change ticket.", source="chat", metadata={"project": "zeus"}).memory
    old = anima.add(
        "Apollo rollbacks need two approvals.", source="chat", metadata={"project": "apollo", "team": "ops"}
    ).memory
    month_ago = timezone.now() - timedelta(days=30)
    Memory.objects.filter(pk=old.id).update(created_at=month_ago, last_accessed=month_ago)
    return apollo.id, zeus.id, old.id


def test_query_filters_by_metadata_source_and_times(anima, deploys):
    apollo, zeus, old = deploys
    yesterday = timezone.now() - timedelta(days=1)

    def found(**filters) -> set:
        return {hit.id for hit in anima.query("deployment rules", threshold=0, **filters).memories}

    # first: the other queries count accesses, which move lastAccessed
    assert found(last_accessed_after=yesterday.isoformat()) == {apollo, zeus}
    assert found(metadata={"project": "apollo"}) == {apollo, old}
    assert found(metadata={"project": "apollo", "team": "ops"}) == {old}
    assert found(source="chat") == {zeus, old}
    assert found(created_after=yesterday) == {apollo, zeus}
    assert found(created_before=yesterday.date()) == {old}
    assert found(created_after="2000-01-01", created_before=yesterday.isoformat(), source="chat") == {old}


def test_query_recency_half_life_weighs_by_last_access(anima, deploys):
    apollo, _, old = deploys
    Memory.objects.filter(pk=old).update(last_accessed=timezone.now() - timedelta(days=14))

    hits = {hit.id: hit for hit in anima.query("Apollo", threshold=0, recency_half_life_days=7).memories}

    # weight = (relevance + 0.05 × φ/5) × 0.5 ** (days / half-life); φ was 0
    assert hits[old].structural_weight == pytest.approx(hits[old].relevance * 0.25, rel=0.01)
    assert hits[apollo].structural_weight == pytest.approx(hits[apollo].relevance, rel=0.01)


def test_occurred_at_goes_in_and_filters_the_query(anima):
    anima.add("The Apollo kickoff was in spring.", occurred_at="2023-04-03T10:00:00Z")
    anima.add_batch([{"content": "The Apollo retro was in autumn.", "occurred_at": datetime(2023, 10, 2, tzinfo=UTC)}])

    found = anima.query("Apollo", occurred_after=date(2023, 9, 1), threshold=0)

    assert [hit.content for hit in found.memories] == ["The Apollo retro was in autumn."]
    assert found.memories[0].occurred_at == datetime(2023, 10, 2, tzinfo=UTC)


def test_query_with_a_bad_filter_is_a_validation_error(anima):
    with pytest.raises(ValidationError) as caught:
        anima.query("x", recency_half_life_days=0, created_after="not a date")

    assert set(caught.value.fields) == {"recencyHalfLifeDays", "createdAfter"}


def test_patch_pins_a_memory_and_bootstrap_loads_it_first(anima):
    ids = [anima.add(f"Bootstrap pin candidate {n}.").memory.id for n in range(3)]
    anima.update_tier(ids[0], "stable")

    pinned = anima.memories.patch(ids[2], pinned=True)
    result = anima.bootstrap(limit=10)

    assert pinned.memory.pinned is True
    assert [m.id for m in result.pinned] == [ids[2]]
    assert result.memories.pinned == result.pinned
    assert [m.id for m in result.memories.stable] == [ids[0]]
    assert [m.id for m in result.memories.active] == [ids[1]]
    assert [m.id for m in result.all] == [ids[2], ids[0], ids[1]]
    assert result.to_api()["memories"]["pinned"][0]["pinned"] is True
    assert anima.memories.patch(ids[2], pinned=False).memory.pinned is False
    assert anima.bootstrap().pinned == []


def test_purge_removes_a_memory_for_good(anima):
    kept = anima.add("The spare key is under the blue pot.").memory
    doomed = anima.add("The alarm code is written in the red notebook.").memory

    result = anima.memories.purge(doomed.id)

    assert (result.id, result.purged) == (doomed.id, True)
    assert result.counts.memories == 1
    # Nothing quoted it (the two texts are unrelated) and its background work ran at once (sync tasks).
    assert (result.counts.copies_scrubbed, result.counts.task_records) == (0, 0)
    assert result.message
    assert not Memory.objects.filter(pk=doomed.id).exists()
    with pytest.raises(NotFound):
        anima.memories.get(doomed.id)
    with pytest.raises(NotFound):
        anima.memories.restore(doomed.id)
    with pytest.raises(NotFound):
        anima.memories.purge(doomed.id)
    assert anima.memories.get(kept.id).content == kept.content


def test_purge_namespace_needs_the_name_then_removes_everything(anima_url, api_key_for, write_key):
    admin_key = api_key_for("admin", namespace="scratch")
    with AnimaClient(anima_url, admin_key, retry=FAST_RETRY) as scratch:
        scratch.add("A scratch memory.")
        scratch.conversation_end("conv-scratch", {"memories_loaded": 1})
        with pytest.raises(ValidationError) as caught:
            scratch.purge_namespace(confirm="default")
        assert Memory.objects.filter(namespace="scratch").count() == 1

        result = scratch.purge_namespace(confirm="scratch")

        assert "confirm" in caught.value.fields
        assert result.namespace == "scratch"
        assert (result.counts.memories, result.counts.reflections, result.counts.api_keys) == (1, 1, 1)
        assert not Memory.objects.filter(namespace="scratch").exists()
        with pytest.raises(Unauthorized):  # its key went with the namespace
            scratch.stats()
    with AnimaClient(anima_url, write_key) as other:
        with pytest.raises(Forbidden):  # a write key may not purge
            other.purge_namespace(confirm="default")


def test_async_client_has_the_new_methods(anima_url, api_key_for):
    key = api_key_for("admin", namespace="async-new")
    hour_ago = datetime.now(dt_timezone.utc) - timedelta(hours=1)

    async def session():
        async with AsyncAnimaClient(anima_url, key) as client:
            batch = await client.add_batch(
                ["Async batch: Dana likes oolong.", {"content": "Async batch: Sam likes rooibos.", "metadata": {"who": "sam"}}]
            )
            found = await client.query(
                "tea", threshold=0, metadata={"who": "sam"}, recency_half_life_days=30, created_after=hour_ago
            )
            pinned = await client.memories.patch(batch.memory_ids[0], pinned=True)
            boot = await client.bootstrap()
            purged = await client.memories.purge(batch.memory_ids[1])
            wiped = await client.purge_namespace(confirm="async-new")
            return batch, found, pinned, boot, purged, wiped

    batch, found, pinned, boot, purged, wiped = asyncio.run(session())

    assert batch.counts.created == 2
    assert [hit.id for hit in found.memories] == [batch.memory_ids[1]]
    assert pinned.memory.pinned is True
    assert [m.id for m in boot.pinned] == [batch.memory_ids[0]]
    assert purged.counts.memories == 1
    assert (wiped.namespace, wiped.counts.memories) == ("async-new", 1)
