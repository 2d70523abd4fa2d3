"""Query filters (metadata containment, source, creation and access times, with tiers,
category and tags) and the recency half-life — against the real PostgreSQL, with vectors
from the named fake embedder so that similarities are known."""

import uuid
from datetime import datetime, timedelta, timezone as dt_timezone

import numpy as np
import pytest
from django.db import connection, transaction
from django.utils import timezone

from memories.models import Memory, MemoryEmbedding, TierCount, WorkKind
from memories.services.draining import work_drain
from memories import ranking, search
from memories.filters import MemoryFilters
from tests.api_paths import QUERY
from tests.factories import DIM, axis, make_memories, unit
from tests.responses import bad_fields

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 10, 12, 0, tzinfo=dt_timezone.utc)
DAY = timedelta(days=1)


def at_similarity(similarity: float, other_axis: int = 1) -> np.ndarray:
    """A unit vector whose cosine similarity to axis 0 (the query) is ``similarity``."""
    vector = np.zeros(DIM, dtype=np.float32)
    vector[0] = similarity
    vector[other_axis] = np.sqrt(1 - similarity**2)
    return vector


def contents(response) -> set[str]:
    assert response.status_code == 200, response.json()
    return {m["content"] for m in response.json()["data"]["memories"]}


@pytest.fixture
def varied(fake_embedder):
    """Five memories near the query "q", each filter value on some of them."""
    fake_embedder.vectors["q"] = axis(0)
    specs = [
        {
            "content": "a", "tier": "active", "category": "work", "tags": ["x", "y"], "source": "cli",
            "metadata": {"project": "anima", "owner": {"name": "dana", "team": "core"}, "labels": ["red", "blue"]},
            "created_at": T0, "last_accessed": T0 + 5 * DAY,
        },
        {
            "content": "b", "tier": "thread", "category": "work", "tags": ["x"], "source": "web",
            "metadata": {"project": "anima", "owner": {"name": "lee"}},
            "created_at": T0 + DAY, "last_accessed": T0 + DAY,
        },
        {
            "content": "c", "tier": "stable", "category": "home", "tags": ["y"], "source": "cli",
            "metadata": {"project": "other"},
            "created_at": T0 + 2 * DAY, "last_accessed": T0 + 10 * DAY,
        },
        {
            "content": "d", "tier": "active", "category": "work", "tags": ["x", "y"], "source": "web",
            "metadata": {"project": "anima", "owner": {"name": "dana", "team": "ops"}},
            "created_at": T0 + 3 * DAY, "last_accessed": T0 + 3 * DAY,
        },
        {"content": "e", "tier": "thread", "created_at": T0 + 4 * DAY, "last_accessed": T0 + 4 * DAY},
    ]
    for index, spec in enumerate(specs):
        spec["vector"] = at_similarity(0.95 - 0.05 * index, other_axis=index + 1)
    make_memories(specs)


@pytest.fixture
def query(post_json):
    def run(**body):
        return post_json(QUERY, {"query": "q", **body})

    return run


def test_without_filters_every_memory_comes_back(varied, query):
    assert contents(query()) == {"a", "b", "c", "d", "e"}


def test_metadata_filter_is_containment(varied, query):
    assert contents(query(metadata={"project": "anima"})) == {"a", "b", "d"}


def test_metadata_filter_matches_nested_objects(varied, query):
    assert contents(query(metadata={"owner": {"name": "dana"}})) == {"a", "d"}
    assert contents(query(metadata={"owner": {"name": "dana", "team": "core"}})) == {"a"}
    assert contents(query(metadata={"owner": {"team": "nobody"}})) == set()


def test_metadata_filter_matches_array_members(varied, query):
    assert contents(query(metadata={"labels": ["blue"]})) == {"a"}
    assert contents(query(metadata={"labels": ["blue", "green"]})) == set()


def test_source_filter(varied, query):
    assert contents(query(source="cli")) == {"a", "c"}


def test_created_after_is_inclusive(varied, query):
    assert contents(query(createdAfter=(T0 + 2 * DAY).isoformat())) == {"c", "d", "e"}


def test_created_before_is_exclusive(varied, query):
    assert contents(query(createdBefore=(T0 + 2 * DAY).isoformat())) == {"a", "b"}


def test_created_window(varied, query):
    window = {"createdAfter": (T0 + DAY).isoformat(), "createdBefore": (T0 + 3 * DAY).isoformat()}

    assert contents(query(**window)) == {"b", "c"}


def test_created_filters_honour_offsets(varied, query):
    # 14:00 at +02:00 is 12:00 UTC: the same instant as "c"'s creation.
    assert contents(query(createdAfter="2026-01-12T14:00:00+02:00")) == {"c", "d", "e"}


