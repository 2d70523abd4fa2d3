import uuid
import numpy as np
import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from memories import search
from memories.filters import MemoryFilters
from memories.models import BackgroundWork, Memory, MemoryAccess, MemoryEmbedding, Tier, TierPromotion, WorkKind
from memories.services.access import memories_record_access
from memories.services.draining import work_drain
from tests.api_paths import ADD, QUERY
from tests.factories import axis, make_memories

pytestmark = pytest.mark.django_db


def contents(response) -> list[str]:
    return [m["content"] for m in response.json()["data"]["memories"]]


def test_repeated_query_is_served_from_the_cache(post_json, model_calls):
    post_json(ADD, {"content": "The office wifi password is on the fridge."})
    model_calls.clear()

    first = post_json(QUERY, {"query": "where is the wifi password?"})
    second = post_json(QUERY, {"query": "where is the wifi password?"})

    assert first.json()["meta"]["embeddingProvider"] == "local"
    assert second.json()["meta"]["embeddingProvider"] == "cache"
    assert model_calls == [["where is the wifi password?"]]
    assert contents(second) == contents(first)


def test_results_are_ordered_by_relevance_with_a_bounded_resonance_bonus(post_json, fake_embedder):
    # similarity 0.9 φ 0 → 0.9; similarity 0.8 φ 1 → 0.81; similarity 0.6 φ 5 → 0.65
    make_memories(
        [
            {"content": "close", "vector": axis(0, 1, np.sqrt(1 - 0.9**2))},
            {"content": "resonant", "vector": axis(0, 1, np.sqrt(1 - 0.6**2)), "resonance_phi": 5.0},
            {"content": "middle", "vector": axis(0, 2, np.sqrt(1 - 0.8**2)), "resonance_phi": 1.0},
        ]
    )
    fake_embedder.vectors["q"] = axis(0)

    response = post_json(QUERY, {"query": "q", "mode": "semantic"})

    assert contents(response) == ["close", "middle", "resonant"]
    hits = response.json()["data"]["memories"]
    assert hits[2]["similarity"] == pytest.approx(0.6, abs=1e-4)
    assert hits[2]["relevance"] == pytest.approx(0.6, abs=1e-4)
    assert hits[2]["structuralWeight"] == pytest.approx(0.6 + 0.05, abs=1e-4)
    assert hits[1]["structuralWeight"] == pytest.approx(0.8 + 0.01, abs=1e-4)


def test_hybrid_without_a_matching_word_ranks_by_seven_tenths_of_similarity(post_json, fake_embedder):
    make_memories([{"content": "close", "vector": axis(0, 1, np.sqrt(1 - 0.9**2)), "resonance_phi": 2.5}])
    fake_embedder.vectors["q"] = axis(0)

    [hit] = post_json(QUERY, {"query": "q"}).json()["data"]["memories"]

    assert hit["relevance"] == pytest.approx(0.7 * 0.9, abs=1e-4)
    assert hit["structuralWeight"] == pytest.approx(0.7 * 0.9 + 0.025, abs=1e-4)
    assert hit["textScore"] == 0


def test_threshold_drops_less_similar_memories(post_json, fake_embedder):
    make_memories(
        [
            {"content": "similar", "vector": axis(0, 1, np.sqrt(1 - 0.5**2))},
            {"content": "dissimilar", "vector": axis(0, 1, np.sqrt(1 - 0.2**2)), "resonance_phi": 5.0},
        ]
    )
    fake_embedder.vectors["q"] = axis(0)

    assert contents(post_json(QUERY, {"query": "q", "similarityThreshold": 0.3})) == ["similar"]
    assert contents(post_json(QUERY, {"query": "q", "similarityThreshold": 0.1})) == ["similar", "dissimilar"]


