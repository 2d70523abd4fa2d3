"""``AnimaClient`` against a live Anima: every method, its request and its typed result."""

import asyncio
from uuid import UUID

import pytest

from anima_client import AnimaClient, AsyncAnimaClient
from anima_client.models import QueryHit
from memories.models import MemoryAssociation, TierPromotion
from meta.models import ConversationReflection, MetaReflection

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
    strict = anima.query("Debian", threshold=0.99)
    stable_only = anima.query("Debian", tiers=["stable"])

    assert [hit.content for hit in tagged.memories] == ["Staging runs Debian 12."]
    assert tagged.memories[0].rrf_score is not None
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
