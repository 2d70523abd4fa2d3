"""The ranking rule of ``memories.ranking``: relevance first, a bounded resonance bonus, and
a query that uses the HNSW index yet ranks exactly.

The corpus: 3,000 memories in 10 clusters (synthetic clustered unit vectors from the named
fake embedder, similarities spread over 0.3–0.8), 5 % with φ in [3, 5] and the rest in
[0, 1]. A second, tight cluster puts 400 memories within a few hundredths of each other,
where a high-φ memory outside the first pool can still belong in the top 20.
"""

import numpy as np
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from memories import ranking, search
from memories.filters import MemoryFilters
from memories.models import Memory, MemoryAccess, MemoryEmbedding, TierPromotion
from memories.services import querying
from tests.api_paths import FEEDBACK, QUERY
from tests.factories import DIM, make_memories

CLUSTERS = 10
PER_CLUSTER = 300
QUERIES = 40
LIMIT = 20
THRESHOLD = 0.3


def _unit(vector):
    return vector / np.linalg.norm(vector)


@pytest.fixture(scope="module")
def corpus(django_db_setup, django_db_blocker):
    rng = np.random.default_rng(2026)
    centers = [_unit(rng.standard_normal(DIM)) for _ in range(CLUSTERS)]
    specs = []
    for cluster, center in enumerate(centers):
        for i in range(PER_CLUSTER):
            weight = rng.uniform(0.3, 1.5)
            vector = _unit(center * weight + _unit(rng.standard_normal(DIM)))
            phi = rng.uniform(3, 5) if rng.random() < 0.05 else rng.uniform(0, 1)
            specs.append({"content": f"memory {cluster}-{i}", "vector": vector, "resonance_phi": float(phi)})
    queries = [_unit(centers[q % CLUSTERS] + 0.3 * _unit(rng.standard_normal(DIM))) for q in range(QUERIES)]
    with django_db_blocker.unblock():
        make_memories(specs)
        with connection.cursor() as cursor:
            # Earlier tests of the session inserted and deleted thousands of vectors. VACUUM
            # frees their entries but not the pages they grew the HNSW index by, and the
            # planner costs the graph walk by those pages: on a bloated index it picks a seq
            # scan + sort for 3,000 rows (CI saw this). Rebuild it so it holds this corpus only.
            cursor.execute("VACUUM ANALYZE memories_memory")
            cursor.execute("REINDEX INDEX embedding_hnsw_cosine")
            cursor.execute("VACUUM ANALYZE memories_memoryembedding")
    yield queries
    with django_db_blocker.unblock():
        for model in (MemoryAccess, TierPromotion, MemoryEmbedding, Memory):
            model.objects.all().delete()


def brute_force_top(vector, limit=LIMIT, threshold=THRESHOLD, namespace="default") -> list:
    """Every memory of the namespace ranked by the semantic weight: a full scan, on purpose."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT m.id FROM memories_memory m JOIN memories_memoryembedding e ON e.memory_id = m.id
            WHERE m.namespace = %s AND m.deleted_at IS NULL AND 1 - (e.embedding <=> %s::vector) >= %s
            ORDER BY (1 - (e.embedding <=> %s::vector)) + m.resonance_phi / 5 * %s DESC, m.resonance_phi DESC, m.id
            LIMIT %s
            """,
            [namespace, str(vector.tolist()), threshold, str(vector.tolist()), ranking.PHI_BONUS_MAX, limit],
        )
        return [str(row[0]) for row in cursor.fetchall()]


def _api_top(post_json, fake_embedder, q, vector, namespace_query=""):
    text = f"query {namespace_query}{q}"
    fake_embedder.vectors[text] = vector
    response = post_json(QUERY, {"query": text, "limit": LIMIT, "mode": "semantic"})
    return [m["id"] for m in response.json()["data"]["memories"]]


def _recording(monkeypatch, name) -> list:
    calls = []
    original = getattr(search, name)

    def recording(**kwargs):
        calls.append(kwargs)
        return original(**kwargs)

    monkeypatch.setattr(search, name, recording)
    return calls


def _overlap(expected, actual) -> float:
    return len(set(expected) & set(actual)) / len(expected)


# --- the formula -----------------------------------------------------------------------------


