"""The resonant graph's flag (``Memory.resonance_indexed`` = ``MemoryEmbedding.resonant``):
a query never writes it, the ranking is exact while it lags, and the resonance sync (a
task) moves both sides. Against the real database."""

import io
import json

import numpy as np
import pytest
from django.db import connection

from memories import tasks
from memories.models import RESONANCE_LAG, RESONANT_PHI, Memory, MemoryEmbedding
from memories.services import querying
from memories.services.access import memories_record_access
from memories.services.portability import memories_import
from memories.services.resonance import resonance_sync
from tests.factories import make_memories

pytestmark = pytest.mark.django_db

DIM = 384


def _unit(vector):
    return vector / np.linalg.norm(vector)


def _vector(seed: int):
    return np.random.default_rng(seed).standard_normal(DIM)


def _flags(memory) -> tuple[bool, bool]:
    """(memory.resonance_indexed, embedding.resonant)."""
    return (
        Memory.objects.get(pk=memory.pk).resonance_indexed,
        MemoryEmbedding.objects.get(pk=memory.pk).resonant,
    )


def _lagging() -> int:
    return Memory.objects.filter(RESONANCE_LAG).count()


def test_an_access_that_lifts_phi_over_one_leaves_the_flag_to_the_sync():
    memory = make_memories([{"content": "used", "vector": _vector(1), "resonance_phi": RESONANT_PHI - 0.05}])[0]

    memories_record_access(namespace="default", memory_ids=[memory.pk], phi_increment=0.1)

    assert Memory.objects.get(pk=memory.pk).resonance_phi >= RESONANT_PHI
    assert _flags(memory) == (False, False)  # the access wrote no embedding row
    assert _lagging() == 1

    assert resonance_sync() == 1

    assert _flags(memory) == (True, True)
    assert _lagging() == 0


def test_decay_below_one_takes_a_memory_out_of_the_graph():
    memory = make_memories(
        [{"content": "fading", "vector": _vector(2), "resonance_phi": 1.02, "resonance_indexed": True}]
    )[0]
    assert _flags(memory) == (True, True)
    Memory.objects.filter(pk=memory.pk).update(last_accessed="2020-01-01T00:00:00Z")

    assert tasks.apply_decay() == 1  # the scheduled task decays, then syncs

    assert _flags(memory) == (False, False)


def test_the_sync_moves_batches_until_nothing_lags():
    make_memories([{"content": f"r{i}", "vector": _vector(10 + i), "resonance_phi": 2.0} for i in range(7)])

    assert resonance_sync(batch=3) == 7
    assert MemoryEmbedding.objects.filter(resonant=True).count() == 7
    assert resonance_sync() == 0


def test_an_embedding_row_written_later_copies_its_memorys_flag():
    """bulk_create sends resonant = false; the insert trigger copies the memory's flag."""
    indexed, plain = make_memories(
        [
            {"content": "indexed", "vector": _vector(3), "resonance_phi": 4.5, "resonance_indexed": True},
            {"content": "plain", "vector": _vector(4), "resonance_phi": 4.5},
        ]
    )

    assert _flags(indexed) == (True, True)
    assert _flags(plain) == (False, False)


def test_a_query_that_lifts_phi_over_one_enqueues_the_sync(post_json, fake_embedder, django_capture_on_commit_callbacks):
    """Tasks run inline in tests: after the query commits, the sync task has run."""
    memory = make_memories([{"content": "nearly", "vector": _vector(5), "resonance_phi": RESONANT_PHI - 0.05}])[0]
    fake_embedder.vectors["nearly"] = _vector(5)

    with django_capture_on_commit_callbacks(execute=True):
        response = post_json("/api/v1/memories/query", {"query": "nearly", "limit": 5})

    assert [m["id"] for m in response.json()["data"]["memories"]] == [str(memory.pk)]
    assert _flags(memory) == (True, True)


def _far_resonant_corpus():
    """120 memories near the query with φ 0, and one further away with φ 5 that outweighs
    them all: it is outside the 100-row pool, so only the φ bound can find it."""
    rng = np.random.default_rng(9)
    centre = _unit(rng.standard_normal(DIM))
    near = [
        {"content": f"near {i}", "vector": _unit(centre + 0.3 * _unit(rng.standard_normal(DIM)))} for i in range(120)
    ]
    far = {
        "content": "far but resonant",
        "vector": _unit(centre + 0.9 * _unit(rng.standard_normal(DIM))),
        "resonance_phi": 5.0,
    }
    memories = make_memories([*near, far])
    return centre, memories[-1]


@pytest.mark.parametrize("synced", [False, True], ids=["flag-lagging", "flag-synced"])
def test_a_resonant_memory_outside_the_pool_is_found_whether_or_not_its_flag_lags(fake_embedder, synced):
    centre, resonant = _far_resonant_corpus()
    if synced:
        resonance_sync()
    assert _flags(resonant) == (synced, synced)
    fake_embedder.vectors["centre"] = centre

    result = querying.memory_query(namespace="default", query="centre", limit=10)

    assert result.hits[0][0].pk == resonant.pk


def test_an_import_syncs_the_flag_of_resonant_memories():
    line = json.dumps({"content": "imported and resonant", "resonancePhi": 3.5})

    summary = memories_import(lines=io.StringIO(line + "\n"), namespace="default")
    assert summary.created == 1, summary

    memory = Memory.objects.get(content="imported and resonant")
    assert memory.resonance_phi == 3.5
    assert _flags(memory) == (True, True)


def test_a_memory_two_band_statements_both_see_is_returned_once(fake_embedder, monkeypatch):
    """A concurrent access may move a memory's φ across 1 between the two band statements."""
    centre, resonant = _far_resonant_corpus()
    fake_embedder.vectors["centre"] = centre
    bands = querying._band_querysets
    monkeypatch.setattr(querying, "_band_querysets", lambda **kwargs: bands(**kwargs) * 2)

    result = querying.memory_query(namespace="default", query="centre", limit=10)

    ids = [memory.pk for memory, _ in result.hits]
    assert ids[0] == resonant.pk
    assert len(ids) == len(set(ids))


def test_a_filter_the_graph_walk_gives_up_on_is_read_exactly(fake_embedder, settings):
    """1,000 resonant memories near the query without the tag fill the graph walk's budget
    (hnsw.max_scan_tuples = 50); the one tagged resonant memory lies further away and
    outweighs every tagged memory of the pool."""
    rng = np.random.default_rng(11)
    centre = _unit(rng.standard_normal(DIM))

    def near():
        return _unit(centre + 0.3 * _unit(rng.standard_normal(DIM)))

    specs = [{"content": f"tagged {i}", "vector": near(), "tags": ["t"]} for i in range(150)]
    specs += [{"content": f"untagged {i}", "vector": near(), "resonance_phi": 3.0} for i in range(1000)]
    far = _unit(centre + 0.9 * _unit(rng.standard_normal(DIM)))
    specs.append({"content": "tagged far resonant", "vector": far, "tags": ["t"], "resonance_phi": 5.0})
    target = make_memories(specs)[-1]
    resonance_sync()
    # A graph this small PostgreSQL would rightly sort; make it walk the graph, as it does
    # at scale (SET LOCAL: undone with the test's transaction).
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_sort = off")
    settings.ANIMA_HNSW_MAX_SCAN_TUPLES = 50
    fake_embedder.vectors["centre"] = centre

    result = querying.memory_query(
        namespace="default", query="centre", limit=10, filters=querying.QueryFilters(tags=["t"])
    )

    assert result.hits[0][0].pk == target.pk
