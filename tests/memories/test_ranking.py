"""The query uses the HNSW index and still ranks exactly by structural weight.

3,000 memories in 10 clusters (synthetic clustered unit vectors from the named fake
embedder, so that similarities spread over 0.3–0.8), 5 % of them resonant (φ in [3, 5]):
a high-φ memory well outside the 100-row candidate pool often belongs in the top 20.
Another 10 % have φ in [0.6, 1) — below the resonant graph, in the band the φ index
serves — and the rest φ in [0, 0.3].
"""

import numpy as np
import pytest
from django.db import connection, transaction

from memories.models import Memory, MemoryAccess, MemoryEmbedding, TierPromotion
from memories.services import querying
from memories.services.resonance import resonance_sync
from tests.factories import make_memories

DIM = 384
CLUSTERS = 10
PER_CLUSTER = 300
QUERIES = 50
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
            draw = rng.random()
            phi = rng.uniform(3, 5) if draw < 0.05 else rng.uniform(0.6, 1) if draw < 0.15 else rng.uniform(0, 0.3)
            specs.append({"content": f"memory {cluster}-{i}", "vector": vector, "resonance_phi": float(phi)})
    queries = [_unit(centers[q % CLUSTERS] + 0.3 * _unit(rng.standard_normal(DIM))) for q in range(QUERIES)]
    with django_db_blocker.unblock():
        make_memories(specs)
        resonance_sync()  # the resonant ones into their graph (test_resonant.py: while they lag)
        with connection.cursor() as cursor:
            # Earlier tests of the session inserted and deleted thousands of vectors. VACUUM
            # frees their entries but not the pages they grew the HNSW index by, and the
            # planner costs the graph walk by those pages: on a bloated index it picks a seq
            # scan + sort for 3,000 rows (CI saw this). Rebuild it so it holds this corpus only.
            cursor.execute("VACUUM ANALYZE memories_memory")
            cursor.execute("REINDEX INDEX embedding_hnsw_cosine")
            cursor.execute("REINDEX INDEX embedding_hnsw_resonant")
            cursor.execute("VACUUM ANALYZE memories_memoryembedding")
    yield queries
    with django_db_blocker.unblock():
        for model in (MemoryAccess, TierPromotion, MemoryEmbedding, Memory):
            model.objects.all().delete()


def brute_force_top(vector, limit=LIMIT, threshold=THRESHOLD, namespace="default") -> list:
    """Every memory of the namespace ranked by structural weight: a full scan, on purpose."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT m.id FROM memories_memory m JOIN memories_memoryembedding e ON e.memory_id = m.id
            WHERE m.namespace = %s AND m.deleted_at IS NULL AND 1 - (e.embedding <=> %s::vector) >= %s
            ORDER BY (1 - (e.embedding <=> %s::vector)) * 0.7 + m.resonance_phi / 5 * 0.3 DESC,
                     m.resonance_phi DESC, m.id
            LIMIT %s
            """,
            [namespace, str(vector.tolist()), threshold, str(vector.tolist()), limit],
        )
        return [str(row[0]) for row in cursor.fetchall()]


def _api_top(post_json, fake_embedder, q, vector):
    fake_embedder.vectors[f"query {q}"] = vector
    response = post_json("/api/v1/memories/query", {"query": f"query {q}", "limit": LIMIT})
    return [m["id"] for m in response.json()["data"]["memories"]]


@pytest.mark.django_db
def _counting(monkeypatch, name) -> list[int]:
    found_counts = []
    original = getattr(querying, name)

    def counting(**kwargs):
        found = original(**kwargs)
        found_counts.append(len(found or []))
        return found

    monkeypatch.setattr(querying, name, counting)
    return found_counts


@pytest.mark.django_db
def test_top_twenty_agrees_with_a_full_scan_ranking(corpus, post_json, fake_embedder, monkeypatch):
    resonant_found = _counting(monkeypatch, "_resonant_outsiders")
    overlaps = []
    for q, vector in enumerate(corpus):
        expected = brute_force_top(vector)
        actual = _api_top(post_json, fake_embedder, q, vector)
        overlaps.append(len(set(expected) & set(actual)) / len(expected))

    assert np.mean(overlaps) >= 0.99
    assert sum(resonant_found) > 0  # the resonant graph was needed, not just present