def test_resonance_adds_at_most_its_documented_bound():
    assert ranking.structural_weight(0.5, 5.0) == pytest.approx(0.5 + ranking.PHI_BONUS_MAX)
    assert ranking.structural_weight(0.5, 0.0) == pytest.approx(0.5)
    assert ranking.structural_weight(0.5, 99.0) == pytest.approx(0.5 + ranking.PHI_BONUS_MAX)  # φ is capped


def test_a_clearly_more_relevant_memory_always_outweighs_any_phi():
    assert ranking.structural_weight(0.56, 0.0) > ranking.structural_weight(0.5, ranking.PHI_MAX)


def test_hybrid_relevance_is_a_share_of_similarity_and_normalised_text_score():
    assert ranking.hybrid_relevance(0.5, 3.0, 6.0) == pytest.approx(0.7 * 0.5 + 0.3 * 0.5)
    assert ranking.hybrid_relevance(0.5, 0.0, 0.0) == pytest.approx(0.35)


# --- exactness --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_top_twenty_agrees_with_a_full_scan_ranking(corpus, post_json, fake_embedder):
    overlaps = [_overlap(brute_force_top(v), _api_top(post_json, fake_embedder, q, v)) for q, v in enumerate(corpus)]

    assert np.mean(overlaps) >= 0.99


@pytest.fixture
def tight_cluster(db):
    """400 memories within a few hundredths of similarity of each other: 380 with φ 0, and
    20 a little further from the centre with φ 5 — outside the 100 nearest, yet heavy
    enough for the top 20 by their bonus."""
    rng = np.random.default_rng(7)
    center = _unit(rng.standard_normal(DIM))
    specs = []
    for i in range(400):
        resonant = i % 20 == 0
        vector = _unit(center + (0.50 if resonant else 0.47) * _unit(rng.standard_normal(DIM)))
        specs.append({"content": f"tight {i}", "vector": vector, "resonance_phi": 5.0 if resonant else 0.0})
    make_memories(specs, namespace="tight")
    return [_unit(center + 0.2 * _unit(rng.standard_normal(DIM))) for _ in range(5)]


def _tight_overlaps(queries, fake_embedder) -> list[float]:
    overlaps = []
    for q, vector in enumerate(queries):
        fake_embedder.vectors[f"tight query {q}"] = vector
        expected = brute_force_top(vector, namespace="tight")
        result = querying.memory_query(namespace="tight", query=f"tight query {q}", limit=LIMIT, mode="semantic")
        overlaps.append(_overlap(expected, [hit.memory["id"] for hit in result.hits]))
    return overlaps


def test_a_pool_that_is_not_decisive_grows_until_it_is(tight_cluster, fake_embedder, monkeypatch):
    pools = _recording(monkeypatch, "vector_pool")

    overlaps = _tight_overlaps(tight_cluster, fake_embedder)

    assert np.mean(overlaps) >= 0.99
    assert max(call["size"] for call in pools) > 100  # the first pool of 100 was not enough


def test_without_growing_the_pool_resonant_outsiders_are_missed(tight_cluster, fake_embedder, monkeypatch):
    """The control: the same data, the first pool taken as final, ranks visibly worse."""
    monkeypatch.setattr(querying.ranking, "pool_is_decisive", lambda **kwargs: True)

    assert np.mean(_tight_overlaps(tight_cluster, fake_embedder)) < 0.9


def test_past_the_largest_pool_the_outsiders_are_ranked_exactly_in_sql(tight_cluster, fake_embedder, monkeypatch):
    monkeypatch.setattr(querying, "POOL_MAX", 100)
    heaviest = _recording(monkeypatch, "heaviest")

    overlaps = _tight_overlaps(tight_cluster, fake_embedder)

    assert np.mean(overlaps) >= 0.99
    assert heaviest


# --- hybrid ---------------------------------------------------------------------------------------

WORDS = ["apple", "river", "stone", "violin", "garden", "harbor", "lantern", "meadow", "copper", "falcon"]


@pytest.fixture
def worded(db):
    """300 memories of three words each, vectors clustered so that similarity and words disagree."""
    rng = np.random.default_rng(11)
    center = _unit(rng.standard_normal(DIM))
    specs = []
    for i in range(300):
        words = rng.choice(WORDS, size=3, replace=False)
        vector = _unit(center * rng.uniform(0.2, 1.2) + _unit(rng.standard_normal(DIM)))
        phi = float(rng.uniform(0, 5)) if i % 10 == 0 else 0.0
        specs.append({"content": f"note {i}: {' '.join(words)}", "vector": vector, "resonance_phi": phi})
    make_memories(specs, namespace="worded")
    return center