def test_last_accessed_after_is_inclusive(varied, query):
    assert contents(query(lastAccessedAfter=(T0 + 4 * DAY).isoformat())) == {"a", "c", "e"}


COMBINED = {"metadata": {"owner": {"name": "dana"}}, "tiers": ["active", "thread"], "category": "work", "tags": ["x"]}


@pytest.mark.parametrize(
    "extra, expected",
    [
        ({}, {"a", "d"}),
        ({"source": "web"}, {"d"}),
        ({"createdBefore": (T0 + DAY).isoformat()}, {"a"}),
        ({"lastAccessedAfter": (T0 + 4 * DAY).isoformat()}, {"a"}),
        ({"tags": ["x", "y"], "createdAfter": (T0 + DAY).isoformat()}, {"d"}),
        ({"tiers": ["stable"]}, set()),
    ],
    ids=["all four", "+source", "+createdBefore", "+lastAccessedAfter", "+createdAfter", "other tier"],
)
def test_filters_combine_with_tiers_category_and_tags(varied, query, extra, expected):
    assert contents(query(**{**COMBINED, **extra})) == expected


def test_filters_narrow_hybrid_results_too(varied, query):
    assert contents(query(mode="hybrid", metadata={"project": "anima"}, source="web")) == {"b", "d"}


def test_a_filtered_query_counts_access_only_for_its_hits(varied, query):
    query(metadata={"project": "other"})
    work_drain(kind=WorkKind.ACCESS)  # the drain writes a query's counters

    assert dict(Memory.objects.values_list("content", "access_count")) == {"a": 0, "b": 0, "c": 1, "d": 0, "e": 0}


@pytest.mark.parametrize(
    "body, field",
    [
        ({"project": "anima"}, "project"),
        ({"filters": {"source": "cli"}}, "filters"),
        ({"metadata": ["project", "anima"]}, "metadata"),
        ({"metadata": "anima"}, "metadata"),
        ({"metadata": None}, "metadata"),
        ({"source": 7}, "source"),
        ({"createdAfter": "last tuesday"}, "createdAfter"),
        ({"lastAccessedAfter": 1700000000}, "lastAccessedAfter"),
        ({"recencyHalfLifeDays": 0}, "recencyHalfLifeDays"),
        ({"recencyHalfLifeDays": -7}, "recencyHalfLifeDays"),
        ({"recencyHalfLifeDays": "7"}, "recencyHalfLifeDays"),
    ],
    ids=lambda value: repr(value) if isinstance(value, dict) else None,
)
def test_bad_filters_are_400_naming_the_field(post_json, model_calls, body, field):
    response = post_json(QUERY, {"query": "anything", **body})

    assert bad_fields(response) == {field}
    assert model_calls == []


# --- a filter matching fewer than 1 % of the namespace --------------------------------------

CORPUS = "corpus"
RARE = 20


@pytest.fixture(scope="module")
def corpus(django_db_setup, django_db_blocker):
    """3,000 memories in namespace ``corpus``: 2,980 close to the query, 20 far from it.

    Committed with every row tagged {"project": "rare"} and analysed; each test first
    re-tags the 2,980 as "main" inside its own transaction, so that only 20 match."""
    rng = np.random.default_rng(2026)
    query = axis(0)
    close = [unit(2 * query + unit(rng.standard_normal(DIM))) for _ in range(3000 - RARE)]
    far = [unit(0.5 * query + axis(1) + 0.3 * unit(rng.standard_normal(DIM))) for _ in range(RARE)]
    specs = [{"content": f"common {i}", "vector": v, "metadata": {"project": "rare"}} for i, v in enumerate(close)]
    specs += [{"content": f"rare {i}", "vector": v, "metadata": {"project": "rare"}} for i, v in enumerate(far)]
    with django_db_blocker.unblock():
        make_memories(specs, namespace=CORPUS)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE memories_memory")
            cursor.execute("ANALYZE memories_memoryembedding")
    similarity = {spec["content"]: float(unit(spec["vector"]) @ query) for spec in specs}
    yield query, similarity
    with django_db_blocker.unblock():
        MemoryEmbedding.objects.filter(namespace=CORPUS).delete()
        Memory.objects.filter(namespace=CORPUS).delete()
        TierCount.objects.filter(namespace=CORPUS).delete()
        with connection.cursor() as cursor:  # leave no statistics of rows that are gone
            cursor.execute("ANALYZE memories_memory")
            cursor.execute("ANALYZE memories_memoryembedding")


