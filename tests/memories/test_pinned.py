"""Pinned memories: first in bootstrap (within its limit and character budget), never
decayed, never merged away; pinned through PATCH and the admin — against the real
PostgreSQL, with the real bundled model for consolidation."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from memories.models import Memory, Tier
from memories.services.upkeep import memories_apply_decay
from tests.api_paths import ADD, BOOTSTRAP
from tests.factories import make_memories
from tests.responses import bad_fields

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:memories_memory_changelist")
DAY = timedelta(days=1)


def detail(memory_id) -> str:
    return f"/api/v1/memories/{memory_id}/"


def bootstrap(api, **params) -> dict:
    response = api.get(BOOTSTRAP, params)
    assert response.status_code == 200, response.json()
    return {branch: [m["content"] for m in shown] for branch, shown in response.json()["data"]["memories"].items()}


# --- bootstrap ------------------------------------------------------------------------------


def test_a_pinned_memory_opens_bootstrap_even_at_the_lowest_phi(api):
    old = timezone.now() - 400 * DAY
    make_memories(
        [
            {"content": "pinned", "tier": Tier.ACTIVE, "resonance_phi": 0.0, "last_accessed": old, "pinned": True},
            {"content": "stable", "tier": Tier.STABLE, "resonance_phi": 5.0},
            {"content": "thread", "tier": Tier.THREAD, "resonance_phi": 4.0},
            {"content": "active", "tier": Tier.ACTIVE, "resonance_phi": 3.0},
        ],
        with_embeddings=False,
    )

    shown = bootstrap(api)

    assert shown == {"pinned": ["pinned"], "active": ["active"], "thread": ["thread"], "stable": ["stable"]}


def test_pinned_memories_go_by_phi_and_appear_once(api):
    make_memories(
        [
            {"content": "pinned low", "tier": Tier.STABLE, "resonance_phi": 1.0, "pinned": True},
            {"content": "pinned high", "tier": Tier.THREAD, "resonance_phi": 2.0, "pinned": True},
            {"content": "stable", "tier": Tier.STABLE, "resonance_phi": 5.0},
        ],
        with_embeddings=False,
    )

    shown = bootstrap(api)

    assert shown["pinned"] == ["pinned high", "pinned low"]
    assert shown["stable"] == ["stable"] and shown["thread"] == [] and shown["active"] == []


def test_pinned_memories_count_toward_the_limit(api):
    make_memories(
        [{"content": f"pinned {i}", "tier": Tier.ACTIVE, "pinned": True, "resonance_phi": 0.1 * i} for i in range(2)]
        + [{"content": f"stable {i}", "tier": Tier.STABLE, "resonance_phi": 5.0 - i} for i in range(5)],
        with_embeddings=False,
    )

    shown = bootstrap(api, limit=4)

    assert shown["pinned"] == ["pinned 1", "pinned 0"]
    assert shown["stable"] == ["stable 0", "stable 1"]
    assert sum(len(branch) for branch in shown.values()) == 4


def test_pinned_memories_count_toward_max_chars(api):
    pinned = "P" * 40
    make_memories(
        [{"content": pinned, "tier": Tier.ACTIVE, "pinned": True}]
        + [{"content": f"{i}" * 30, "tier": Tier.STABLE, "resonance_phi": 5.0 - i} for i in range(3)],
        with_embeddings=False,
    )

    shown = bootstrap(api, maxChars=70)

    assert shown["pinned"] == [pinned]
    assert shown["stable"] == ["0" * 30]
    assert sum(len(text) for branch in shown.values() for text in branch) == 70


def test_a_deleted_pinned_memory_leaves_bootstrap(api):
    [memory] = make_memories([{"content": "pinned", "pinned": True}], with_embeddings=False)

    api.delete(detail(memory.pk))

    assert bootstrap(api)["pinned"] == []


# --- decay ----------------------------------------------------------------------------------


def test_decay_skips_pinned_memories():
    now = timezone.now()
    idle = {"last_accessed": now - 90 * DAY, "resonance_phi": 2.0}
    make_memories(
        [{"content": "pinned", "pinned": True, **idle}, {"content": "unpinned", **idle}], with_embeddings=False
    )

    assert memories_apply_decay(now=now) == 1

    phi = dict(Memory.objects.values_list("content", "resonance_phi"))
    assert phi == {"pinned": 2.0, "unpinned": pytest.approx(1.9)}
    assert Memory.objects.get(content="pinned").phi_decayed_at is None


# --- consolidation (real model) -------------------------------------------------------------


def test_a_restatement_merges_into_an_older_pinned_memory(api, add):
    older = add("The cat sat on the mat.")
    assert api.patch(detail(older), {"pinned": True}, format="json").status_code == 200

    newer = add("the cat sat on the mat!")

    merged = Memory.objects.get(pk=newer)
    assert str(merged.merged_into_id) == older and merged.deleted_at is not None
    survivor = Memory.objects.get(pk=older)
    assert survivor.pinned and survivor.deleted_at is None
    assert [v["content"] for v in survivor.metadata["semanticVariants"]] == ["the cat sat on the mat!"]


def test_a_pinned_newer_memory_is_linked_not_merged(api, add, post_json, django_capture_on_commit_callbacks):
    older = add("The cat sat on the mat.")
    with django_capture_on_commit_callbacks() as queued:  # consolidation waits, as on a busy worker
        response = post_json(ADD, {"content": "the cat sat on the mat!"})
    newer = response.json()["data"]["memory"]["id"]
    assert api.patch(detail(newer), {"pinned": True}, format="json").status_code == 200

    for task in queued:
        task()

    both = {str(m.pk): m for m in Memory.objects.all()}
    assert set(both) == {older, newer}
    assert all(m.deleted_at is None and m.merged_into_id is None for m in both.values())
    assert [e["id"] for e in both[older].metadata["nearDuplicates"]] == [newer]
    assert [e["id"] for e in both[newer].metadata["nearDuplicates"]] == [older]


# --- pinning --------------------------------------------------------------------------------


def test_patch_pins_and_unpins(api):
    [memory] = make_memories([{"content": "mine"}], with_embeddings=False)

    pinned = api.patch(detail(memory.pk), {"pinned": True}, format="json")

    assert pinned.status_code == 200, pinned.json()
    assert pinned.json()["data"]["memory"]["pinned"] is True
    assert Memory.objects.get(pk=memory.pk).pinned is True
    assert api.patch(detail(memory.pk), {"pinned": False}, format="json").json()["data"]["memory"]["pinned"] is False
    assert Memory.objects.get(pk=memory.pk).pinned is False


@pytest.mark.parametrize("value", ["yes", "true", 1, None, []])
def test_patch_pinned_must_be_a_boolean(api, value):
    [memory] = make_memories([{"content": "mine"}], with_embeddings=False)

    assert bad_fields(api.patch(detail(memory.pk), {"pinned": value}, format="json")) == {"pinned"}
    assert Memory.objects.get(pk=memory.pk).pinned is False


def test_admin_pin_and_unpin_actions(admin_client):
    first, second, other = make_memories(
        [{"content": "first"}, {"content": "second"}, {"content": "other"}], with_embeddings=False
    )
    selected = [str(first.pk), str(second.pk)]

    response = admin_client.post(CHANGELIST, {"action": "pin", "_selected_action": selected}, follow=True)

    assert response.status_code == 200
    assert "Pinned 2 memories." in [str(m) for m in response.context["messages"]]
    assert dict(Memory.objects.values_list("content", "pinned")) == {"first": True, "second": True, "other": False}

    admin_client.post(CHANGELIST, {"action": "unpin", "_selected_action": [str(first.pk)]}, follow=True)

    assert dict(Memory.objects.values_list("content", "pinned")) == {"first": False, "second": True, "other": False}
