"""Semantic consolidation with the real bundled model: re-statements merge, corrections stay."""

import numpy as np
import pytest
from django.core.management import call_command

from memories.models import Memory, MemoryAccess, MemoryAssociation
from memories.services.consolidation import Outcome, memory_consolidate
from tests.factories import make_memories

pytestmark = pytest.mark.django_db


@pytest.fixture
def add_and_consolidate(add):
    """Add through the API; consolidation runs on commit (``add`` of ``tests/memories/conftest.py``)."""
    return add


def _snapshot():
    return (
        list(Memory.objects.order_by("id").values()),
        list(MemoryAccess.objects.order_by("id").values_list("memory_id", "conversation_id")),
    )


@pytest.mark.parametrize(
    "older_text, newer_text",
    [
        ("The cat sat on the mat.", "the cat sat on the mat!"),
        ("My favourite editor is Neovim.", "My favorite editor is Neovim."),
    ],
)
def test_a_restatement_merges_into_the_older_memory(add_and_consolidate, api, post_json, older_text, newer_text):
    older_id = add_and_consolidate(older_text)
    newer_id = add_and_consolidate(newer_text)

    visible = Memory.objects.filter(deleted_at__isnull=True)
    assert [str(m.id) for m in visible] == [older_id]
    survivor = visible.get()
    [variant] = survivor.metadata["semanticVariants"]
    assert variant["content"] == newer_text
    assert variant["wasCatalyst"] is False
    assert 0.9 < variant["similarity"] < 1.0
    assert survivor.resonance_phi == pytest.approx(variant["phiContributed"]) and survivor.resonance_phi > 0
    assert survivor.access_count == 1
    merged = Memory.objects.get(id=newer_id)
    assert str(merged.merged_into_id) == older_id and merged.deleted_at is not None
    response = post_json("/api/v1/memories/update-tier", {"memoryId": newer_id, "tier": "stable"})
    assert response.status_code == 404
    assert response.json()["error"]["details"]["mergedInto"] == older_id


def test_running_consolidation_again_changes_nothing(add_and_consolidate):
    first = add_and_consolidate("The cat sat on the mat.")
    second = add_and_consolidate("the cat sat on the mat!")
    before = _snapshot()

    assert memory_consolidate(memory_id=second) == Outcome.SKIPPED
    assert memory_consolidate(memory_id=first) == Outcome.NO_CANDIDATE
    call_command("consolidate", "--no-progress", stdout=open("/dev/null", "w"))

    assert _snapshot() == before


@pytest.mark.parametrize(
    "first_text, second_text",
    [
        ("Dana is allergic to peanuts.", "Dana is not allergic to peanuts."),
        ("User prefers tabs over spaces.", "User prefers spaces over tabs."),
        ("Meeting with Alice on Monday at 10am.", "Meeting with Alice on Tuesday at 3pm."),
        ("The project's database is PostgreSQL 16.", "The project's database is PostgreSQL 18."),
    ],
)
def test_a_possible_correction_is_linked_not_merged(add_and_consolidate, first_text, second_text):
    first_id = add_and_consolidate(first_text)
    second_id = add_and_consolidate(second_text)

    first, second = Memory.objects.get(id=first_id), Memory.objects.get(id=second_id)
    assert first.deleted_at is None and second.deleted_at is None
    assert [entry["id"] for entry in first.metadata["nearDuplicates"]] == [second_id]
    assert [entry["id"] for entry in second.metadata["nearDuplicates"]] == [first_id]
    assert first.metadata["nearDuplicates"][0]["similarity"] >= 0.95
    assert "semanticVariants" not in first.metadata


def test_linking_twice_lists_the_pair_once(add_and_consolidate):
    first_id = add_and_consolidate("Dana is allergic to peanuts.")
    second_id = add_and_consolidate("Dana is not allergic to peanuts.")

    assert memory_consolidate(memory_id=second_id) == Outcome.LINKED
    assert memory_consolidate(memory_id=first_id) == Outcome.LINKED

    assert len(Memory.objects.get(id=first_id).metadata["nearDuplicates"]) == 1
    assert len(Memory.objects.get(id=second_id).metadata["nearDuplicates"]) == 1


