"""Export and import of the facts that change (``memories.portability``): the links
(``supersededBy``, ``supersedes``) and the validity (``validFrom``, ``validUntil``,
``expiresAt``) survive a round trip, an old file without them still imports, a bad link
refuses its line (``line N: field: why``, nothing of it written), and after an import
both sides of every correction agree."""

import uuid
from datetime import datetime, timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from memories.models import Memory
from memories.portability import importing, memories_import
from memories.services.adding import BatchItem, memory_add
from memories.services.correcting import memory_correct
from memories.services.supersession import memories_supersede
from tests.api_paths import NAMESPACE_PURGE
from tests.factories import axis, make_memories
from tests.memories.test_portability import (
    export_file,
    import_concurrently,
    import_file,
    memory_snapshot,
    read_lines,
    write_lines,
)

pytestmark = pytest.mark.django_db

NAMESPACE = "facts"
CREATED = "2026-01-01T00:00:00Z"
SUPERSEDED = "2026-02-01T00:00:00Z"
LINK_FIELDS = ("superseded_by_id", "supersedes", "valid_from", "valid_until", "expires_at")


@pytest.fixture
def chain(fake_embedder):
    """A → B → C in ``NAMESPACE``: a fact corrected twice, through ``memory_correct``; A
    had an expiry, C has one; a current memory D beside them."""
    expires = timezone.now() + timedelta(days=30)
    first = memory_add(
        namespace=NAMESPACE, content="The weekly meeting is at 3pm.", expires_at=expires - timedelta(days=60)
    ).memory
    second = memory_correct(
        namespace=NAMESPACE, memory_id=first.pk, item=BatchItem(content="The weekly meeting is at 4pm.")
    ).memory
    third = memory_correct(
        namespace=NAMESPACE,
        memory_id=second.pk,
        item=BatchItem(content="The weekly meeting is at 5pm.", expires_at=expires),
    ).memory
    other = memory_add(namespace=NAMESPACE, content="Dana is allergic to peanuts.").memory
    return [Memory.objects.get(pk=m.pk) for m in (first, second, third, other)]


def links(namespace: str = NAMESPACE) -> dict:
    """content → (supersededBy's content, supersedes' contents, validFrom, validUntil, expiresAt)."""
    memories = {m.pk: m for m in Memory.objects.filter(namespace=namespace)}
    content = {pk: m.content for pk, m in memories.items()}
    return {
        m.content: (
            content.get(m.superseded_by_id),
            [content.get(pk, pk) for pk in m.supersedes],
            m.valid_from,
            m.valid_until,
            m.expires_at,
        )
        for m in memories.values()
    }


def sides_agree() -> bool:
    """Every ``supersededBy`` is listed by its successor, every ``supersedes`` entry points back."""
    rows = {pk: (by, listed) for pk, by, listed in Memory.objects.values_list("pk", "superseded_by_id", "supersedes")}
    return all(by is None or pk in rows[by][1] for pk, (by, _) in rows.items()) and all(
        rows[entry][0] == pk for pk, (_, listed) in rows.items() for entry in listed
    )


def line(content: str, **fields) -> dict:
    return {"content": content, "namespace": NAMESPACE, "createdAt": CREATED, **fields}


def import_lines(tmp_path, lines, **options):
    path = tmp_path / "in.jsonl"
    write_lines(path, lines)
    return memories_import(lines=path.open("rb"), **options)


# --- the export -------------------------------------------------------------------------------


