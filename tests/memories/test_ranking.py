"""The query uses the HNSW index and still ranks exactly by structural weight.

3,000 memories in 10 clusters (synthetic clustered unit vectors from the named fake
embedder, so that similarities spread over 0.3–0.8), 5 % of them with φ in [3, 5]: a
high-φ memory well outside the 100-row candidate pool often belongs in the top 20.
"""

import numpy as np
import pytest
from django.db import connection, transaction

from memories.models import Memory, MemoryAccess, MemoryEmbedding, TierPromotion
from memories.services import querying
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
            resonant = rng.random() < 0.05
            phi = rng.uniform(3, 5) if resonant else rng.uniform(0, 1)
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


def brute_force_top(vector, limit=LIMIT, threshold=THRESHOLD) -> list:
    """Every memory of the namespace ranked by structural weight: a full scan, on purpose."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT m.id FROM memories_memory m JOIN memories_memoryembedding e ON e.memory_id = m.id
            WHERE m.namespace = 'default' AND m.deleted_at IS NULL AND 1 - (e.embedding <=> %s::vector) >= %s
            ORDER BY (1 - (e.embedding <=> %s::vector)) * 0.7 + m.resonance_phi / 5 * 0.3 DESC,
                     m.resonance_phi DESC, m.id
            LIMIT %s
            """,
            [str(vector.tolist()), threshold, str(vector.tolist()), limit],
        )
        return [str(row[0]) for row in cursor.fetchall()]


def _api_top(post_json, fake_embedder, q, vector):
    fake_embedder.vectors[f"query {q}"] = vector
    response = post_json("/api/v1/memories/query", {"query": f"query {q}", "limit": LIMIT})
    return [m["id"] for m in response.json()["data"]["memories"]]


@pytest.mark.django_db
def test_top_twenty_agrees_with_a_full_scan_ranking(corpus, post_json, fake_embedder, monkeypatch):
    outsiders_found = []
    original = querying._best_high_phi_outsiders

    def counting(**kwargs):
        found = original(**kwargs)
        outsiders_found.append(len(found))
        return found

    monkeypatch.setattr(querying, "_best_high_phi_outsiders", counting)
    overlaps = []
    for q, vector in enumerate(corpus):
        expected = brute_force_top(vector)
        actual = _api_top(post_json, fake_embedder, q, vector)
        overlaps.append(len(set(expected) & set(actual)) / len(expected))

    assert np.mean(overlaps) >= 0.99
    assert sum(outsiders_found) > 0  # the φ bound was needed, not just present


@pytest.mark.django_db
def test_without_the_phi_bound_the_pool_alone_misses_resonant_memories(corpus, post_json, fake_embedder, monkeypatch):
    """The control: the same data without the φ-bound step ranks visibly worse."""
    monkeypatch.setattr(querying, "_best_high_phi_outsiders", lambda **kwargs: [])
    overlaps = []
    for q, vector in enumerate(corpus[:10]):
        expected = brute_force_top(vector)
        actual = _api_top(post_json, fake_embedder, q, vector)
        overlaps.append(len(set(expected) & set(actual)) / len(expected))

    assert np.mean(overlaps) < 0.95


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
