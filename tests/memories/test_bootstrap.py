import math
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from memories.models import Memory, MemoryAccess, Tier
from memories.selectors.bootstrap import bootstrap_queryset, memories_bootstrap
from tests.api_paths import BOOTSTRAP
from tests.factories import make_memories

pytestmark = pytest.mark.django_db


def make_memories_without_vectors(specs, **kwargs):
    """Bootstrap never reads vectors; skipping them keeps the large-table test quick."""
    return make_memories(specs, with_embeddings=False, **kwargs)


def spec(content, tier, phi=0.0, minutes_ago=0, **extra):
    return {
        "content": content,
        "tier": tier,
        "resonance_phi": phi,
        "last_accessed": timezone.now() - timedelta(minutes=minutes_ago),
        **extra,
    }


@pytest.fixture
def many_of_each():
    make_memories_without_vectors(
        [spec(f"active {i}", Tier.ACTIVE, minutes_ago=i) for i in range(30)]
        + [spec(f"thread {i}", Tier.THREAD, phi=(i % 50) / 10, minutes_ago=i) for i in range(30)]
        + [spec(f"stable {i}", Tier.STABLE, phi=(i % 50) / 10, minutes_ago=i) for i in range(30)]
    )


def test_never_more_than_limit(api, many_of_each):
    data = api.get(f"{BOOTSTRAP}?limit=10").json()["data"]

    assert sum(len(branch) for branch in data["memories"].values()) == 10


def test_active_takes_its_share_and_the_rest_splits_seventy_thirty(api, many_of_each):
    data = api.get(f"{BOOTSTRAP}?limit=20&activeLimit=6").json()["data"]["memories"]

    assert len(data["active"]) == 6
    assert len(data["thread"]) == math.ceil(0.7 * 14)
    assert len(data["stable"]) == 14 - math.ceil(0.7 * 14)


def test_each_branch_in_its_documented_order(api, many_of_each):
    data = api.get(f"{BOOTSTRAP}?limit=30&activeLimit=10").json()["data"]["memories"]

    active_times = [m["lastAccessed"] for m in data["active"]]
    assert active_times == sorted(active_times, reverse=True)
    for branch in ("thread", "stable"):
        keys = [(m["resonancePhi"], m["lastAccessed"]) for m in data[branch]]
        assert keys == sorted(keys, reverse=True)
    assert data["thread"][0]["resonancePhi"] == 2.9


def test_ties_in_phi_break_by_recency_then_id():
    make_memories_without_vectors([spec(f"same {i}", Tier.STABLE, phi=2.0, minutes_ago=i % 2) for i in range(6)])

    stable = memories_bootstrap(namespace="default", limit=6, include_active=False, include_thread=False).stable

    keys = [(-m.last_accessed.timestamp(), str(m.id)) for m in stable]
    assert keys == sorted(keys)


def test_a_branch_short_of_memories_leaves_its_share_to_the_other(api):
    make_memories_without_vectors([spec(f"stable {i}", Tier.STABLE, phi=1.0) for i in range(10)] + [spec("thread", Tier.THREAD)])

    data = api.get(f"{BOOTSTRAP}?limit=10").json()["data"]["memories"]

    assert (len(data["active"]), len(data["thread"]), len(data["stable"])) == (0, 1, 9)


def test_include_flags_exclude_branches(api, many_of_each):
    data = api.get(f"{BOOTSTRAP}?limit=10&includeActive=false&includeStable=false").json()["data"]["memories"]

    assert (len(data["active"]), len(data["thread"]), len(data["stable"])) == (0, 10, 0)


def test_max_chars_budget_takes_stable_then_thread_then_active(api):
    make_memories_without_vectors(
        [
            spec("s" * 40, Tier.STABLE, phi=3.0),
            spec("t" * 40, Tier.THREAD, phi=3.0),
            spec("a" * 40, Tier.ACTIVE),
            spec("b" * 10, Tier.ACTIVE, minutes_ago=5),
        ]
    )

    data = api.get(f"{BOOTSTRAP}?limit=10&maxChars=95").json()["data"]["memories"]

    assert [m["content"][0] for m in data["stable"] + data["thread"] + data["active"]] == ["s", "t", "b"]
    total = sum(len(m["content"]) for branch in data.values() for m in branch)
    assert total <= 95


def test_distribution_counts_live_memories_per_tier(api, many_of_each):
    Memory.objects.filter(content="active 0").update(deleted_at=timezone.now())
    Memory.objects.filter(content="thread 0").update(tier=Tier.STABLE)
    make_memories_without_vectors([spec("elsewhere", Tier.ACTIVE)], namespace="other")

    distribution = api.get(BOOTSTRAP).json()["data"]["distribution"]

    assert distribution == {"active": 29, "thread": 29, "stable": 31, "total": 89}


def test_bootstrap_changes_nothing(api, many_of_each):
    before = list(Memory.objects.order_by("id").values())
    api.get(f"{BOOTSTRAP}?limit=1")  # the key's last-used stamp (written at most once a minute) is not bootstrap's
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the fixture's deferred FK checks, now
        cursor.execute("SET TRANSACTION READ ONLY")  # any write by the request would now fail

    response = api.get(f"{BOOTSTRAP}?limit=50&conversationId=c1")

    assert response.status_code == 200
    assert list(Memory.objects.order_by("id").values()) == before
    assert MemoryAccess.objects.count() == 0


def _plan(queryset) -> str:
    return queryset.explain(analyze=True, buffers=False, timing=False)


def _rows_read_by_scans(plan: str) -> int:
    total = 0
    for line in plan.splitlines():
        if "Scan" in line and "actual" in line:
            total += int(float(line.split("rows=")[-1].split()[0]))
    return total