def test_the_export_writes_the_links_and_validity_of_superseded_and_expired_memories(chain, tmp_path):
    first, second, third, _ = chain
    Memory.objects.filter(pk=third.pk).update(expires_at=timezone.now() - timedelta(days=1))  # expired

    records = {r["id"]: r for r in read_lines(export_file(tmp_path, "--namespace", NAMESPACE))}

    assert len(records) == 4  # superseded and expired memories are exported like the others
    assert records[str(first.pk)]["supersededBy"] == str(second.pk)
    assert records[str(second.pk)]["supersededBy"] == str(third.pk)
    assert records[str(third.pk)]["supersededBy"] is None
    assert [records[str(m.pk)]["supersedes"] for m in (first, second, third)] == [[], [str(first.pk)], [str(second.pk)]]
    for memory in (first, second, third):
        record = records[str(memory.pk)]
        assert datetime.fromisoformat(record["validFrom"]) == memory.valid_from
        assert (record["validUntil"] and datetime.fromisoformat(record["validUntil"])) == memory.valid_until
        assert record["validFrom"] == record["createdAt"] and record["validFrom"].endswith("Z")
    assert datetime.fromisoformat(records[str(first.pk)]["expiresAt"]) == first.expires_at
    assert datetime.fromisoformat(records[str(third.pk)]["expiresAt"]) < timezone.now()


# --- the round trip ---------------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", ["500", "1"])
def test_a_chain_of_corrections_survives_export_purge_import(chain, tmp_path, api_key_for, batch_size):
    before, sides = memory_snapshot(), links()
    path = export_file(tmp_path, "--namespace", NAMESPACE, "--with-embeddings")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_for('admin', namespace=NAMESPACE)}")
    purged = api.post(NAMESPACE_PURGE, {"confirm": NAMESPACE}, format="json")
    assert purged.status_code == 200, purged.content
    assert not Memory.objects.exists()

    out, err = import_file(path, "--batch-size", batch_size)

    assert "created 4, duplicates 0, errors 0" in out and err == ""
    assert memory_snapshot() == before  # every column, the links and validity included
    assert links() == sides
    assert sides_agree()


def test_a_chain_imported_into_a_new_namespace_links_the_new_ids(chain, tmp_path):
    first, second, third, _ = chain
    path = export_file(tmp_path, "--namespace", NAMESPACE)

    summary = memories_import(lines=path.open("rb"), namespace="copy")

    assert (summary.created, summary.ids_reassigned, summary.error_count) == (4, 4, 0)
    assert links("copy") == links(NAMESPACE)
    copies = {m.content: m for m in Memory.objects.filter(namespace="copy")}
    assert copies[third.content].supersedes == [copies[second.content].pk]
    assert copies[first.content].superseded_by_id == copies[second.content].pk
    assert Memory.objects.get(pk=third.pk).supersedes == [second.pk]  # the original untouched
    assert sides_agree()


def test_importing_a_chain_into_the_database_it_came_from_changes_nothing(chain, tmp_path):
    path = export_file(tmp_path, "--namespace", NAMESPACE)
    before = memory_snapshot()

    summary = memories_import(lines=path.open("rb"))

    assert (summary.created, summary.duplicates, summary.supersedes_dropped) == (0, 4, 0)
    assert memory_snapshot() == before


def test_one_successor_of_several_keeps_their_order(fake_embedder, tmp_path):
    olds = [memory_add(namespace=NAMESPACE, content=f"old fact {i}").memory for i in range(5)]
    new = memory_add(namespace=NAMESPACE, content="the new fact").memory
    order = [olds[i].pk for i in (3, 0, 4, 1, 2)]
    memories_supersede(namespace=NAMESPACE, successor_id=new.pk, predecessor_ids=order)
    path = export_file(tmp_path, "--namespace", NAMESPACE)
    before = memory_snapshot()
    Memory.objects.all().delete()

    memories_import(lines=path.open("rb"), batch_size=2)

    assert memory_snapshot() == before
    assert Memory.objects.get(pk=new.pk).supersedes == order


# --- old files ------------------------------------------------------------------------------