def test_default_threshold_is_the_setting(post_json, fake_embedder, settings):
    settings.ANIMA_SIMILARITY_THRESHOLD = 0.55
    make_memories([{"content": "half", "vector": axis(0, 1, np.sqrt(1 - 0.5**2))}])
    fake_embedder.vectors["q"] = axis(0)

    assert contents(post_json(QUERY, {"query": "q"})) == []


def test_tier_category_and_tag_filters(post_json, fake_embedder):
    make_memories(
        [
            {"content": "active-a", "vector": axis(0), "category": "work", "tags": ["a", "b"]},
            {"content": "thread-a", "vector": axis(0), "tier": Tier.THREAD, "category": "work", "tags": ["a"]},
            {"content": "stable-b", "vector": axis(0), "tier": Tier.STABLE, "category": "home", "tags": ["b"]},
        ]
    )
    fake_embedder.vectors["q"] = axis(0)

    assert sorted(contents(post_json(QUERY, {"query": "q", "tiers": ["thread", "stable"]}))) == ["stable-b", "thread-a"]
    assert sorted(contents(post_json(QUERY, {"query": "q", "category": "work"}))) == ["active-a", "thread-a"]
    assert contents(post_json(QUERY, {"query": "q", "tags": ["a", "b"]})) == ["active-a"]
    assert sorted(contents(post_json(QUERY, {"query": "q", "tags": ["b"]}))) == ["active-a", "stable-b"]


def test_filters_do_not_starve_the_candidate_pool(post_json, fake_embedder):
    """150 closer memories in another category: iterative scan still reaches the match."""
    make_memories(
        [{"content": f"noise {i}", "vector": axis(0, 1 + i % 50, 0.1), "category": "noise"} for i in range(150)]
        + [{"content": "wanted", "vector": axis(0, 60, 0.5), "category": "wanted"}]
    )
    fake_embedder.vectors["q"] = axis(0)

    assert contents(post_json(QUERY, {"query": "q", "category": "wanted", "limit": 1})) == ["wanted"]


def test_limit_caps_the_results(post_json, fake_embedder):
    make_memories([{"content": f"m{i}", "vector": axis(0, 1 + i, 0.1)} for i in range(30)])
    fake_embedder.vectors["q"] = axis(0)

    response = post_json(QUERY, {"query": "q", "limit": 7})

    assert response.json()["data"]["count"] == 7


def test_hits_show_their_counters_after_the_update(post_json, fake_embedder):
    [memory] = make_memories([{"content": "hit", "vector": axis(0), "resonance_phi": 4.95}])
    fake_embedder.vectors["q"] = axis(0)

    hit = post_json(QUERY, {"query": "q", "conversationId": "conv-1"}).json()["data"]["memories"][0]

    assert hit["accessCount"] == 1
    assert hit["resonancePhi"] == pytest.approx(4.95)  # a hit is not evidence of use: φ stays
    assert list(MemoryAccess.objects.values_list("conversation_id", flat=True)) == ["conv-1"]
    # The counters are the drain's to write: until it runs, the access waits as a row.
    memory.refresh_from_db()
    assert memory.access_count == 0
    assert list(BackgroundWork.objects.filter(kind=WorkKind.ACCESS).values_list("memory_ids", flat=True)) == [
        [memory.id]
    ]
    assert work_drain(kind=WorkKind.ACCESS) == 1
    memory.refresh_from_db()
    assert memory.access_count == 1
    assert memory.last_accessed.isoformat().replace("+00:00", "Z") == hit["lastAccessed"]
    assert not BackgroundWork.objects.filter(kind=WorkKind.ACCESS).exists()