def _hybrid_brute_force(query: str, vector, namespace="worded", threshold=THRESHOLD) -> list[str]:
    """Every memory scored by the ranking module in Python, the text score from SQL per row."""
    terms = search.text_terms(namespace=namespace, query=query, generation="g")
    rows = list(
        Memory.objects.filter(namespace=namespace, deleted_at__isnull=True)
        .annotate(text_score=search.text_score_expression(terms))
        .values_list("id", "text_score", "resonance_phi", "embedding__embedding")
    )
    scored = []
    text_max = max(score for _, score, _, _ in rows)
    for memory_id, text, phi, embedding in rows:
        similarity = float(np.dot(_unit(np.asarray(embedding)), vector))
        if text <= 0 and similarity < threshold:
            continue
        weight = ranking.structural_weight(ranking.hybrid_relevance(similarity, text, text_max), phi)
        scored.append((ranking.rank_key(weight, phi, memory_id), str(memory_id)))
    return [memory_id for _, memory_id in sorted(scored)[:LIMIT]]


def test_hybrid_top_twenty_agrees_with_a_full_scoring_of_the_namespace(worded, fake_embedder, settings):
    settings.ANIMA_QUERY_POOL_MIN = 40  # small pools, so that they must grow at times
    # This namespace is a tenth of the HNSW graph (the module's corpus shares it): a wide
    # graph walk keeps HNSW's own recall out of what this test measures, the fusion.
    settings.ANIMA_HNSW_EF_SEARCH = 1000
    rng = np.random.default_rng(3)
    overlaps = []
    for q in range(10):
        # Numbered: a pair of words drawn twice must not reuse the first one's cached vector.
        query = f"question {q}: which {' '.join(rng.choice(WORDS, size=2, replace=False))} did I see"
        vector = _unit(worded + 0.5 * _unit(rng.standard_normal(DIM)))
        fake_embedder.vectors[query] = vector
        result = querying.memory_query(namespace="worded", query=query, limit=LIMIT)  # hybrid: the default
        actual = [hit.memory["id"] for hit in result.hits]
        overlaps.append(_overlap(_hybrid_brute_force(query, vector), actual))

    assert np.mean(overlaps) >= 0.99


def test_rare_words_count_more_than_common_ones(db, fake_embedder):
    make_memories(
        [{"content": f"a quiet day, number {i}", "vector": np.ones(DIM)} for i in range(40)]
        + [{"content": f"the garden in spring {i}", "vector": np.ones(DIM)} for i in range(5)]
        + [{"content": "a falcon over the garden", "vector": np.ones(DIM)}],
        namespace="words",
    )

    terms = search.text_terms(namespace="words", query="falcon garden", generation="g")
    idf = dict(zip(terms.lexemes, terms.idfs))

    assert idf["falcon"] > idf["garden"]


def test_a_word_in_most_memories_is_left_out_of_the_matching(db):
    make_memories(
        [{"content": f"garden note {i}", "vector": np.ones(DIM)} for i in range(30)]
        + [{"content": "falcon", "vector": np.ones(DIM)}],
        namespace="common",
    )

    terms = search.text_terms(namespace="common", query="falcon in the garden", generation="g")

    assert terms.lexemes == ["falcon"]


def test_a_question_of_only_common_words_still_matches(db):
    make_memories([{"content": f"garden note {i}", "vector": np.ones(DIM)} for i in range(30)], namespace="common")

    terms = search.text_terms(namespace="common", query="garden notes", generation="g")

    assert set(terms.lexemes) == {"garden", "note"}


def test_a_new_question_counts_only_the_words_no_recent_question_had(db):
    make_memories(
        [{"content": f"garden note {i}", "vector": np.ones(DIM)} for i in range(2)]
        + [{"content": f"quiet day {i}", "vector": np.ones(DIM)} for i in range(18)]
        + [{"content": "a falcon over the pond", "vector": np.ones(DIM)}],
        namespace="counted",
    )
    first = search.text_terms(namespace="counted", query="falcon garden", generation="g1")

    with CaptureQueriesContext(connection) as captured:
        second = search.text_terms(namespace="counted", query="garden falcon pond", generation="g1")

    counting = [q["sql"] for q in captured.captured_queries if "count(*)" in q["sql"]]
    assert len(counting) == 1 and "'{pond}'" in counting[0]  # only the new word
    assert dict(zip(second.lexemes, second.idfs))["falcon"] == dict(zip(first.lexemes, first.idfs))["falcon"]
    assert set(second.lexemes) == {"falcon", "garden", "pond"}
    # Another generation (a purge) counts afresh.
    with CaptureQueriesContext(connection) as after_purge:
        search.text_terms(namespace="counted", query="falcon garden", generation="g2")
    assert any("count(*)" in q["sql"] for q in after_purge.captured_queries)