def test_a_line_written_before_the_facts_that_change_gets_their_defaults(tmp_path, fake_embedder):
    old_format = line("an old memory", id=str(uuid.uuid4()), updatedAt=CREATED, mergedInto=None)

    summary = import_lines(tmp_path, [old_format])

    assert (summary.created, summary.error_count) == (1, 0)
    memory = Memory.objects.get()
    assert (memory.superseded_by_id, memory.supersedes, memory.valid_until, memory.expires_at) == (None, [], None, None)
    assert memory.valid_from == memory.created_at
    assert memory.created_at.isoformat() == "2026-01-01T00:00:00+00:00"


# --- links in the file ----------------------------------------------------------------------


def test_a_successor_later_in_the_file_is_linked(tmp_path, fake_embedder):
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    lines = [
        line("A", id=str(a), supersededBy=str(b), validUntil=SUPERSEDED),
        line("B", id=str(b), supersededBy=str(c), validUntil="2026-03-01T00:00:00Z", supersedes=[str(a)]),
        line("C", id=str(c), supersedes=[str(b)], expiresAt="2027-01-01T00:00:00+01:00"),
    ]

    summary = import_lines(tmp_path, lines, batch_size=1)

    assert (summary.created, summary.error_count, summary.supersedes_dropped) == (3, 0, 0)
    stored = {m.pk: m for m in Memory.objects.all()}
    assert (stored[a].superseded_by_id, stored[b].superseded_by_id, stored[c].superseded_by_id) == (b, c, None)
    assert (stored[a].supersedes, stored[b].supersedes, stored[c].supersedes) == ([], [a], [b])
    assert stored[a].valid_until.isoformat() == "2026-02-01T00:00:00+00:00"
    assert stored[c].expires_at.isoformat() == "2026-12-31T23:00:00+00:00"


def test_a_successor_stored_before_the_import_lists_the_new_memory(tmp_path, fake_embedder):
    successor = memory_add(namespace=NAMESPACE, content="the stored successor").memory
    updated = Memory.objects.get(pk=successor.pk).updated_at

    summary = import_lines(tmp_path, [line("old", supersededBy=str(successor.pk), validUntil=SUPERSEDED)])

    assert (summary.created, summary.error_count) == (1, 0)
    old = Memory.objects.get(content="old")
    stored = Memory.objects.get(pk=successor.pk)
    assert (old.superseded_by_id, stored.supersedes) == (successor.pk, [old.pk])
    assert stored.updated_at == updated


def test_only_superseded_by_given_derives_the_successors_list(tmp_path, fake_embedder):
    new = uuid.uuid4()
    lines = [line("old", supersededBy=str(new), validUntil=SUPERSEDED), line("new", id=str(new))]

    import_lines(tmp_path, lines)

    assert Memory.objects.get(pk=new).supersedes == [Memory.objects.get(content="old").pk]
    assert sides_agree()


def test_only_supersedes_given_derives_the_link_and_its_end(tmp_path, fake_embedder):
    old, new = uuid.uuid4(), uuid.uuid4()
    lines = [
        line("new", id=str(new), supersedes=[str(old)], validFrom="2026-03-01T00:00:00Z"),
        line("old", id=str(old)),
    ]

    summary = import_lines(tmp_path, lines, batch_size=1)

    assert (summary.created, summary.error_count, summary.supersedes_dropped) == (2, 0, 0)
    stored = Memory.objects.get(pk=old)
    assert stored.superseded_by_id == new
    assert stored.valid_until.isoformat() == "2026-03-01T00:00:00+00:00"  # when the successor became valid
    assert Memory.objects.get(pk=new).supersedes == [old]


