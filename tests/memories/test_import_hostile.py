"""Imports that cannot brick a namespace: a hostile line is reported with its line number
and field, nothing of it is written, and afterwards the namespace still lists, queries,
exports and purges (2xx). An interrupted import resumes without duplicates."""

import io
import json
import os
import uuid

import pytest
from django.core.management import CommandError, call_command

from memories.models import Memory, MemoryEmbedding
from memories.portability import importing, memories_import
from tests.api_paths import QUERY
from tests.api_paths import MEMORIES as LIST, NAMESPACE_PURGE as PURGE
from tests.factories import DIM as DIMENSIONS, MODEL, make_memories

pytestmark = pytest.mark.django_db

PAST_9999 = "9999-12-31T23:59:59-12:00"
BEFORE_YEAR_1 = "0001-01-01T00:00:00+14:00"
GONE = "2026-01-01T00:00:00Z"
BEFORE = "2025-01-01T00:00:00Z"
DATETIME_KEYS = [
    "createdAt", "occurredAt", "lastAccessed", "tierLastUpdated", "phiDecayedAt", "updatedAt", "deletedAt",
    "validFrom", "validUntil", "expiresAt",
]  # fmt: skip


def line(**fields) -> str:
    return json.dumps({"content": "the hostile memory", **fields})


def raw(fields: str) -> str:
    """A hostile line written as JSON text (escapes such as ``\\ud800`` kept as written)."""
    return '{"content": "the hostile memory", ' + fields + "}"


def nested(depth: int) -> str:
    return '{"a":' * (depth - 1) + "1" + "}" * (depth - 1)


def vector_line(values, *, model=MODEL) -> str:
    fields = {"embedding": values} if model is None else {"embedding": values, "embeddingModel": model}
    return line(**fields)


HOSTILE = [
    pytest.param(line(createdAt=PAST_9999), "createdAt", id="created-past-9999-in-utc"),
    pytest.param(line(createdAt=BEFORE_YEAR_1), "createdAt", id="created-before-year-1-in-utc"),
    *[
        pytest.param(line(**{key: value}), key, id=f"{key}-{name}")
        for key in DATETIME_KEYS[1:]
        for name, value in (("past-9999", PAST_9999), ("before-1", BEFORE_YEAR_1))
    ],
    pytest.param(raw('"resonancePhi": NaN'), "resonancePhi", id="nan-literal"),
    pytest.param(raw('"metadata": {"x": Infinity}'), "metadata.x", id="infinity-literal"),
    pytest.param(raw('"metadata": {"x": -Infinity}'), "metadata.x", id="-infinity"),
    pytest.param(raw('"metadata": {"big": 1e400}'), "metadata.big", id="1e400-metadata"),
    pytest.param(raw('"resonancePhi": 1e400'), "resonancePhi", id="1e400-phi"),
    pytest.param('{"content": "the hostile\\u0000 memory"}', "content", id="nul-in-content"),
    pytest.param('{"content": "the hostile\\ud800 memory"}', "content", id="lone-surrogate-in-content"),
    pytest.param(raw('"metadata": {"k\\u0000": 1}'), "metadata", id="nul-in-meta-key"),
    pytest.param(raw('"metadata": {"k": "\\u0000"}'), "metadata.k", id="nul-in-meta-value"),
    pytest.param(raw('"metadata": {"\\ud800": 1}'), "metadata", id="surrogate-meta-key"),
    pytest.param(raw('"metadata": {"k": "\\udc00"}'), "metadata.k", id="surrogate-meta-value"),
    pytest.param(raw('"tags": ["\\ud800"]'), "tags", id="surrogate-in-tag"),
    pytest.param(raw('"category": "c\\u0000"'), "category", id="nul-in-category"),
    pytest.param(raw('"source": "\\udfff"'), "source", id="surrogate-in-source"),
    pytest.param(raw('"metadata": ' + nested(40)), "metadata", id="metadata-depth-40"),
    pytest.param(
        raw('"metadata": ' + nested(5000)),
        "not valid JSON (the JSON is nested too deeply)",
        id="metadata-depth-5000",
    ),
    pytest.param(line(metadata={"pad": "x" * 70_000}), "metadata", id="metadata-too-large"),
    pytest.param(line(tier="dormant"), "tier", id="unknown-tier"),
    pytest.param(line(namespace="team\n"), "namespace: Invalid namespace 'team\\n'", id="namespace-trailing-newline"),
    pytest.param(line(resonancePhi=5.5), "resonancePhi", id="phi-above-range"),
    pytest.param(line(accessCount=2**40), "accessCount", id="access-count-too-large"),
    pytest.param(vector_line([0.0] * DIMENSIONS), "embedding", id="zero-vector"),
    pytest.param(vector_line([1e-30] * DIMENSIONS), "embedding", id="vector-norm-underflows"),
    pytest.param(vector_line([1e30] * DIMENSIONS), "embedding", id="vector-norm-overflows"),
    pytest.param(vector_line([0.1] * 3), "embedding", id="wrong-dimension"),
    pytest.param(vector_line([0.1] * 3, model=None), "embedding", id="wrong-dimension-no-model"),
    pytest.param(
        raw('"embeddingModel": "%s", "embedding": [1e400%s]' % (MODEL, ", 0.1" * (DIMENSIONS - 1))),
        "embedding",
        id="non-finite-vector",
    ),
    pytest.param(line(mergedInto=str(uuid.UUID(int=7)), deletedAt=GONE), "mergedInto", id="merge-to-unknown-id"),
    pytest.param(
        line(supersededBy=str(uuid.UUID(int=7)), createdAt=BEFORE, validUntil=GONE),
        "supersededBy",
        id="superseded-by-unknown-id",
    ),
    pytest.param(line(supersededBy=str(uuid.UUID(int=7))), "validUntil", id="superseded-without-valid-until"),
    pytest.param(line(supersedes=["x" * 100_000]), "supersedes", id="supersedes-not-a-uuid"),
]