def test_hits_count_the_accesses_still_waiting_for_the_drain(post_json, fake_embedder):
    [memory] = make_memories([{"content": "hit", "vector": axis(0), "access_count": 2}])
    fake_embedder.vectors["q"] = axis(0)

    counts = [post_json(QUERY, {"query": "q"}).json()["data"]["memories"][0]["accessCount"] for _ in range(3)]
    last = post_json(QUERY, {"query": "q"}).json()

    assert counts == [3, 4, 5]
    assert last["data"]["memories"][0]["accessCount"] == 6
    assert last["data"]["memories"][0]["tier"] == "thread"  # promoted by the 5th, still waiting
    assert "promotions" not in last["meta"]  # the 5th access reported it, not this one
    assert work_drain(kind=WorkKind.ACCESS) == 4
    memory.refresh_from_db()
    assert (memory.access_count, memory.tier) == (6, Tier.THREAD)
    assert memory.last_accessed.isoformat().replace("+00:00", "Z") == last["data"]["memories"][0]["lastAccessed"]
    assert list(TierPromotion.objects.values_list("from_tier", "to_tier", "reason", "access_count_at_promotion")) == [
        ("active", "thread", "access_threshold", 5)
    ]


def test_the_drain_promotes_as_one_access_at_a_time(post_json, fake_embedder):
    crossing_both, moved_up_by_hand = make_memories(
        [
            {"content": "a", "vector": axis(0), "access_count": 3},
            {"content": "b", "vector": axis(0, 1, 0.1), "access_count": 3, "tier": Tier.STABLE},
        ]
    )
    fake_embedder.vectors["q"] = axis(0)

    shown = [post_json(QUERY, {"query": "q"}).json() for _ in range(18)]

    promotions = [p for response in shown for p in response["meta"].get("promotions", [])]
    assert promotions == [
        {"memoryId": str(crossing_both.id), "fromTier": "active", "toTier": "thread"},
        {"memoryId": str(crossing_both.id), "fromTier": "thread", "toTier": "stable"},
    ]
    assert work_drain(kind=WorkKind.ACCESS) == 18  # one batch for all
    crossing_both.refresh_from_db()
    moved_up_by_hand.refresh_from_db()
    assert (crossing_both.access_count, crossing_both.tier) == (21, Tier.STABLE)
    assert (moved_up_by_hand.access_count, moved_up_by_hand.tier) == (21, Tier.STABLE)
    audit = TierPromotion.objects.order_by("access_count_at_promotion")
    assert [(p.memory_id, p.from_tier, p.to_tier, p.access_count_at_promotion) for p in audit] == [
        (crossing_both.id, "active", "thread", 5),
        (crossing_both.id, "thread", "stable", 20),
    ]


def test_a_configured_query_increment_raises_phi_up_to_its_cap(post_json, fake_embedder, settings):
    settings.ANIMA_QUERY_PHI_INCREMENT = 0.1
    make_memories([{"content": "hit", "vector": axis(0), "resonance_phi": 4.95}])
    fake_embedder.vectors["q"] = axis(0)

    hit = post_json(QUERY, {"query": "q"}).json()["data"]["memories"][0]

    assert hit["resonancePhi"] == pytest.approx(5.0)


def _statement_kinds(captured) -> list[str]:
    kinds = []
    for query in captured:
        sql = query["sql"].lstrip()
        if sql.startswith("WITH target AS"):
            kinds.append("UPDATE memories_memory … RETURNING")
        elif sql.startswith("INSERT INTO"):
            kinds.append("INSERT " + sql.split()[2].strip('"'))
        else:
            kinds.append(sql.split()[0])
    return kinds


