"""JSON Lines export and import (SPEC §7): a lossless round trip, idempotent re-imports,
bad lines reported by number, and one embedding call per batch for lines without a
usable vector."""

import io
import json
import threading
import uuid
from datetime import timedelta

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from memories.embeddings import EmbeddingError
from memories.models import Memory, MemoryEmbedding, TierCount
from memories.portability import MEMORY_KEYS, importing, memories_export, memories_import
from memories.services.supersession import memories_supersede
from tests.factories import DIM as DIMENSIONS, MODEL, make_memories

pytestmark = pytest.mark.django_db

MEMORY_FIELDS = [f.attname for f in Memory._meta.concrete_fields if f.name != "search_vector"]


def random_vector(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(DIMENSIONS)


def rich_content(prefix: str, i: int) -> str:
    return f"{prefix} memory {i}: Ünïcødé ✓ 🧠 \"quoted\" back\\slash\nsecond line\ttab"


def rich_specs(count: int, *, prefix: str, seed: int) -> list[dict]:
    """Memories with every field set to a value of its own (no defaults left)."""
    rng = np.random.default_rng(seed)
    now = timezone.now()
    tiers = ["active", "thread", "stable", "network"]
    specs = []
    for i in range(count):
        created = now - timedelta(days=i, seconds=i * 13, microseconds=i * 7 + 1)
        specs.append(
            {
                "content": rich_content(prefix, i),
                "vector": rng.standard_normal(DIMENSIONS),
                "category": f"category-{i % 7}" if i % 5 else None,
                "tags": [f"tag-{i % 3}", f"t{i}"] if i % 4 else [],
                "source": f"source/{i % 2}" if i % 3 else None,
                "metadata": {"i": i, "nested": {"list": [1, 2.5, "ß"], "flag": i % 2 == 0}, "text": f"Ω{i}"},
                "tier": tiers[i % 4],
                "tier_last_updated": created + timedelta(hours=1, microseconds=3),
                "resonance_phi": [0.0, 5.0, 0.1, float(rng.uniform(0, 5))][i % 4],
                "phi_decayed_at": created + timedelta(days=2) if i % 6 == 0 else None,
                "is_catalyst": i % 9 == 0,
                "pinned": i % 11 == 0,
                "access_count": int(rng.integers(0, 10_000)),
                "last_accessed": created + timedelta(minutes=i, microseconds=11),
                "created_at": created,
            }
        )
    return specs


@pytest.fixture
def rich_memories():
    """~300 memories in two namespaces with every field set: soft-deleted ones, merged ones,
    truncated vectors, values at their length limits."""
    first = make_memories(rich_specs(200, prefix="alpha", seed=1), namespace="default")
    second = make_memories(rich_specs(90, prefix="beta", seed=2), namespace="other-user")
    edge = make_memories(
        [
            {
                "content": "x" * 50_000,
                "vector": random_vector(3),
                "category": "c" * 100,
                "source": "s" * 100,
                "tags": [f"{i:02d}" + "t" * 48 for i in range(20)],
                "metadata": {},
            },
            # A deleted memory may share its content with a live one.
            {
                "content": rich_content("alpha", 1),
                "vector": random_vector(4),
                "deleted_at": timezone.now() - timedelta(days=3),
            },
        ],
        namespace="default",
    )
    # Facts that change: a chain of two corrections, one memory correcting two, a
    # superseded memory deleted afterwards (below), expiries past and future.
    memories_supersede(namespace="default", successor_id=first[31].pk, predecessor_ids=[first[30].pk])
    memories_supersede(namespace="default", successor_id=first[32].pk, predecessor_ids=[first[31].pk])
    memories_supersede(namespace="default", successor_id=first[42].pk, predecessor_ids=[first[41].pk, first[40].pk])
    memories_supersede(namespace="other-user", successor_id=second[6].pk, predecessor_ids=[second[3].pk])
    Memory.objects.filter(pk__in=[first[32].pk, first[50].pk]).update(expires_at=timezone.now() + timedelta(days=9))
    Memory.objects.filter(pk=first[51].pk).update(expires_at=timezone.now() - timedelta(days=9))
    # Merged: soft-deleted, pointing at a live survivor.
    now = timezone.now()
    merged = first[10:20]
    for index, memory in enumerate(merged):
        Memory.objects.filter(pk=memory.pk).update(
            deleted_at=now - timedelta(hours=index), merged_into_id=first[100 + index].pk
        )
    Memory.objects.filter(pk__in=[m.pk for m in second[:5]]).update(deleted_at=now - timedelta(days=1))
    # updated_at is auto_now on save; give every row a value of its own.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE memories_memory SET updated_at = created_at + (access_count % 97) * interval '1 minute'"
            " + interval '17 microseconds'"
        )
    MemoryEmbedding.objects.filter(memory_id__in=[m.pk for m in first[::7]]).update(truncated=True)
    return first + second + edge


