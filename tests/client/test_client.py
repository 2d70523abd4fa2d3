"""``AnimaClient`` against a live Anima: every method, its request and its typed result."""

import asyncio
import inspect
from datetime import UTC, date, datetime, timedelta, timezone as dt_timezone
from uuid import UUID, uuid4

import pytest
from django.utils import timezone

from anima_client import (
    AnimaClient,
    AsyncAnimaClient,
    Conflict,
    Forbidden,
    NotFound,
    Unauthorized,
    ValidationError,
    formatting,
)
from anima_client.models import Correction, Memory as MemoryModel, QueryHit
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


def test_add_and_correct_list_their_shared_fields_and_refuse_unknown_ones():
    client = AnimaClient("http://127.0.0.1:9")
    shared = ["category", "tags", "source", "is_catalyst", "metadata", "occurred_at", "expires_at", "valid_from"]

    for method in (client.add, client.correct):
        parameters = inspect.signature(method).parameters
        assert [name for name in parameters if name in shared] == shared
        assert all(parameters[name].kind is inspect.Parameter.KEYWORD_ONLY for name in shared)
    with pytest.raises(TypeError, match="unexpected keyword argument 'occured_at'"):
        client.add("x", occured_at="2026-01-01")
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        client.correct(uuid4(), "x", bogus=1)


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


# --- facts that change: correct, supersedes, expiresAt, asOf ---------------------------------


def test_correct_stores_the_new_fact_and_supersedes_the_old(anima):
    old = anima.add("Dana lives in Paris.", category="people", tags=["dana"]).memory
    before = datetime.now(UTC)

    result = anima.correct(old.id, "Dana lives in Lyon now.", category="people", tags=["dana"])

    new, corrected = result.memory, result.corrected
    assert isinstance(result, Correction)
    assert (new.content, new.category, new.tags, new.supersedes) == ("Dana lives in Lyon now.", "people", ["dana"], [old.id])
    assert new.superseded_by is None and new.valid_until is None and new.valid_from >= before
    assert (corrected.id, corrected.content, corrected.superseded_by) == (old.id, "Dana lives in Paris.", new.id)
    assert before <= corrected.valid_until
    assert result.embedding_provider == "local" and result.message
    assert anima.memories.get(old.id).superseded_by == new.id  # still readable by id
    assert Memory.objects.get(pk=old.id).valid_until is not None


def test_queries_and_lists_leave_superseded_facts_out_unless_asked(anima):
    old = anima.add("Dana lives in Paris.").memory
    before = datetime.now(UTC)
    new = anima.correct(old.id, "Dana lives in Lyon now.").memory
    question = {"query": "Where does Dana live?", "threshold": 0}

    current = anima.query(**question)
    history = anima.query(**question, include_superseded=True)
    then = anima.query(**question, as_of=before)
    then_as_text = anima.query(**question, as_of=before.isoformat())

    assert [hit.id for hit in current.memories] == [new.id]
    assert {hit.id for hit in history.memories} == {old.id, new.id}
    assert [hit.id for hit in then.memories] == [old.id]
    assert [hit.id for hit in then_as_text.memories] == [old.id]
    assert [memory.id for memory in anima.memories.list().memories] == [new.id]
    assert {memory.id for memory in anima.memories.list(include_superseded=True).memories} == {old.id, new.id}
    assert [memory.id for memory in anima.memories.list(as_of=before).memories] == [old.id]
    with pytest.raises(ValidationError) as caught:
        anima.query("Dana", as_of=before, include_superseded=True)
    assert "asOf" in caught.value.fields


def test_valid_from_dates_a_fact_and_its_correction(anima):
    now = datetime.now(UTC)
    old = anima.add("Dana works at Acme.", valid_from=now - timedelta(days=60)).memory
    new = anima.correct(old.id, "Dana works at Globex.", valid_from=(now - timedelta(days=7)).date()).memory

    last_month = anima.query("Where does Dana work?", threshold=0, as_of=now - timedelta(days=30))

    assert [hit.id for hit in last_month.memories] == [old.id]
    assert anima.memories.get(old.id).valid_until == new.valid_from
    assert [hit.id for hit in anima.query("Where does Dana work?", threshold=0).memories] == [new.id]


def test_query_text_notes_what_a_memory_corrects_and_what_superseded_it(anima):
    old = anima.add("Dana lives in Paris.").memory
    new = anima.correct(old.id, "Dana lives in Lyon now.").memory

    text = formatting.query_text(anima.query("Where does Dana live?", threshold=0, include_superseded=True))

    assert f"corrects 1 older memory: {str(old.id)[:8]}" in text
    assert f"superseded by {str(new.id)[:8]}" in text