@pytest.mark.parametrize("limit", [10, 50])
def test_the_plan_reads_a_bounded_number_of_rows_whatever_the_table_size(limit):
    make_memories_without_vectors([spec(f"a{i}", Tier.ACTIVE, minutes_ago=i) for i in range(300)])
    make_memories_without_vectors([spec(f"t{i}", Tier.THREAD, phi=i / 100) for i in range(300)])
    make_memories_without_vectors([spec(f"s{i}", Tier.STABLE, phi=i / 100) for i in range(300)])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE memories_memory")
    sizes = dict(namespace="default", active_size=limit, thread_size=limit, stable_size=limit)
    small = _rows_read_by_scans(_plan(bootstrap_queryset(**sizes)))

    make_memories_without_vectors([spec(f"more a{i}", Tier.ACTIVE, minutes_ago=1000 + i) for i in range(3000)])
    make_memories_without_vectors([spec(f"more t{i}", Tier.THREAD, minutes_ago=1000 + i) for i in range(3000)])
    make_memories_without_vectors([spec(f"more s{i}", Tier.STABLE, minutes_ago=1000 + i) for i in range(3000)])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE memories_memory")
    plan = _plan(bootstrap_queryset(**sizes))
    large = _rows_read_by_scans(plan)

    # memories_memory is read only through its partial indexes (the LEFT JOIN to a tiny or
    # empty embedding table may be a seq scan there: it is not the table that grows).
    assert re.search(r"Seq Scan on memories_memory\b", plan) is None  # not ..._memoryembedding
    assert "memory_tier_recent" in plan and "memory_tier_phi" in plan
    assert large <= 3 * limit + 3  # each branch stops at its LIMIT
    assert large == small


def test_the_memories_written_by_postgresql_are_memory_output_exactly():
    """Bootstrap's memories come as PostgreSQL writes them (``memories_shown_json``): each
    must be what ``MemoryOutput`` makes of the model, key for key and in the same order."""
    from datetime import datetime, timezone as dt_timezone

    from memories.models import MemoryEmbedding
    from memories.output_sql import memories_shown_json
    from memories.selectors.memories import memories_shown
    from memories.serializers.memories import MemoryOutput
    from tests.factories import axis

    whole_second = datetime(2026, 1, 31, 12, 0, 0, tzinfo=dt_timezone.utc)
    early = datetime(1, 1, 1, 0, 0, 0, 5, tzinfo=dt_timezone.utc)
    plain, rich, bare = make_memories(
        [
            {"content": "plain", "vector": axis(0)},
            {
                "content": "rich \u00e9\u4e2d \"quoted\" \\ and\nnewline",
                "vector": axis(1),
                "category": "work",
                "source": "cli",
                "tags": ["a", "b c"],
                "metadata": {"n": 1.5, "big": 12345678901234567890, "nested": {"k": [True, None, "x"]}, "e": "\u00e9"},
                "occurred_at": whole_second,
                "valid_from": early,
                "expires_at": whole_second,
                "phi_decayed_at": whole_second,
                "resonance_phi": 0.1,
                "access_count": 7,
                "is_catalyst": True,
                "pinned": True,
                "tier": Tier.STABLE,
            },
            {"content": "no embedding", "vector": axis(2)},
        ]
    )
    superseded = make_memories([{"content": "old", "vector": axis(3), "valid_until": whole_second}])[0]
    Memory.objects.filter(pk=superseded.pk).update(superseded_by=plain, merged_into=rich)
    Memory.objects.filter(pk=plain.pk).update(supersedes=[superseded.pk])
    MemoryEmbedding.objects.filter(memory=rich).update(truncated=True)
    MemoryEmbedding.objects.filter(memory=bare).delete()
    ids = [plain.id, rich.id, bare.id, superseded.id]

    written, instances = memories_shown_json(ids), memories_shown(ids)

    assert set(written) == {str(i) for i in ids}
    for memory_id in ids:
        expected = dict(MemoryOutput(instances[memory_id]).data)
        assert list(written[str(memory_id)].items()) == list(expected.items())
    assert written[str(rich.id)]["occurredAt"] == "2026-01-31T12:00:00Z"
    assert written[str(rich.id)]["validFrom"] == "0001-01-01T00:00:00.000005Z"
    assert written[str(rich.id)]["embeddingTruncated"] is True and written[str(bare.id)]["embeddingTruncated"] is False
    assert memories_shown_json([]) == {}


def test_the_bootstrap_answer_is_bootstrap_data_of_the_selected_memories(api):
    from memories.serializers.bootstrap import BootstrapData

    make_memories_without_vectors(
        [spec("pinned one", Tier.STABLE, 2.0, pinned=True)]
        + [spec(f"a{i}", Tier.ACTIVE, minutes_ago=i) for i in range(4)]
        + [spec(f"t{i}", Tier.THREAD, 1.0 + i / 10) for i in range(3)]
        + [spec(f"s{i}", Tier.STABLE, 3.0 + i / 10) for i in range(3)]
    )

    api.get(f"{BOOTSTRAP}?limit=8")  # the session's first
    with CaptureQueriesContext(connection) as captured:
        answered = api.get(f"{BOOTSTRAP}?limit=8").json()["data"]

    assert answered == dict(BootstrapData(memories_bootstrap(namespace="default", limit=8)).data)
    assert [m["content"] for m in answered["memories"]["pinned"]] == ["pinned one"]
    assert answered["distribution"] == {"active": 4, "thread": 3, "stable": 4, "total": 11}
    # The key; the candidates; the chosen memories with the tier counts.
    assert len(captured.captured_queries) == 3