def test_a_pair_below_the_threshold_is_left_alone(add_and_consolidate):
    add_and_consolidate("Deploys happen every Friday afternoon.")
    add_and_consolidate("Deploys happen every Friday afternoon, after the standup.")

    assert Memory.objects.filter(deleted_at__isnull=True).count() == 2
    assert all("nearDuplicates" not in m.metadata for m in Memory.objects.all())


def test_consolidation_can_be_switched_off(add_and_consolidate, settings):
    settings.ANIMA_SEMANTIC_CONSOLIDATION = False
    add_and_consolidate("The cat sat on the mat.")
    add_and_consolidate("the cat sat on the mat!")

    assert Memory.objects.filter(deleted_at__isnull=True).count() == 2


def _vector(seed):
    return np.random.default_rng(seed).standard_normal(384)


def test_a_merge_moves_associations_and_access_rows_and_carries_the_catalyst():
    same = np.ones(384)
    older, newer, other, third = make_memories(
        [
            {"content": "Alice owns the billing service.", "vector": same, "tags": ["billing"], "resonance_phi": 1.0},
            {"content": "alice owns the billing service", "vector": same, "tags": ["owner"], "is_catalyst": True},
            {"content": "Billing deploys on Tuesdays.", "vector": _vector(1)},
            {"content": "Alice is on call this week.", "vector": _vector(2)},
        ]
    )
    # created_at: make_memories makes later specs older; fix the order explicitly.
    Memory.objects.filter(pk=older.pk).update(created_at=newer.created_at.replace(year=2020))

    def pair(x, y, count, contexts):
        a, b = sorted([x.pk, y.pk])
        MemoryAssociation.objects.create(
            namespace="default", memory_a_id=a, memory_b_id=b, co_occurrence_count=count, strength=0,
            conversation_contexts=contexts,
        )

    pair(older, other, 2, ["c1"])
    pair(newer, other, 3, ["c2"])
    pair(newer, third, 1, ["c3"])
    pair(older, newer, 4, ["c4"])
    MemoryAccess.objects.create(memory=newer, conversation_id="seen-newer")

    assert memory_consolidate(memory_id=newer.pk) == Outcome.MERGED

    survivor = Memory.objects.get(pk=older.pk)
    assert survivor.is_catalyst is True
    assert survivor.tags == ["billing", "owner"]
    assert survivor.resonance_phi == pytest.approx(2.0)  # 1.0 + catalyst contribution 1.0 × 1.0 (similarity 1)
    associations = {
        frozenset((a.memory_a_id, a.memory_b_id)): a for a in MemoryAssociation.objects.all()
    }
    assert set(associations) == {frozenset((older.pk, other.pk)), frozenset((older.pk, third.pk))}
    moved = associations[frozenset((older.pk, other.pk))]
    assert moved.co_occurrence_count == 5
    assert moved.strength == pytest.approx(min(1, np.log10(6) / 2))
    assert associations[frozenset((older.pk, third.pk))].co_occurrence_count == 1
    assert set(MemoryAccess.objects.values_list("memory_id", flat=True)) == {older.pk}
    assert MemoryAccess.objects.filter(conversation_id="seen-newer", memory=older).exists()


def test_a_pinned_newer_memory_is_never_merged_away():
    same = np.ones(384)
    newer, older = make_memories(
        [
            {"content": "the cat sat on the mat!", "vector": same, "pinned": True},
            {"content": "The cat sat on the mat.", "vector": same},
        ]
    )

    assert memory_consolidate(memory_id=newer.pk) == Outcome.LINKED
    assert Memory.objects.filter(deleted_at__isnull=True).count() == 2