def test_add_names_the_memory_it_may_correct_and_correct_by_confirms_it(anima):
    old = anima.add("Dana is allergic to peanuts.")
    new = anima.add("Dana is not allergic to peanuts.")

    result = anima.correct(old.memory.id, corrected_by=new.memory.id)

    assert old.possibly_corrects == []
    assert new.possibly_corrects == [old.memory.id]
    assert new.meta.possibly_corrects == [old.memory.id]
    assert (
        f"may correct {str(old.memory.id)[:8]} — confirm with: anima correct {old.memory.id} --by {new.memory.id}"
        in formatting.add_text(new)
    )
    assert (result.memory.id, result.corrected.id) == (new.memory.id, old.memory.id)
    assert result.memory.supersedes == [old.memory.id]
    assert result.corrected.superseded_by == new.memory.id
    assert result.embedding_provider is None  # nothing was embedded
    assert [hit.id for hit in anima.query("Is Dana allergic to peanuts?", threshold=0).memories] == [new.memory.id]


def test_correcting_twice_is_a_conflict_naming_the_correction(anima):
    old = anima.add("The sprint ends on Friday.").memory
    first = anima.correct(old.id, "The sprint ends on Monday.").memory
    other = anima.add("Sam lives in Berlin.").memory

    with pytest.raises(Conflict) as twice:
        anima.correct(old.id, "The sprint ends on Tuesday.")
    with pytest.raises(Conflict) as taken:
        anima.correct(first.id, "Sam lives in Berlin.")
    with pytest.raises(ValidationError) as itself:
        anima.correct(other.id, corrected_by=other.id)
    with pytest.raises(NotFound):
        anima.correct("00000000-0000-4000-8000-000000000000", "Nothing to correct.")

    assert (twice.value.status, twice.value.code) == (409, "CONFLICT")
    assert (twice.value.memory_id, twice.value.superseded_by) == (str(old.id), str(first.id))
    assert taken.value.existing_id == str(other.id)
    assert anima.memories.get(first.id).superseded_by is None  # nothing was written
    assert "correctedBy" in itself.value.fields
    assert Memory.objects.filter(content="The sprint ends on Tuesday.").count() == 0


def test_correct_needs_content_or_corrected_by(anima):
    memory_id = "00000000-0000-4000-8000-000000000000"

    with pytest.raises(TypeError):
        anima.correct(memory_id)
    with pytest.raises(TypeError):
        anima.correct(memory_id, "New.", corrected_by=memory_id)


def test_add_and_add_batch_take_expires_at_and_supersedes_and_patch_clears_it(anima):
    soon = datetime.now(UTC) + timedelta(days=7)
    old = anima.add("The office is closed this week.", expires_at=soon).memory
    new = anima.add("The office reopens on Monday.", supersedes=[old.id]).memory
    batch = anima.add_batch(
        [{"content": "The wifi password rotates monthly.", "expires_at": date(2099, 1, 1), "supersedes": [new.id]}]
    )
    [batched] = batch.memory_ids

    assert old.expires_at == soon
    # Read back: the add's answer shows the memory as stored before the link was written.
    assert anima.memories.get(new.id).supersedes == [old.id]
    assert anima.memories.get(old.id).superseded_by == new.id
    assert anima.memories.get(new.id).superseded_by == batched
    assert anima.memories.get(batched).expires_at.year == 2099
    expired = anima.memories.patch(batched, expires_at=datetime.now(UTC) - timedelta(minutes=1)).memory
    assert expired.expires_at is not None
    assert anima.query("office wifi", threshold=0).memories == []  # expired, and superseded
    assert anima.memories.patch(batched, expires_at=None).memory.expires_at is None
    assert [hit.id for hit in anima.query("office wifi", threshold=0).memories] == [batched]


def test_purge_with_chain_removes_every_correction(anima):
    old = anima.add("Dana lives in Paris.").memory
    new = anima.correct(old.id, "Dana lives in Lyon now.").memory

    result = anima.memories.purge(new.id, chain=True)

    assert result.counts.memories == 2
    assert not Memory.objects.filter(pk__in=[old.id, new.id]).exists()


def test_memories_of_an_older_server_parse_without_the_validity_fields(anima):
    shown = anima.add("An older server's memory.").memory.to_api()
    for key in ("supersededBy", "supersedes", "validFrom", "validUntil", "expiresAt"):
        del shown[key]

    memory = MemoryModel.model_validate(shown)

    assert (memory.superseded_by, memory.supersedes, memory.valid_until, memory.expires_at) == (None, [], None, None)


def test_async_client_corrects(anima_url, write_key):
    async def session():
        async with AsyncAnimaClient(anima_url, write_key) as client:
            old = (await client.add("Async: Dana lives in Paris.")).memory
            return old, await client.correct(old.id, "Async: Dana lives in Lyon now.")

    old, result = asyncio.run(session())

    assert result.corrected.id == old.id
    assert result.memory.supersedes == [old.id]