@pytest.mark.django_db
def test_a_search_that_reaches_its_cap_ranks_the_resonant_memories_in_sql(corpus, post_json, fake_embedder, monkeypatch):
    # The first fetch is the cap: 10 rows, where the stop rule seldom holds yet.
    monkeypatch.setattr(querying, "RESONANT_FETCH_FACTOR", 0.5)
    monkeypatch.setattr(querying, "RESONANT_FETCH_MAX", LIMIT // 2)
    heaviest = _counting(monkeypatch, "_heaviest_resonant")
    overlaps = []
    for q, vector in enumerate(corpus[:20]):
        expected = brute_force_top(vector)
        actual = _api_top(post_json, fake_embedder, q, vector)
        overlaps.append(len(set(expected) & set(actual)) / len(expected))

    assert np.mean(overlaps) >= 0.99
    assert len(heaviest) > 0


@pytest.mark.django_db
def test_without_the_phi_bound_the_pool_alone_misses_resonant_memories(corpus, post_json, fake_embedder, monkeypatch):
    """The control: the same data without the φ-bound step ranks visibly worse."""
    monkeypatch.setattr(querying, "_best_high_phi_outsiders", lambda **kwargs: [])
    monkeypatch.setattr(querying, "_resonant_outsiders", lambda **kwargs: [])
    overlaps = []
    for q, vector in enumerate(corpus[:10]):
        expected = brute_force_top(vector)
        actual = _api_top(post_json, fake_embedder, q, vector)
        overlaps.append(len(set(expected) & set(actual)) / len(expected))

    assert np.mean(overlaps) < 0.95


@pytest.fixture
def warm_band(db):
    """One tight cluster: 380 memories with φ in [0, 0.3], and 20 a little further from
    its centre with φ in [0.8, 1) — below the resonant graph, yet heavy enough for the top
    20 though outside the 100 nearest."""
    rng = np.random.default_rng(7)
    center = _unit(rng.standard_normal(DIM))
    specs = []
    for i in range(400):
        warm = i % 20 == 0
        vector = _unit(center + (0.55 if warm else 0.45) * _unit(rng.standard_normal(DIM)))
        phi = rng.uniform(0.8, 1.0) if warm else rng.uniform(0, 0.3)
        specs.append({"content": f"band {i}", "vector": vector, "resonance_phi": float(phi)})
    make_memories(specs, namespace="band")
    return [_unit(center + 0.2 * _unit(rng.standard_normal(DIM))) for _ in range(5)]


def _band_overlaps(queries, fake_embedder) -> list[float]:
    overlaps = []
    for q, vector in enumerate(queries):
        fake_embedder.vectors[f"band query {q}"] = vector
        expected = brute_force_top(vector, namespace="band")
        result = querying.memory_query(namespace="band", query=f"band query {q}", limit=LIMIT)
        actual = {str(memory.id) for memory, _ in result.hits}
        overlaps.append(len(set(expected) & actual) / len(expected))
    return overlaps


def test_memories_in_the_band_below_the_resonant_graph_are_ranked_exactly(warm_band, fake_embedder, monkeypatch):
    band_found = _counting(monkeypatch, "_best_high_phi_outsiders")

    overlaps = _band_overlaps(warm_band, fake_embedder)

    assert np.mean(overlaps) >= 0.99
    assert sum(band_found) > 0


def test_without_the_band_its_memories_are_missed(warm_band, fake_embedder, monkeypatch):
    monkeypatch.setattr(querying, "_best_high_phi_outsiders", lambda **kwargs: [])

    assert np.mean(_band_overlaps(warm_band, fake_embedder)) < 0.9


@pytest.mark.django_db
@pytest.mark.parametrize(
    "filters",
    [
        querying.QueryFilters(),
        querying.QueryFilters(tiers=["active", "thread"]),
    ],
    ids=["no-filter", "tiers"],
)
def test_candidate_pool_plan_uses_the_hnsw_index(corpus, settings, filters):
    plan = _pool_plan(corpus[0], settings.ANIMA_EMBEDDING_MODEL, filters)

    assert "embedding_hnsw_cosine" in plan
    assert "Seq Scan" not in plan


@pytest.mark.django_db
def test_resonant_outsiders_are_read_through_the_resonant_graph(corpus, settings):
    with transaction.atomic():
        querying._configure_hnsw(40)
        plan = querying.resonant_queryset(
            namespace="default",
            vector=corpus[0],
            model_id=settings.ANIMA_EMBEDDING_MODEL,
            filters=querying.QueryFilters(),
        )[:40].explain()

    assert "embedding_hnsw_resonant" in plan
    assert "Seq Scan" not in plan


@pytest.mark.django_db
def test_a_filter_matching_few_rows_reads_only_those(corpus, settings):
    """No memory has this category/tag: PostgreSQL rightly prefers the tag index to the graph."""
    plan = _pool_plan(corpus[0], settings.ANIMA_EMBEDDING_MODEL, querying.QueryFilters(category="work", tags=["x"]))

    assert "Seq Scan" not in plan


def _pool_plan(vector, model_id, filters) -> str:
    with transaction.atomic():
        querying._configure_hnsw(100)
        return querying.candidate_pool_queryset(
            namespace="default", vector=vector, model_id=model_id, filters=filters, size=100
        ).explain()