def test_supersedes_entries_that_cannot_agree_are_left_out_and_counted(tmp_path, fake_embedder):
    elsewhere = memory_add(namespace="other", content="someone else's").memory
    a, b, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    lines = [
        line("A", id=str(a), supersededBy=str(other), validUntil=SUPERSEDED),
        line("other successor", id=str(other)),
        # A is superseded by another; the rest name no memory of the namespace.
        line("B", id=str(b), supersedes=[str(a), str(uuid.uuid4()), str(elsewhere.pk)]),
    ]
    path = tmp_path / "in.jsonl"
    write_lines(path, lines)

    out, err = import_file(path)

    assert "created 3, duplicates 0, errors 0" in out and err == ""
    assert "3 supersedes entries left out" in out
    assert Memory.objects.get(pk=b).supersedes == []
    assert Memory.objects.get(pk=a).superseded_by_id == other
    assert Memory.objects.get(pk=elsewhere.pk).superseded_by_id is None
    assert sides_agree()


def test_supersedes_that_would_close_a_cycle_is_left_out(tmp_path, fake_embedder):
    a, b = uuid.uuid4(), uuid.uuid4()
    lines = [line("A", id=str(a), supersedes=[str(b)]), line("B", id=str(b), supersedes=[str(a)])]

    summary = import_lines(tmp_path, lines)

    assert (summary.created, summary.error_count, summary.supersedes_dropped) == (2, 0, 1)
    assert dict(Memory.objects.values_list("pk", "superseded_by_id")) == {a: None, b: a}
    assert sides_agree()


def test_an_import_interrupted_before_the_final_pass_is_completed_by_a_rerun(tmp_path, fake_embedder, monkeypatch):
    old, new = uuid.uuid4(), uuid.uuid4()
    path = tmp_path / "in.jsonl"
    write_lines(path, [line("new", id=str(new), supersedes=[str(old)]), line("old", id=str(old))])

    def dies(self):
        raise RuntimeError("connection lost")

    with monkeypatch.context() as patch:
        patch.setattr(importing._Importer, "agree", dies)
        with pytest.raises(importing.ImportInterrupted):
            memories_import(lines=path.open("rb"))
    assert Memory.objects.get(pk=old).superseded_by_id is None

    again = memories_import(lines=path.open("rb"))

    assert (again.created, again.duplicates) == (0, 2)
    assert Memory.objects.get(pk=old).superseded_by_id == new
    assert sides_agree()


# --- bad lines ------------------------------------------------------------------------------

A, B = uuid.UUID(int=1), uuid.UUID(int=2)
#: A memory of another namespace (stored by the test).
ELSEWHERE = uuid.UUID(int=99)
BAD_LINES = [
    pytest.param(
        [line("bad", supersededBy=str(uuid.UUID(int=7)), validUntil=SUPERSEDED)],
        "supersededBy: names no memory of this namespace, stored or in the file",
        id="unknown-id",
    ),
    pytest.param(
        [line("bad", supersededBy=str(ELSEWHERE), validUntil=SUPERSEDED)],
        "supersededBy: names a memory of another namespace",
        id="another-namespace",
    ),
    pytest.param(
        [line("bad", id=str(A), supersededBy=str(A), validUntil=SUPERSEDED)],
        "supersededBy: names the line itself",
        id="itself",
    ),
    pytest.param(
        [
            line("bad", id=str(A), supersededBy=str(B), validUntil=SUPERSEDED),
            line("bad too", id=str(B), supersededBy=str(A), validUntil=SUPERSEDED),
        ],
        "supersededBy: the chain of corrections loops or ends at a line that was not stored",
        id="two-cycle",
    ),
    pytest.param([line("bad", validUntil="yesterday")], "validUntil: 'yesterday' is not an ISO 8601", id="bad-until"),
    pytest.param([line("bad", validFrom=12)], "validFrom: must be an ISO 8601 timestamp string", id="bad-from"),
    pytest.param([line("bad", validFrom=None)], "validFrom: must be a timestamp, not null", id="null-from"),
    pytest.param([line("bad", expiresAt="soon")], "expiresAt: 'soon' is not an ISO 8601", id="bad-expiry"),
    pytest.param(
        [line("bad", supersededBy=str(B))],
        "validUntil: required with supersededBy (when the memory was superseded)",
        id="superseded-without-until",
    ),
    pytest.param(
        [line("bad", validUntil="2025-01-01T00:00:00Z")], "validUntil: before validFrom", id="until-before-from"
    ),
    pytest.param([line("bad", supersedes=str(B))], "supersedes: must be a list of UUID strings", id="not-a-list"),
    pytest.param([line("bad", supersedes=["nope"])], "supersedes: 'nope' is not a UUID", id="not-a-uuid"),
    pytest.param([line("bad", supersedes=[7])], "supersedes: must be a UUID string", id="not-a-string"),
    pytest.param([line("bad", id=str(A), supersedes=[str(A)])], "supersedes: names the line itself", id="lists-itself"),
    pytest.param(
        [line("bad", supersededBy=str(B), validUntil=SUPERSEDED, supersedes=[str(B)])],
        f"supersedes: lists {B}, which supersededBy names: a cycle",
        id="one-line-cycle",
    ),
]