# --- the HNSW index serves the pool -----------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "filters",
    [
        MemoryFilters(),
        MemoryFilters(tiers=["active", "thread"]),
    ],
    ids=["no-filter", "tiers"],
)
def test_candidate_pool_plan_uses_the_hnsw_index(corpus, settings, filters):
    plan = _pool_plan(corpus[0], settings.ANIMA_EMBEDDING_MODEL, filters)

    assert "embedding_hnsw_cosine" in plan
    assert "Seq Scan" not in plan


@pytest.mark.django_db
def test_a_filter_matching_few_rows_reads_only_those(corpus, settings):
    """No memory has this category/tag: PostgreSQL rightly prefers the tag index to the graph."""
    plan = _pool_plan(corpus[0], settings.ANIMA_EMBEDDING_MODEL, MemoryFilters(category="work", tags=["x"]))

    assert "Seq Scan" not in plan


def _pool_plan(vector, model_id, filters) -> str:
    with transaction.atomic():
        search.configure_hnsw(100)
        return search.candidate_pool_queryset(
            search=search.CandidateSearch(namespace="default", vector=vector, model_id=model_id, filters=filters),
            size=100,
        ).explain()


# --- feedback: earned resonance, bounded ---------------------------------------------------------


def _tilted(similarity: float, other_axis: int) -> np.ndarray:
    """A unit vector whose similarity to axis 0 is ``similarity``."""
    vector = np.zeros(DIM, dtype=np.float32)
    vector[0] = similarity
    vector[other_axis] = np.sqrt(1 - similarity**2)
    return vector


def _marked_useful(post_json, memory, times: int) -> None:
    for _ in range(times):
        assert post_json(FEEDBACK, {"memoryIds": [str(memory.id)], "useful": True}).status_code == 200


def _order(post_json, fake_embedder, mode: str) -> list[str]:
    """The two memories' order. The tag filter makes the pool an exact scan of them: two
    axis-aligned vectors among the module's random corpus are a hard case for HNSW recall,
    which is not what these tests are about."""
    fake_embedder.vectors["which one?"] = _tilted(1.0, 1)
    response = post_json(QUERY, {"query": "which one?", "mode": mode, "tags": ["pair"]})
    return [m["content"] for m in response.json()["data"]["memories"]]


@pytest.mark.django_db
@pytest.mark.parametrize("mode", ["semantic", "hybrid"])
def test_a_memory_marked_useful_a_few_times_outranks_a_slightly_more_relevant_one(post_json, fake_embedder, mode):
    _, helpful = make_memories(
        [
            {"content": "slightly more relevant", "vector": _tilted(0.80, 1), "tags": ["pair"]},
            {"content": "proved useful", "vector": _tilted(0.79, 2), "tags": ["pair"]},
        ]
    )
    assert _order(post_json, fake_embedder, mode) == ["slightly more relevant", "proved useful"]

    _marked_useful(post_json, helpful, 3)  # φ 1.5: a bonus of 0.015 > a gap of 0.01

    assert _order(post_json, fake_embedder, mode) == ["proved useful", "slightly more relevant"]


@pytest.mark.django_db
@pytest.mark.parametrize("mode", ["semantic", "hybrid"])
def test_no_amount_of_feedback_lifts_a_memory_over_a_clearly_more_relevant_one(post_json, fake_embedder, mode):
    _, helpful = make_memories(
        [
            {"content": "clearly more relevant", "vector": _tilted(0.90, 1), "tags": ["pair"]},
            {"content": "proved useful", "vector": _tilted(0.80, 2), "tags": ["pair"]},
        ]
    )

    _marked_useful(post_json, helpful, 20)  # φ at its cap, 5: the whole bonus of 0.05

    assert helpful.__class__.objects.get(pk=helpful.pk).resonance_phi == ranking.PHI_MAX
    assert _order(post_json, fake_embedder, mode) == ["clearly more relevant", "proved useful"]