def memory_snapshot() -> dict:
    return {row["id"]: row for row in Memory.objects.values(*MEMORY_FIELDS)}


def embedding_snapshot() -> dict:
    return {
        e.memory_id: (np.asarray(e.embedding).tolist(), e.embedding_model, e.truncated, e.namespace)
        for e in MemoryEmbedding.objects.all()
    }


def wipe():
    Memory.objects.all().delete()
    assert MemoryEmbedding.objects.count() == 0


def export_file(tmp_path, *args, name="memories.jsonl"):
    path = tmp_path / name
    call_command("export_memories", "--output", str(path), "--no-progress", *args, stdout=io.StringIO())
    return path


def import_file(path, *args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_memories", str(path), "--no-progress", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def read_lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def write_lines(path, lines) -> None:
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")


def import_concurrently(path, *, batch_size: int, imports: int = 3) -> tuple[list, list]:
    """Run ``imports`` imports of the file at once, one thread and connection each:
    (their summaries, the exceptions they raised)."""
    barrier = threading.Barrier(imports)
    summaries, failures = [], []

    def run():
        from django.db import connection as thread_connection

        try:
            barrier.wait()
            summaries.append(memories_import(lines=path.open("rb"), batch_size=batch_size))
        except Exception as exc:  # returned to the test
            failures.append(exc)
        finally:
            thread_connection.close()

    threads = [threading.Thread(target=run) for _ in range(imports)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return summaries, failures


def tier_counts_match_the_rows() -> bool:
    actual = {
        (row["namespace"], row["tier"]): row["n"]
        for row in Memory.objects.filter(deleted_at__isnull=True).values("namespace", "tier").annotate(n=Count("id"))
    }
    counted = {(c.namespace, c.tier): c.count for c in TierCount.objects.all() if c.count}
    return actual == counted


# --- the round trip --------------------------------------------------------------------------


def test_export_then_import_into_an_empty_database_restores_every_field(rich_memories, tmp_path, model_calls):
    memories_before, embeddings_before = memory_snapshot(), embedding_snapshot()
    path = export_file(tmp_path, "--include-deleted", "--with-embeddings")
    wipe()

    out, err = import_file(path)

    assert memory_snapshot() == memories_before
    assert embedding_snapshot() == embeddings_before
    assert f"created {len(memories_before)}, duplicates 0, errors 0" in out
    assert err == ""
    assert model_calls == []  # every vector came from the file
    assert tier_counts_match_the_rows()


def test_round_trip_covers_the_corrections_and_their_validity(rich_memories, tmp_path):
    path = export_file(tmp_path, "--include-deleted", "--with-embeddings")
    fields = ("id", "superseded_by_id", "supersedes", "valid_from", "valid_until", "expires_at")
    before = {row[0]: row for row in Memory.objects.values_list(*fields)}
    wipe()

    import_file(path)

    assert Memory.objects.filter(superseded_by__isnull=False).count() == 5
    assert Memory.objects.filter(expires_at__isnull=False).count() == 3
    assert {row[0]: row for row in Memory.objects.values_list(*fields)} == before


def test_round_trip_covers_the_merged_and_deleted_memories(rich_memories, tmp_path):
    path = export_file(tmp_path, "--include-deleted", "--with-embeddings")
    merged_before = dict(Memory.objects.filter(merged_into__isnull=False).values_list("id", "merged_into_id"))
    wipe()

    import_file(path)

    assert len(merged_before) == 10
    assert dict(Memory.objects.filter(merged_into__isnull=False).values_list("id", "merged_into_id")) == merged_before
    assert Memory.objects.filter(deleted_at__isnull=False).count() == 10 + 5 + 1


def test_import_without_vectors_embeds_one_call_per_batch(tmp_path, model_calls):
    make_memories(rich_specs(120, prefix="gamma", seed=5))
    memories_before = memory_snapshot()
    path = export_file(tmp_path)  # no embeddings in the file
    wipe()

    out, _ = import_file(path, "--batch-size", "50")

    assert [len(call) for call in model_calls] == [50, 50, 20]
    assert memory_snapshot() == memories_before
    assert set(MemoryEmbedding.objects.values_list("embedding_model", flat=True)) == {MODEL}
    assert "0 from the file, 120 embedded" in out


def test_vectors_of_another_model_are_embedded_again(tmp_path, fake_embedder):
    make_memories([{"content": "one", "vector": random_vector(1)}], model_id="some-other-model")
    make_memories([{"content": "two", "vector": random_vector(2)}])
    path = export_file(tmp_path, "--with-embeddings")
    wipe()

    summary = memories_import(lines=path.open("rb"))

    assert (summary.created, summary.embedded, summary.embeddings_reused) == (2, 1, 1)
    stored = MemoryEmbedding.objects.get(memory__content="one")
    assert stored.embedding_model == MODEL
    assert np.allclose(np.asarray(stored.embedding), fake_embedder.embed_many(["one"])[0].vector)


# --- idempotence -------------------------------------------------------------------------------


def test_importing_the_same_file_twice_creates_nothing_new(rich_memories, tmp_path):
    path = export_file(tmp_path, "--include-deleted", "--with-embeddings")
    wipe()
    first = memories_import(lines=path.open("rb"))
    snapshot = memory_snapshot()

    second = memories_import(lines=path.open("rb"))

    assert first.created == len(rich_memories)
    assert (second.created, second.duplicates, second.error_count) == (0, len(rich_memories), 0)
    assert memory_snapshot() == snapshot


def test_importing_into_the_database_it_came_from_changes_nothing(rich_memories, tmp_path, model_calls):
    path = export_file(tmp_path, "--include-deleted")
    snapshot = memory_snapshot()

    out, _ = import_file(path)

    assert f"created 0, duplicates {len(rich_memories)}, errors 0" in out
    assert memory_snapshot() == snapshot
    assert model_calls == []  # duplicates are found before anything is embedded


def test_a_live_memory_with_the_same_content_is_a_duplicate_under_another_id(tmp_path, fake_embedder):
    (existing,) = make_memories([{"content": "Dana is allergic to peanuts.", "vector": random_vector(1)}])
    path = tmp_path / "in.jsonl"
    write_lines(path, [{"id": str(uuid.uuid4()), "content": "Dana is allergic to peanuts."}])

    summary = memories_import(lines=path.open("rb"))

    assert (summary.created, summary.duplicates) == (0, 1)
    assert list(Memory.objects.values_list("id", flat=True)) == [existing.id]


def test_an_id_held_by_another_memory_is_replaced_by_a_new_one(tmp_path, fake_embedder):
    (existing,) = make_memories([{"content": "first text", "vector": random_vector(1)}])
    path = tmp_path / "in.jsonl"
    write_lines(path, [{"id": str(existing.id), "content": "a different text"}])

    summary = memories_import(lines=path.open("rb"))

    assert (summary.created, summary.ids_reassigned) == (1, 1)
    new = Memory.objects.get(content="a different text")
    assert new.id != existing.id
    assert Memory.objects.get(id=existing.id).content == "first text"


def test_exported_ids_are_kept(tmp_path, fake_embedder):
    memory_id = uuid.uuid4()
    path = tmp_path / "in.jsonl"
    write_lines(path, [{"id": str(memory_id), "content": "keeps its id"}])

    memories_import(lines=path.open("rb"))

    assert Memory.objects.get(content="keeps its id").id == memory_id


@pytest.mark.django_db(transaction=True)
def test_concurrent_imports_of_one_file_create_each_memory_once(tmp_path):
    make_memories(rich_specs(150, prefix="delta", seed=7))
    path = export_file(tmp_path, "--with-embeddings")
    wipe()

    summaries, failures = import_concurrently(path, batch_size=10)

    assert failures == []
    assert sum(s.created for s in summaries) == 150
    assert sum(s.duplicates for s in summaries) == 2 * 150
    assert Memory.objects.count() == 150
    assert MemoryEmbedding.objects.count() == 150
    assert tier_counts_match_the_rows()


# --- bad lines -----------------------------------------------------------------------------


def good(content: str, **fields) -> dict:
    return {"content": content, **fields}


def test_broken_lines_are_reported_by_number_and_the_rest_is_imported(tmp_path, fake_embedder):
    path = tmp_path / "broken.jsonl"
    write_lines(
        path,
        [
            good("line one"),
            '{"content": "line two", ',  # bad JSON
            good("line three"),
            good("y" * 50_001),  # content too long
            good("line five"),
        ],
    )

    out, err = import_file(path)

    assert "created 3, duplicates 0, errors 2" in out
    assert f"{path}: line 2: not valid JSON" in err
    assert f"{path}: line 4: content: 50001 characters, at most 50000" in err
    assert set(Memory.objects.values_list("content", flat=True)) == {"line one", "line three", "line five"}


@pytest.mark.parametrize(
    "line, message",
    [
        pytest.param("[1, 2]", "not a JSON object", id="not-an-object"),
        pytest.param({"category": "x"}, "content: required", id="no-content"),
        pytest.param(good(""), "content: at least 1 character", id="empty-content"),
        pytest.param(good("   "), "content: must not be blank", id="blank-content"),
        pytest.param(good("a", tags=["t"] * 21), "tags: 21 tags, at most 20", id="too-many-tags"),
        pytest.param(good("a", tags=["t" * 51]), "tags: each tag must be a string of 1–50", id="long-tag"),
        pytest.param(good("a", category="c" * 101), "category: 101 characters, at most 100", id="long-category"),
        pytest.param(good("a", source="s" * 101), "source: 101 characters, at most 100", id="long-source"),
        pytest.param(good("a", resonancePhi=5.01), "resonancePhi: must be a number in [0, 5]", id="phi-above-5"),
        pytest.param(good("a", resonancePhi=-0.1), "resonancePhi: must be a number in [0, 5]", id="phi-below-0"),
        pytest.param('{"content": "a", "resonancePhi": NaN}', "resonancePhi", id="phi-nan"),
        pytest.param(good("a", tier="dormant"), "tier: 'dormant' is not one of", id="unknown-tier"),
        pytest.param(good("a", accessCount=-1), "accessCount", id="negative-count"),
        pytest.param(good("a", accessCount=1.5), "accessCount", id="fractional-count"),
        pytest.param(good("a", createdAt="yesterday"), "createdAt: 'yesterday' is not an ISO 8601", id="bad-time"),
        pytest.param(good("a", id="not-a-uuid"), "id: 'not-a-uuid' is not a UUID", id="bad-id"),
        pytest.param(good("a", metadata=[1]), "metadata: must be a JSON object", id="metadata-list"),
        pytest.param(good("a", isCatalyst="yes"), "isCatalyst: must be true or false", id="catalyst-string"),
        pytest.param(good("a", namespace="bad space"), "namespace", id="bad-namespace"),
        pytest.param(good("a\u0000b"), "content: contains a NUL character", id="nul-in-content"),
        pytest.param(good("a", metadata={"k": "\u0000"}), "metadata.k: contains a NUL", id="nul-in-metadata"),
        pytest.param(good("a", embedding=["x"]), "embedding: must be a non-empty list of numbers", id="bad-vector"),
        pytest.param(good("a", contentHash="abc"), "unknown key(s): contentHash", id="unknown-key"),
    ],
)
def test_out_of_bounds_values_are_rejected_with_their_line_number(tmp_path, fake_embedder, line, message):
    path = tmp_path / "one-bad.jsonl"
    write_lines(path, [good("fine"), line])

    summary = memories_import(lines=path.open("rb"))

    assert summary.created == 1
    assert [(e.line, message in e.message) for e in summary.errors] == [(2, True)], summary.errors


def test_a_namespace_with_a_trailing_newline_is_rejected_with_its_line_number(tmp_path, fake_embedder):
    path = tmp_path / "newline.jsonl"
    write_lines(path, [good("fine", namespace="team"), good("smuggled", namespace="team\n")])

    summary = memories_import(lines=path.open("rb"))

    assert [str(e) for e in summary.errors] == [
        "line 2: namespace: Invalid namespace 'team\\n': a namespace is 1-64 letters, digits, '-' or '_'."
    ]
    assert list(Memory.objects.values_list("namespace", "content")) == [("team", "fine")]


def test_a_namespace_option_with_a_trailing_newline_is_refused(tmp_path):
    path = tmp_path / "a.jsonl"
    write_lines(path, [good("a")])

    with pytest.raises(CommandError, match="Invalid namespace 'team\\\\n'"):
        import_file(path, "--namespace", "team\n")
    assert not Memory.objects.exists()


def test_kept_errors_are_the_first_lines_in_file_order_when_merges_are_rejected_last(
    tmp_path, fake_embedder, monkeypatch
):
    monkeypatch.setattr(importing, "MAX_REPORTED_ERRORS", 2)
    path = tmp_path / "many-bad.jsonl"
    orphan = good("merged away", deletedAt="2026-01-01T00:00:00Z", mergedInto=str(uuid.uuid4()))
    write_lines(path, [orphan, good("a", tier="dormant"), good("b", tier="dormant"), good("kept")])

    summary = memories_import(lines=path.open("rb"))

    assert summary.error_count == 3
    assert [(e.line, e.message.split(":")[0]) for e in summary.errors] == [(1, "mergedInto"), (2, "tier")]


def test_a_line_that_is_not_utf8_is_reported(tmp_path, fake_embedder):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"content": "ok"}\n{"content": "caf\xe9"}\n')

    summary = memories_import(lines=path.open("rb"))

    assert summary.created == 1
    assert [str(e) for e in summary.errors] == ["line 2: not UTF-8 text"]


def test_blank_lines_are_skipped_silently(tmp_path, fake_embedder):
    path = tmp_path / "blank.jsonl"
    path.write_text('\n{"content": "a"}\n\n   \n{"content": "b"}\n')

    summary = memories_import(lines=path.open("rb"))

    assert (summary.lines, summary.created, summary.error_count) == (2, 2, 0)


def test_a_file_with_no_readable_line_fails(tmp_path, fake_embedder):
    path = tmp_path / "garbage.jsonl"
    write_lines(path, ["not json", "{also not"])

    with pytest.raises(CommandError, match="nothing could be read"):
        import_file(path)


def test_a_missing_file_fails(tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        import_file(tmp_path / "nowhere.jsonl")


def test_an_empty_file_is_not_a_failure(tmp_path, fake_embedder):
    path = tmp_path / "empty.jsonl"
    path.write_text("")

    out, _ = import_file(path)

    assert "read 0 lines" in out


def test_a_merge_target_missing_from_the_file_rejects_the_line(tmp_path, fake_embedder):
    path = tmp_path / "orphan.jsonl"
    write_lines(
        path,
        [good("kept"), good("merged away", deletedAt="2026-01-01T00:00:00Z", mergedInto=str(uuid.uuid4()))],
    )

    out, err = import_file(path)

    assert "created 1, duplicates 0, errors 1 (lines 2)" in out
    assert "line 2: mergedInto: names no memory of this namespace, stored or in the file" in err
    assert list(Memory.objects.values_list("content", flat=True)) == ["kept"]


def test_a_merge_target_later_in_the_file_is_linked(tmp_path, fake_embedder):
    survivor = uuid.uuid4()
    path = tmp_path / "later.jsonl"
    write_lines(
        path,
        [
            good("merged away", deletedAt="2026-01-01T00:00:00Z", mergedInto=str(survivor)),
            good("the survivor", id=str(survivor)),
        ],
    )

    memories_import(lines=path.open("rb"), batch_size=1)

    assert Memory.objects.get(content="merged away").merged_into_id == survivor


def test_a_merge_target_stored_before_the_import_is_linked(tmp_path, fake_embedder):
    (survivor,) = make_memories([{"content": "the survivor", "vector": random_vector(1)}])
    path = tmp_path / "stored.jsonl"
    write_lines(path, [good("merged away", deletedAt="2026-01-01T00:00:00Z", mergedInto=str(survivor.id))])

    summary = memories_import(lines=path.open("rb"))

    assert (summary.created, summary.error_count) == (1, 0)
    assert Memory.objects.get(content="merged away").merged_into_id == survivor.id


def test_one_file_imported_into_two_namespaces_links_each_merge_inside_its_namespace(tmp_path, fake_embedder):
    survivor = uuid.uuid4()
    path = tmp_path / "twice.jsonl"
    write_lines(
        path,
        [
            good("merged away", deletedAt="2026-01-01T00:00:00Z", mergedInto=str(survivor)),
            good("the survivor", id=str(survivor)),
        ],
    )

    first = memories_import(lines=path.open("rb"), namespace="alice")
    second = memories_import(lines=path.open("rb"), namespace="bob")

    assert (first.created, first.error_count, second.created, second.error_count) == (2, 0, 2, 0)
    for namespace in ("alice", "bob"):
        merged = Memory.objects.get(namespace=namespace, content="merged away")
        assert Memory.objects.get(id=merged.merged_into_id).namespace == namespace


def test_minimal_lines_get_the_defaults_of_a_new_memory(tmp_path, fake_embedder, settings):
    path = tmp_path / "minimal.jsonl"
    write_lines(path, [good("just content")])

    memories_import(lines=path.open("rb"))

    memory = Memory.objects.get()
    assert memory.namespace == settings.ANIMA_DEFAULT_NAMESPACE
    assert (memory.tier, memory.resonance_phi, memory.access_count, memory.tags, memory.metadata) == (
        "active", 0.0, 0, [], {},
    )  # fmt: skip
    assert memory.last_accessed == memory.created_at == memory.updated_at == memory.tier_last_updated


def test_namespace_option_puts_every_memory_in_that_namespace(tmp_path, fake_embedder):
    path = tmp_path / "ns.jsonl"
    write_lines(path, [good("a", namespace="alice"), good("b")])

    import_file(path, "--namespace", "bob")

    assert set(Memory.objects.values_list("namespace", flat=True)) == {"bob"}
    assert set(MemoryEmbedding.objects.values_list("namespace", flat=True)) == {"bob"}


def test_an_invalid_namespace_option_is_refused(tmp_path):
    path = tmp_path / "in.jsonl"
    write_lines(path, [good("a")])

    with pytest.raises(CommandError, match="namespace 'not a slug'"):
        import_file(path, "--namespace", "not a slug")


def test_a_provider_failure_stops_the_import_and_a_rerun_completes_it(tmp_path, fake_embedder, monkeypatch):
    path = tmp_path / "in.jsonl"
    write_lines(path, [good(f"memory {i}") for i in range(25)])
    original, calls = fake_embedder.embed_many, []

    def failing_second_call(texts):
        calls.append(texts)
        if len(calls) == 2:
            raise EmbeddingError("provider down")
        return original(texts)

    monkeypatch.setattr(fake_embedder, "embed_many", failing_second_call)

    with pytest.raises(CommandError, match="run the same import again"):
        import_file(path, "--batch-size", "10")
    assert Memory.objects.count() == 10

    out, _ = import_file(path, "--batch-size", "10")

    assert "created 15, duplicates 10, errors 0" in out
    assert Memory.objects.count() == MemoryEmbedding.objects.count() == 25


# --- the export --------------------------------------------------------------------------------


def test_exported_lines_have_the_documented_keys(tmp_path):
    make_memories([{"content": "one", "vector": random_vector(1)}])

    (plain,) = read_lines(export_file(tmp_path))
    (full,) = read_lines(export_file(tmp_path, "--with-embeddings", name="full.jsonl"))

    assert list(plain) == list(MEMORY_KEYS)
    assert list(full) == list(MEMORY_KEYS) + ["embedding", "embeddingModel", "embeddingTruncated"]
    assert len(full["embedding"]) == DIMENSIONS
    assert full["embeddingModel"] == MODEL
    assert plain["createdAt"].endswith("Z")


def test_export_leaves_out_deleted_memories_unless_asked(tmp_path):
    live, deleted = make_memories(
        [{"content": "live", "vector": random_vector(1)}, {"content": "gone", "vector": random_vector(2)}]
    )
    Memory.objects.filter(pk=deleted.pk).update(deleted_at=timezone.now())

    assert [r["content"] for r in read_lines(export_file(tmp_path))] == ["live"]
    assert {r["content"] for r in read_lines(export_file(tmp_path, "--include-deleted", name="all.jsonl"))} == {
        "live",
        "gone",
    }


def test_export_of_one_namespace(tmp_path):
    make_memories([{"content": "mine", "vector": random_vector(1)}], namespace="alice")
    make_memories([{"content": "theirs", "vector": random_vector(2)}], namespace="bob")

    lines = read_lines(export_file(tmp_path, "--namespace", "alice"))

    assert [(r["namespace"], r["content"]) for r in lines] == [("alice", "mine")]


def test_export_to_standard_output_keeps_the_summary_off_it():
    make_memories([{"content": f"memory {i}", "vector": random_vector(i)} for i in range(3)])
    out, err = io.StringIO(), io.StringIO()

    call_command("export_memories", "--no-progress", stdout=out, stderr=err)

    assert sorted(json.loads(line)["content"] for line in out.getvalue().splitlines()) == [
        "memory 0",
        "memory 1",
        "memory 2",
    ]
    assert "exported 3 memories to standard output" in err.getvalue()


def test_export_streams_in_chunks_in_id_order():
    make_memories([{"content": f"memory {i}", "vector": random_vector(i)} for i in range(25)])

    records = list(memories_export(chunk_size=4))

    assert [r["id"] for r in records] == sorted(str(i) for i in Memory.objects.values_list("id", flat=True))


def test_an_interrupted_export_leaves_no_file_that_looks_complete(tmp_path, monkeypatch):
    make_memories([{"content": f"memory {i}", "vector": random_vector(i)} for i in range(3)])

    def broken(**kwargs):
        yield {"content": "first"}
        raise RuntimeError("connection lost")

    monkeypatch.setattr("memories.management.commands.export_memories.memories_export", broken)
    with pytest.raises(RuntimeError):
        export_file(tmp_path)

    assert list(tmp_path.iterdir()) == []  # neither the file nor its .partial


@pytest.mark.django_db(transaction=True)
def test_export_streams_through_a_server_side_cursor_that_is_not_materialised():
    make_memories([{"content": f"memory {i}", "vector": random_vector(i)} for i in range(10)])
    records = memories_export(chunk_size=2)

    next(records)
    with connection.cursor() as cursor:
        cursor.execute("SELECT is_holdable FROM pg_cursors")
        cursors = cursor.fetchall()
    remaining = list(records)

    assert cursors == [(False,)]  # a WITH HOLD cursor would be computed whole at commit
    assert len(remaining) == 9