def write(path, lines) -> None:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def import_file(path, *args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_memories", str(path), "--no-progress", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def row_counts() -> tuple[int, int]:
    return Memory.objects.count(), MemoryEmbedding.objects.count()


def assert_namespace_reads(api, tmp_path, namespace="default") -> None:
    """List, query, export and purge of the namespace all succeed."""
    listed = api.get(LIST)
    assert listed.status_code == 200, listed.content
    queried = api.post(QUERY, {"query": "the hostile memory"}, format="json")
    assert queried.status_code == 200, queried.content
    out = tmp_path / "after.jsonl"
    call_command(
        "export_memories", "-o", str(out), "--namespace", namespace, "--include-deleted", "--with-embeddings",
        "--no-progress", stdout=io.StringIO(),
    )  # fmt: skip
    assert all(json.loads(text)["namespace"] == namespace for text in out.read_text().splitlines())
    purged = api.post(PURGE, {"confirm": namespace}, format="json")
    assert purged.status_code == 200, purged.content
    assert not Memory.objects.filter(namespace=namespace).exists()


@pytest.mark.parametrize("hostile, field", HOSTILE)
def test_a_hostile_line_is_reported_written_nowhere_and_the_namespace_still_reads(
    tmp_path, fake_embedder, api, hostile, field
):
    make_memories([{"content": "stored before the import", "vector": [1.0] + [0.0] * (DIMENSIONS - 1)}])
    path = tmp_path / "hostile.jsonl"
    write(path, [line(content="good line one"), hostile, line(content="good line three")])
    before = row_counts()

    out, err = import_file(path)

    assert f"{path}: line 2: {field}" in err, err
    assert "created 2, duplicates 0, errors 1 (lines 2)" in out
    assert row_counts() == (before[0] + 2, before[1] + 2)
    assert not Memory.objects.filter(content__startswith="the hostile").exists()
    assert_namespace_reads(api, tmp_path)


@pytest.mark.parametrize("value", [PAST_9999, BEFORE_YEAR_1])
def test_out_of_range_datetimes_name_the_rule(tmp_path, fake_embedder, value):
    path = tmp_path / "dates.jsonl"
    write(path, [line(content="fine"), line(createdAt=value)])

    summary = memories_import(lines=path.open("rb"))

    assert [str(e) for e in summary.errors] == ["line 2: createdAt: must be between years 1 and 9999 in UTC"]


def test_the_last_datetimes_inside_the_range_are_stored(tmp_path, fake_embedder, api):
    path = tmp_path / "edges.jsonl"
    write(
        path,
        [
            line(content="last moment", createdAt="9999-12-31T23:59:59.999999+00:00"),
            line(content="first moment", createdAt="0001-01-01T00:00:00-01:00"),
        ],
    )

    summary = memories_import(lines=path.open("rb"))

    assert (summary.created, summary.error_count) == (2, 0), summary.errors
    assert_namespace_reads(api, tmp_path)


def test_a_merge_into_another_namespace_is_refused(tmp_path, fake_embedder, api):
    (elsewhere,) = make_memories([{"content": "someone else's", "vector": [1.0] * DIMENSIONS}], namespace="other")
    path = tmp_path / "merge.jsonl"
    write(
        path,
        [
            line(content="fine"),
            line(content="merged across", deletedAt=GONE, mergedInto=str(elsewhere.id)),
        ],
    )
    before = row_counts()

    out, err = import_file(path)

    assert f"{path}: line 2: mergedInto: names a memory of another namespace" in err
    assert row_counts() == (before[0] + 1, before[1] + 1)
    assert Memory.objects.get(id=elsewhere.id).merged_variants.count() == 0
    assert_namespace_reads(api, tmp_path)


def test_a_merge_into_another_namespace_named_in_the_file_is_refused(tmp_path, fake_embedder):
    survivor = uuid.uuid4()
    path = tmp_path / "merge.jsonl"
    write(
        path,
        [
            line(content="merged across", namespace="alice", deletedAt=GONE, mergedInto=str(survivor)),
            line(content="the survivor", namespace="bob", id=str(survivor)),
        ],
    )

    summary = memories_import(lines=path.open("rb"))

    assert [str(e) for e in summary.errors] == ["line 1: mergedInto: names a memory of another namespace"]
    assert list(Memory.objects.values_list("content", flat=True)) == ["the survivor"]


ONE, TWO, SELF = uuid.UUID(int=11), uuid.UUID(int=12), uuid.UUID(int=13)


@pytest.mark.parametrize(
    "lines, fields",
    [
        pytest.param(
            [
                line(content="one", id=str(ONE), deletedAt=GONE, mergedInto=str(TWO)),
                line(content="two", id=str(TWO), deletedAt=GONE, mergedInto=str(ONE)),
                line(content="self", id=str(SELF), deletedAt=GONE, mergedInto=str(SELF)),
            ],
            ["mergedInto", "mergedInto", "mergedInto"],
            id="merges",
        ),
        pytest.param(
            [
                line(content="one", id=str(ONE), deletedAt=GONE, mergedInto=str(TWO)),
                line(content="two", id=str(TWO), supersededBy=str(ONE), createdAt=BEFORE, validUntil=GONE),
            ],
            ["mergedInto", "supersededBy"],
            id="a-merge-and-a-correction",
        ),
    ],
)
def test_a_chain_of_links_that_loops_is_refused(tmp_path, fake_embedder, lines, fields):
    path = tmp_path / "loop.jsonl"
    write(path, lines)

    summary = memories_import(lines=path.open("rb"))

    assert [(e.line, e.message.split(":")[0]) for e in summary.errors] == list(enumerate(fields, start=1))
    assert all("loops or ends at a line that was not stored" in e.message for e in summary.errors)
    assert Memory.objects.count() == 0


def test_a_merge_chain_inside_the_file_is_linked_in_any_order(tmp_path, fake_embedder):
    head, middle, tail = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    path = tmp_path / "chain.jsonl"
    write(
        path,
        [
            line(content="tail", id=str(tail), deletedAt=GONE, mergedInto=str(middle)),
            line(content="middle", id=str(middle), deletedAt=GONE, mergedInto=str(head)),
            line(content="head", id=str(head)),
        ],
    )

    summary = memories_import(lines=path.open("rb"), batch_size=1)

    assert (summary.created, summary.error_count) == (3, 0), summary.errors
    assert dict(Memory.objects.values_list("id", "merged_into_id")) == {tail: middle, middle: head, head: None}


def test_a_deep_line_after_full_batches_is_reported_and_the_import_finishes(tmp_path, fake_embedder):
    path = tmp_path / "deep.jsonl"
    good = [line(content=f"memory {i}") for i in range(12)]
    write(path, [*good[:10], '{"content": "deep", "metadata": ' + nested(5000) + "}", *good[10:]])

    out, err = import_file(path, "--batch-size", "5")

    assert "line 11: not valid JSON" in err and "nested too deeply" in err
    assert "created 12, duplicates 0, errors 1 (lines 11)" in out
    assert Memory.objects.count() == 12


# --- resuming ---------------------------------------------------------------------------------


def test_importing_the_first_half_then_the_whole_file_creates_each_memory_once(tmp_path, fake_embedder):
    (holder,) = make_memories([{"content": "already here", "vector": [1.0] * DIMENSIONS}])
    survivor = uuid.uuid4()
    lines = [line(content=f"memory {i}", id=str(uuid.uuid4())) for i in range(20)]
    lines += [
        # A deleted memory whose exported id another memory holds: only its id could find
        # it again, so the new id is derived from the line, not drawn at random.
        line(content="deleted, id taken", deletedAt=GONE, id=str(holder.id)),
        line(content="merged", deletedAt=GONE, mergedInto=str(survivor)),
        line(content="the survivor", id=str(survivor)),
    ]
    half, whole = tmp_path / "half.jsonl", tmp_path / "whole.jsonl"
    write(half, lines[:11])
    write(whole, lines)

    first = memories_import(lines=half.open("rb"), batch_size=4)
    second = memories_import(lines=whole.open("rb"), batch_size=4)
    third = memories_import(lines=whole.open("rb"), batch_size=4)

    assert (first.created, second.created, second.duplicates) == (11, 12, 11)
    assert (third.created, third.duplicates, third.error_count) == (0, 23, 0)
    assert Memory.objects.count() == MemoryEmbedding.objects.count() == 24
    assert Memory.objects.get(content="merged").merged_into_id == survivor
    assert Memory.objects.get(id=holder.id).content == "already here"


def test_an_import_that_dies_mid_way_prints_its_summary_and_a_rerun_finishes_it(tmp_path, fake_embedder, monkeypatch):
    path = tmp_path / "in.jsonl"
    write(path, [line(content=f"memory {i}") for i in range(25)])
    original, calls = importing._Importer._insert, []

    def dies_on_the_third_batch(self, rows):
        calls.append(len(rows))
        if len(calls) == 3:
            raise RuntimeError("connection lost")
        return original(self, rows)

    monkeypatch.setattr(importing._Importer, "_insert", dies_on_the_third_batch)
    err = io.StringIO()

    with pytest.raises(CommandError, match="interrupted at line 2[0-9].*RuntimeError: connection lost"):
        call_command(
            "import_memories", str(path), "--no-progress", "--batch-size", "10", stdout=io.StringIO(), stderr=err
        )
    assert "created 20, duplicates 0, errors 0" in err.getvalue()
    assert Memory.objects.count() == 20

    out, _ = import_file(path, "--batch-size", "10")

    assert "created 5, duplicates 20, errors 0" in out
    assert Memory.objects.count() == MemoryEmbedding.objects.count() == 25


# --- the export file -------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o000, 0o022])
def test_the_export_file_is_readable_by_its_owner_only(tmp_path, fake_embedder, umask):
    make_memories([{"content": "private", "vector": [1.0] * DIMENSIONS}])
    path = tmp_path / "out.jsonl"
    path.write_text("an older export")
    path.chmod(0o644)
    (tmp_path / "out.jsonl.partial").write_text("a stale partial file")
    (tmp_path / "out.jsonl.partial").chmod(0o666)
    previous = os.umask(umask)
    try:
        call_command("export_memories", "-o", str(path), "--no-progress", stdout=io.StringIO())
    finally:
        os.umask(previous)

    assert path.stat().st_mode & 0o777 == 0o600
    assert json.loads(path.read_text())["content"] == "private"


def test_a_partial_file_planted_as_a_hard_link_leaves_its_target_untouched(tmp_path, fake_embedder):
    make_memories([{"content": "private", "vector": [1.0] * DIMENSIONS}])
    victim = tmp_path / "someone-elses.txt"
    victim.write_text("their data")
    victim.chmod(0o644)
    path = tmp_path / "out.jsonl"
    os.link(victim, tmp_path / "out.jsonl.partial")

    call_command("export_memories", "-o", str(path), "--no-progress", stdout=io.StringIO())

    assert victim.read_text() == "their data"
    assert victim.stat().st_mode & 0o777 == 0o644
    assert victim.stat().st_nlink == 1
    assert json.loads(path.read_text())["content"] == "private"
    assert path.stat().st_mode & 0o777 == 0o600