def test_access_effects_are_a_constant_number_of_statements(django_assert_num_queries, fake_embedder):
    few = make_memories([{"content": f"a{i}", "vector": axis(0)} for i in range(2)])
    many = make_memories([{"content": f"b{i}", "vector": axis(0), "access_count": 4} for i in range(40)])

    with django_assert_num_queries(1) as few_queries:
        memories_record_access(namespace="default", memory_ids=[m.id for m in few])
    with django_assert_num_queries(1) as many_queries:
        result = memories_record_access(namespace="default", memory_ids=[m.id for m in many])

    assert len(result.promotions) == 40
    # One statement each: the UPDATE, with the access rows and the promotions' audit rows
    # as CTEs of it.
    assert _statement_kinds(few_queries.captured_queries) == ["UPDATE memories_memory … RETURNING"]
    assert _statement_kinds(many_queries.captured_queries) == ["UPDATE memories_memory … RETURNING"]
    assert MemoryAccess.objects.filter(memory__in=few + many).count() == 42
    audit = TierPromotion.objects.filter(memory__in=many)
    assert audit.count() == 40
    assert {(p.from_tier, p.to_tier, p.reason, p.access_count_at_promotion) for p in audit} == {
        ("active", "thread", "access_threshold", 5)
    }
    sql = " ".join(q["sql"] for q in few_queries.captured_queries + many_queries.captured_queries)
    assert "memories_memoryembedding" not in sql


def _embedding_row_versions():
    with connection.cursor() as cursor:
        cursor.execute("SELECT memory_id, ctid::text, xmin::text FROM memories_memoryembedding ORDER BY memory_id")
        return cursor.fetchall()


def _embedding_table_stats():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT n_tup_ins, n_tup_upd, n_tup_del, n_tup_hot_upd FROM pg_stat_user_tables "
            "WHERE relname = 'memories_memoryembedding'"
        )
        return cursor.fetchone()