def _pool_plan_and_size(vector, model_id, filters) -> tuple[str, int]:
    with transaction.atomic():
        search.configure_hnsw(100)
        pool = search.candidate_pool_queryset(
            search=search.CandidateSearch(namespace=CORPUS, vector=vector, model_id=model_id, filters=filters), size=100
        )
        return pool.explain(), len(list(pool))


@pytest.mark.slow
@pytest.mark.parametrize("statistics", ["fresh", "stale"])
def test_a_rare_metadata_filter_still_returns_limit_results(corpus, api, fake_embedder, settings, statistics):
    """Fresh statistics: PostgreSQL reads the 20 through the metadata index (exact).
    Stale statistics (all rows matched when last analysed): it walks the HNSW graph, whose
    iterative scan gives up at hnsw.max_scan_tuples — scaled here from 20,000 for a large
    namespace to 300 for this one — and the exact fallback must find the 20."""
    vector, similarity = corpus
    fake_embedder.vectors["far away"] = vector
    settings.ANIMA_HNSW_MAX_SCAN_TUPLES = 300
    if statistics == "stale":
        # Statistics taken while every row matched (whatever other tests analysed since);
        # ANALYZE is transactional, so the test's rollback undoes it.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE memories_memory")
            cursor.execute("ANALYZE memories_memoryembedding")
    Memory.objects.filter(namespace=CORPUS, content__startswith="common").update(metadata={"project": "main"})
    filters = MemoryFilters(metadata={"project": "rare"})
    plan, hnsw_rows = _pool_plan_and_size(vector, settings.ANIMA_EMBEDDING_MODEL, filters)
    if statistics == "fresh":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE memories_memory")
        plan, _ = _pool_plan_and_size(vector, settings.ANIMA_EMBEDDING_MODEL, filters)
        assert "embedding_hnsw_cosine" not in plan
    else:
        assert "embedding_hnsw_cosine" in plan and hnsw_rows < RARE  # the graph walk alone falls short

    response = api.post(
        QUERY, {"query": "far away", "limit": RARE, "metadata": {"project": "rare"}}, format="json",
        HTTP_X_ANIMA_NAMESPACE=CORPUS,
    )

    assert response.status_code == 200, response.json()
    found = [m["content"] for m in response.json()["data"]["memories"]]
    assert found == sorted((c for c in similarity if c.startswith("rare")), key=lambda c: -similarity[c])


# --- recency half-life ----------------------------------------------------------------------

STALE_ID = uuid.UUID(int=1)  # sorts first: the id tie-break favours the stale memory
RECENT_ID = uuid.UUID(int=2)
PHI = 1.0


@pytest.fixture
def twins(fake_embedder):
    """Two memories equal in vector and φ; one used a day ago, one thirty days ago."""
    fake_embedder.vectors["q"] = axis(0)
    now = timezone.now()
    same = {"vector": axis(0), "resonance_phi": PHI}
    make_memories(
        [
            {"id": RECENT_ID, "content": "recent", "last_accessed": now - DAY, **same},
            {"id": STALE_ID, "content": "stale", "last_accessed": now - 30 * DAY, **same},
        ]
    )
    return now


def hits(response) -> list[dict]:
    assert response.status_code == 200, response.json()
    return response.json()["data"]["memories"]


def test_without_a_half_life_equal_memories_go_by_id(twins, query):
    found = hits(query())

    assert [m["content"] for m in found] == ["stale", "recent"]
    assert found[0]["structuralWeight"] == found[1]["structuralWeight"]


def test_a_half_life_puts_the_recently_used_memory_first(twins, query):
    assert [m["content"] for m in hits(query(recencyHalfLifeDays=7))] == ["recent", "stale"]


def test_the_half_life_weight_is_halved_per_half_life(twins, query):
    base = ranking.structural_weight(ranking.hybrid_relevance(1.0, 0.0, 0.0), PHI)  # no word of "q" matches

    found = {m["content"]: m["structuralWeight"] for m in hits(query(recencyHalfLifeDays=7))}

    assert found["recent"] == pytest.approx(base * 0.5 ** (1 / 7), abs=1e-4)
    assert found["stale"] == pytest.approx(base * 0.5 ** (30 / 7), abs=1e-4)


def test_a_long_half_life_barely_changes_the_weight(twins, query):
    base = ranking.structural_weight(ranking.hybrid_relevance(1.0, 0.0, 0.0), PHI)

    found = {m["content"]: m["structuralWeight"] for m in hits(query(recencyHalfLifeDays=36500))}

    assert found["stale"] == pytest.approx(base * 0.5 ** (30 / 36500), abs=1e-4)
    assert found["stale"] < found["recent"] < base