@pytest.mark.parametrize("bad, message", BAD_LINES)
def test_a_bad_link_or_validity_refuses_its_line_and_writes_nothing_of_it(tmp_path, fake_embedder, bad, message):
    make_memories([{"id": ELSEWHERE, "content": "someone else's", "vector": axis(0)}], namespace="other")
    # supersededBy=B names a stored memory: a good line naming it would be linked.
    make_memories([{"id": B, "content": "B stored", "vector": axis(1)}], namespace=NAMESPACE)
    before = memory_snapshot()
    path = tmp_path / "bad.jsonl"
    write_lines(path, [line("good one"), *bad, line("good two")])

    out, err = import_file(path)

    bad_numbers = list(range(2, 2 + len(bad)))
    assert [f"{path}: line {n}: {message}" in err for n in bad_numbers] == [True] * len(bad), err
    assert f"created 2, duplicates 0, errors {len(bad)}" in out
    assert not Memory.objects.filter(content__startswith="bad").exists()
    after = memory_snapshot()
    assert {pk: row for pk, row in after.items() if pk in before} == before  # B's supersedes untouched
    assert sides_agree()


def test_a_refused_successor_line_links_nothing(tmp_path, fake_embedder):
    stored = memory_add(namespace=NAMESPACE, content="a stored memory").memory

    summary = import_lines(tmp_path, [line("bad", supersedes=[str(stored.pk)], validUntil="never")])

    assert [str(e) for e in summary.errors] == ["line 1: validUntil: 'never' is not an ISO 8601 timestamp"]
    assert Memory.objects.get(pk=stored.pk).superseded_by_id is None


@pytest.mark.django_db(transaction=True)
def test_concurrent_imports_of_a_file_of_corrections_link_each_memory_once(tmp_path, fake_embedder):
    ids = [uuid.uuid4() for _ in range(40)]
    fields = [{"id": str(memory_id)} for memory_id in ids]
    for i in range(len(ids)):  # chains of four; a link given by both sides, or by either alone
        if i % 4 != 3:
            if i % 3 != 2:
                fields[i] |= {"supersededBy": str(ids[i + 1]), "validUntil": SUPERSEDED}
            if i % 3 != 1:
                fields[i + 1]["supersedes"] = [str(ids[i])]
    lines = [line(f"fact {i}", **given) for i, given in enumerate(fields)]
    path = tmp_path / "in.jsonl"
    write_lines(path, lines)

    summaries, failures = import_concurrently(path, batch_size=3)

    assert failures == []
    assert sum(s.created for s in summaries) == 40
    assert all(s.error_count == 0 and s.supersedes_dropped == 0 for s in summaries)
    stored = {m.pk: m for m in Memory.objects.all()}
    for i, memory_id in enumerate(ids):
        assert stored[memory_id].superseded_by_id == (ids[i + 1] if i % 4 != 3 else None)
        assert stored[memory_id].supersedes == ([ids[i - 1]] if i % 4 else [])
    assert sides_agree()