@pytest.mark.django_db(transaction=True)
def test_queries_leave_the_embedding_table_untouched(post_json, fake_embedder):
    make_memories([{"content": f"m{i}", "vector": axis(0, 1 + i, 0.3), "resonance_phi": 1.5} for i in range(30)])
    fake_embedder.vectors["q"] = axis(0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
    connection.close()  # flushes this backend's pending table statistics
    versions_before, stats_before = _embedding_row_versions(), _embedding_table_stats()
    counters_before = dict(Memory.objects.values_list("id", "access_count"))

    for i in range(50):
        assert post_json(QUERY, {"query": "q", "limit": 5 + i % 10, "conversationId": f"c{i}"}).status_code == 200

    connection.close()
    assert _embedding_row_versions() == versions_before
    assert _embedding_table_stats() == stats_before
    touched = Memory.objects.filter(access_count__gt=0)
    assert touched.exists()
    assert all(m.access_count > counters_before[m.id] for m in touched)


def test_crossing_five_and_twenty_promotes_one_step_each_with_audit(fake_embedder):
    [memory] = make_memories([{"content": "m", "vector": axis(0)}])

    for _ in range(4):
        memories_record_access(namespace="default", memory_ids=[memory.id])
    memory.refresh_from_db()
    assert memory.tier == Tier.ACTIVE
    assert TierPromotion.objects.count() == 0

    promotions = memories_record_access(namespace="default", memory_ids=[memory.id]).promotions  # 5th
    assert [(p.from_tier, p.to_tier) for p in promotions] == [("active", "thread")]
    for _ in range(14):
        assert memories_record_access(namespace="default", memory_ids=[memory.id]).promotions == []
    promotions = memories_record_access(namespace="default", memory_ids=[memory.id]).promotions  # 20th
    assert [(p.from_tier, p.to_tier) for p in promotions] == [("thread", "stable")]
    for _ in range(5):
        memories_record_access(namespace="default", memory_ids=[memory.id])

    memory.refresh_from_db()
    assert memory.tier == Tier.STABLE
    audit = list(TierPromotion.objects.order_by("created_at").values_list("from_tier", "to_tier", "reason", "access_count_at_promotion"))
    assert audit == [("active", "thread", "access_threshold", 5), ("thread", "stable", "access_threshold", 20)]


def test_memory_moved_down_by_hand_stays_on_its_next_access(post_json, fake_embedder):
    [memory] = make_memories([{"content": "m", "vector": axis(0), "tier": Tier.ACTIVE, "access_count": 25}])
    fake_embedder.vectors["q"] = axis(0)

    response = post_json(QUERY, {"query": "q"})

    assert response.json()["data"]["memories"][0]["tier"] == "active"
    assert "promotions" not in response.json()["meta"]
    assert TierPromotion.objects.count() == 0


def test_memory_moved_up_by_hand_is_not_moved_by_the_threshold(fake_embedder):
    [memory] = make_memories([{"content": "m", "vector": axis(0), "tier": Tier.STABLE, "access_count": 4}])

    result = memories_record_access(namespace="default", memory_ids=[memory.id])

    assert result.promotions == []
    memory.refresh_from_db()
    assert memory.tier == Tier.STABLE


def test_query_reports_promotions(post_json, fake_embedder):
    [memory] = make_memories([{"content": "m", "vector": axis(0), "access_count": 4}])
    fake_embedder.vectors["q"] = axis(0)

    meta = post_json(QUERY, {"query": "q"}).json()["meta"]

    assert meta["promotions"] == [{"memoryId": str(memory.id), "fromTier": "active", "toTier": "thread"}]
    assert meta["queryTime"] >= 0


def test_deleted_memories_are_never_returned(post_json, fake_embedder):
    from django.utils import timezone

    make_memories([{"content": "gone", "vector": axis(0), "deleted_at": timezone.now()}])
    fake_embedder.vectors["q"] = axis(0)

    assert contents(post_json(QUERY, {"query": "q"})) == []


def test_other_namespaces_are_never_returned(post_json, fake_embedder):
    make_memories([{"content": "elsewhere", "vector": axis(0)}], namespace="other")
    fake_embedder.vectors["q"] = axis(0)

    assert contents(post_json(QUERY, {"query": "q"})) == []


def test_hybrid_finds_a_word_match_the_vectors_miss(post_json, fake_embedder):
    make_memories(
        [
            {"content": "The invoice number is ZX-4471.", "vector": axis(5)},  # text match, vector far away
            {"content": "Something semantically close.", "vector": axis(0, 1, 0.3)},
            {"content": "Unrelated and far.", "vector": axis(7)},
        ]
    )
    fake_embedder.vectors["invoice ZX-4471"] = axis(0)

    hybrid = post_json(QUERY, {"query": "invoice ZX-4471", "mode": "hybrid"})
    semantic = post_json(QUERY, {"query": "invoice ZX-4471", "mode": "semantic"})

    assert contents(semantic) == ["Something semantically close."]
    assert contents(hybrid) == ["Something semantically close.", "The invoice number is ZX-4471."]
    close, invoice = hybrid.json()["data"]["memories"]
    assert close["textScore"] == 0
    assert invoice["textScore"] > 0
    # relevance = 0.7 × similarity + 0.3 × text / text_max; φ is 0 for both.
    assert close["structuralWeight"] == pytest.approx(0.7 * np.sqrt(1 - 0.3**2), abs=1e-4)
    assert invoice["structuralWeight"] == pytest.approx(0.3, abs=1e-4)


def test_hybrid_is_the_default_mode(post_json, fake_embedder):
    make_memories([{"content": "The invoice number is ZX-4471.", "vector": axis(5)}])
    fake_embedder.vectors["invoice ZX-4471"] = axis(0)

    assert contents(post_json(QUERY, {"query": "invoice ZX-4471"})) == ["The invoice number is ZX-4471."]


def test_hybrid_matches_any_word_of_the_question_not_all(post_json, fake_embedder):
    make_memories([{"content": "Melanie painted a sunrise over the lake.", "vector": axis(5)}])
    fake_embedder.vectors["When did Melanie paint the sunset at the beach?"] = axis(0)

    hits = post_json(QUERY, {"query": "When did Melanie paint the sunset at the beach?"}).json()["data"]["memories"]

    assert [hit["content"] for hit in hits] == ["Melanie painted a sunrise over the lake."]


def test_query_finds_meaning_with_the_real_model(post_json):
    for text in ["Dana is allergic to peanuts.", "The staging server runs Debian 12.", "Alice prefers morning meetings."]:
        post_json(ADD, {"content": text})

    response = post_json(QUERY, {"query": "Which food must Dana avoid?", "limit": 1})

    assert contents(response) == ["Dana is allergic to peanuts."]


def _pool_ids(candidate_search, terms):
    return [(c.memory_id, round(c.similarity, 6), c.text_score) for c in search.vector_pool(search=candidate_search, size=3, terms=terms)]


def test_the_default_pool_statement_is_compiled_once_and_answers_as_the_queryset_does(django_assert_num_queries):
    # Axis 300, which no other test uses: the suite's rolled-back rows leave dead HNSW
    # entries around axis 0, and a walk they cut short adds the exact scan's statement.
    make_memories([{"content": f"walk the dog {i}", "vector": axis(300, 301 + i, 0.1 * (i + 1))} for i in range(5)])
    terms = search.TextTerms(lexemes=["dog"], idfs=[1.5], matched=["dog"])
    candidate_search = search.CandidateSearch(namespace="default", vector=axis(300), model_id=settings.ANIMA_EMBEDDING_MODEL)
    search._POOL_STATEMENTS.clear()

    first = _pool_ids(candidate_search, terms)
    with django_assert_num_queries(1) as again:
        second = _pool_ids(candidate_search, terms)

    expected = [
        (memory_id, round(1.0 - distance, 6), text_score)
        for memory_id, distance, _, _, _, text_score in search.candidate_pool_queryset(search=candidate_search, size=3, terms=terms)
    ]
    assert first == second == expected
    assert [c.text_score for c in search.vector_pool(search=candidate_search, size=3, terms=terms)] == [1.5] * 3
    assert search._POOL_STATEMENTS.shapes() == [(3, 1)]
    assert again.captured_queries[0]["sql"].startswith('SELECT "memories_memoryembedding"."memory_id"')


def test_a_filtered_pool_is_not_compiled_ahead():
    make_memories([{"content": "tagged", "vector": axis(0), "tags": ["x"]}, {"content": "plain", "vector": axis(0, 1, 0.2)}])
    filtered = search.CandidateSearch(
        namespace="default", vector=axis(0), model_id=settings.ANIMA_EMBEDDING_MODEL, filters=MemoryFilters(tags=["x"])
    )
    search._POOL_STATEMENTS.clear()

    pool = search.vector_pool(search=filtered, size=5)

    assert [c.memory_id for c in pool] == list(Memory.objects.filter(content="tagged").values_list("id", flat=True))
    assert search._POOL_STATEMENTS.shapes() == []


def test_a_default_query_reads_and_writes_in_three_statements(post_json, fake_embedder, settings):
    # A full pool (limit 3 → 12 rows): a namespace smaller than the pool adds the exact scan.
    settings.ANIMA_QUERY_POOL_MIN = 1
    # Axis 310, which no other test uses (dead HNSW entries of the suite's rolled-back rows
    # lie around axis 0; a walk they cut short adds the exact scan's statement).
    make_memories([{"content": f"note {i}", "vector": axis(310, 311, 0.05 * i)} for i in range(12)])
    # No word of the question is in a memory: no text pool (a question with one adds a statement).
    fake_embedder.vectors["anything else?"] = axis(310)
    body = {"query": "anything else?", "conversationId": "c1", "limit": 3}
    post_json(QUERY, body)  # the session's first

    with CaptureQueriesContext(connection) as captured:
        response = post_json(QUERY, body)

    statements = [q["sql"].split()[:2] for q in captured.captured_queries]
    assert response.status_code == 200
    assert len(response.json()["data"]["memories"]) == 3
    assert statements == [
        ["SELECT", '"meta_apikey"."id"'],  # the request's API key
        ["SELECT", "token"],  # the namespace's cache generation (the embedding is cached)
        ["SELECT", '"memories_memoryembedding"."memory_id"'],  # the vector pool (HNSW)
        ["WITH", "seen"],  # the hits as after the access, its rows and the query's background work
    ]
    assert sorted(BackgroundWork.objects.values_list("kind", flat=True)) == [
        "access", "access", "catalyst", "catalyst", "cooccurrence", "cooccurrence"
    ]
    assert MemoryAccess.objects.count() == 6


class _Rollback(Exception):
    pass


def test_a_pool_cut_short_by_dead_index_entries_is_made_exactly(settings):
    """HNSW keeps the entries of deleted and rolled-back rows until VACUUM. With more of
    them nearer the vector than ef_search and hnsw.max_scan_tuples reach, the walk gives up
    before the live rows: the pool is then made by an exact scan, never left short."""
    settings.ANIMA_HNSW_EF_SEARCH = 10
    settings.ANIMA_HNSW_MAX_SCAN_TUPLES = 20
    with connection.cursor() as cursor:
        # Keep (auto)vacuum, which would clear the dead entries, off the table until the
        # test's rollback: its lock conflicts with this one, not with inserts.
        cursor.execute("LOCK TABLE memories_memoryembedding IN SHARE UPDATE EXCLUSIVE MODE")
    with pytest.raises(_Rollback), transaction.atomic():
        make_memories([{"content": f"gone {i}", "vector": axis(0, 1, 0.001 * (i + 1))} for i in range(200)])
        raise _Rollback
    live = make_memories([{"content": f"live {i}", "vector": axis(0, 2, 0.3 + 0.1 * i)} for i in range(3)])
    candidate_search = search.CandidateSearch(namespace="default", vector=axis(0), model_id=settings.ANIMA_EMBEDDING_MODEL)

    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_sort = off")  # the graph walk, as in a large table
        search.configure_hnsw(10)
        walked = search.candidate_pool_queryset(search=candidate_search, size=10)
        assert "embedding_hnsw_cosine" in walked.explain()
        assert len(list(walked)) < len(live)  # the walk alone falls short
        pool = search.vector_pool(search=candidate_search, size=10)

    assert [c.memory_id for c in pool] == [m.pk for m in live]


def test_a_hit_is_the_hybrid_hit_output_of_the_memory_as_after_the_access(post_json, fake_embedder):
    """A query's memories are written by PostgreSQL (``memory_output_sql``); each must be
    ``HybridHitOutput`` of the memory once the drain has counted the access."""
    from datetime import datetime, timezone as dt_timezone

    from memories.selectors.memories import memory_output_queryset
    from memories.serializers.recall import HybridHitOutput
    from memories.services.querying import QueryHit

    made = make_memories(
        [
            {"content": "walk the dog at noon", "vector": axis(0, 1, 0.2), "tags": ["pets"], "metadata": {"w": [1, {"x": None}]},
             "occurred_at": datetime(2026, 1, 31, tzinfo=dt_timezone.utc), "resonance_phi": 1.25, "access_count": 4},
            {"content": "something else", "vector": axis(0, 2, 0.4), "category": "misc", "source": "cli"},
        ]
    )
    fake_embedder.vectors["walk the dog"] = axis(0)

    answer = post_json(QUERY, {"query": "walk the dog", "similarityThreshold": 0}).json()["data"]["memories"]
    work_drain(kind=WorkKind.ACCESS)

    assert [m["content"] for m in answer] == ["walk the dog at noon", "something else"]
    stored = {m.pk: m for m in memory_output_queryset().filter(pk__in=[m.pk for m in made])}
    for shown in answer:
        hit = QueryHit(
            memory=stored[uuid.UUID(shown["id"])],
            similarity=shown["similarity"],
            relevance=shown["relevance"],
            weight=shown["structuralWeight"],
            text_score=shown.get("textScore"),
            embedding_truncated=shown["embeddingTruncated"],
        )
        assert list(shown.items()) == list(HybridHitOutput(hit).data.items())
    assert answer[0]["tier"] == "thread" and answer[0]["accessCount"] == 5
