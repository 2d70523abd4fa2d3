"""Moving memories between tiers by hand: ``POST /memories/update-tier`` and the bulk service."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from memories.models import Memory, Tier, TierPromotion
from memories.services.tiers import MESSAGE_UNCHANGED, memories_update_tier
from tests.api_paths import UPDATE_TIER
from tests.factories import make_memories

pytestmark = pytest.mark.django_db


def one(**fields) -> Memory:
    [memory] = make_memories([{"content": "m", **fields}], with_embeddings=False)
    return memory


def test_unknown_memory_is_memory_not_found(post_json):
    unknown = uuid.uuid4()

    response = post_json(UPDATE_TIER, {"memoryId": str(unknown), "tier": "stable"})

    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "MEMORY_NOT_FOUND"
    assert error["details"]["memoryId"] == str(unknown)
    assert "mergedInto" not in error["details"]


def test_merged_memory_is_not_found_and_names_the_survivor(post_json):
    survivor, merged = make_memories([{"content": "older"}, {"content": "newer"}], with_embeddings=False)
    Memory.objects.filter(pk=merged.pk).update(deleted_at=timezone.now(), merged_into=survivor)

    response = post_json(UPDATE_TIER, {"memoryId": str(merged.id), "tier": "stable"})

    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "MEMORY_NOT_FOUND"
    assert error["details"]["mergedInto"] == str(survivor.id)
    assert TierPromotion.objects.count() == 0


def test_memory_of_another_namespace_is_not_found(post_json):
    memory = one(namespace="other")

    response = post_json(UPDATE_TIER, {"memoryId": str(memory.id), "tier": "stable"})

    assert response.status_code == 404
    memory.refresh_from_db()
    assert memory.tier == Tier.ACTIVE


@pytest.mark.parametrize("tier", ["archive", "Stable"])
def test_unknown_tier_is_invalid_tier(post_json, tier):
    memory = one()

    response = post_json(UPDATE_TIER, {"memoryId": str(memory.id), "tier": tier})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_TIER"
    memory.refresh_from_db()
    assert memory.tier == Tier.ACTIVE


@pytest.mark.parametrize(
    "body, field",
    [
        ({"memoryId": "not-a-uuid", "tier": "stable"}, "memoryId"),
        ({"tier": "stable"}, "memoryId"),
        ({"memoryId": "{id}"}, "tier"),
        ({"memoryId": "{id}", "tier": 3}, "tier"),
        ({"memoryId": "{id}", "tier": "stable", "reason": "r" * 201}, "reason"),
        ({"memoryId": "{id}", "tier": "stable", "reason": ""}, "reason"),
        ({"memoryId": "{id}", "tier": "stable", "memory_id": "x"}, "memory_id"),
    ],
)
def test_bad_update_tier_body_is_a_validation_error_naming_the_field(post_json, body, field):
    memory = one()
    body = {key: str(memory.id) if value == "{id}" else value for key, value in body.items()}

    response = post_json(UPDATE_TIER, body)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert field in error["details"]["fields"]
    assert TierPromotion.objects.count() == 0


def test_same_tier_changes_nothing_and_says_so(post_json):
    memory = one(tier=Tier.THREAD)

    response = post_json(UPDATE_TIER, {"memoryId": str(memory.id), "tier": "thread"})

    assert response.status_code == 200
    data = response.json()["data"]
    assert data["promotion"] is None
    assert data["message"] == MESSAGE_UNCHANGED
    assert "already at the target tier" in data["message"]
    assert data["memory"]["tier"] == "thread"
    assert TierPromotion.objects.count() == 0


def test_move_changes_the_tier_and_writes_one_manual_audit_row(post_json):
    memory = one(access_count=3)

    response = post_json(UPDATE_TIER, {"memoryId": str(memory.id), "tier": "stable"})

    assert response.status_code == 200
    data = response.json()["data"]
    assert data["memory"]["id"] == str(memory.id)
    assert data["memory"]["tier"] == "stable"
    assert data["promotion"]["fromTier"] == "active"
    assert data["promotion"]["toTier"] == "stable"
    assert data["promotion"]["reason"] == "manual"
    assert data["promotion"]["accessCountAtPromotion"] == 3
    memory.refresh_from_db()
    assert memory.tier == Tier.STABLE
    audit = list(
        TierPromotion.objects.values_list("memory_id", "from_tier", "to_tier", "reason", "access_count_at_promotion")
    )
    assert audit == [(memory.id, "active", "stable", "manual", 3)]


def test_move_records_the_given_reason(post_json):
    memory = one(tier=Tier.STABLE)

    response = post_json(UPDATE_TIER, {"memoryId": str(memory.id), "tier": "active", "reason": "r" * 200})

    assert response.status_code == 200
    assert response.json()["data"]["promotion"]["reason"] == "r" * 200
    audit = list(TierPromotion.objects.values_list("from_tier", "to_tier", "reason"))
    assert audit == [("stable", "active", "r" * 200)]


def test_move_updates_tier_last_updated(post_json):
    long_ago = timezone.now() - timedelta(days=3)
    memory = one(tier_last_updated=long_ago)

    post_json(UPDATE_TIER, {"memoryId": str(memory.id), "tier": "network"})

    memory.refresh_from_db()
    assert memory.tier == Tier.NETWORK
    assert memory.tier_last_updated > long_ago


# The bulk service (the admin action)


def test_bulk_move_touches_only_live_memories_not_already_there():
    moving, already, deleted, elsewhere = make_memories(
        [
            {"content": "moving"},
            {"content": "already", "tier": Tier.STABLE},
            {"content": "deleted", "deleted_at": timezone.now()},
            {"content": "elsewhere", "namespace": "other"},
        ],
        with_embeddings=False,
    )

    moved = memories_update_tier(
        namespace="default", memory_ids=[m.id for m in (moving, already, deleted, elsewhere)], tier=Tier.STABLE
    )

    assert moved == 1
    tiers = dict(Memory.objects.values_list("content", "tier"))
    assert tiers == {"moving": "stable", "already": "stable", "deleted": "active", "elsewhere": "active"}
    audit = list(TierPromotion.objects.values_list("memory_id", "from_tier", "to_tier", "reason"))
    assert audit == [(moving.id, "active", "stable", "manual")]


def test_bulk_move_across_namespaces_writes_one_audit_row_each():
    first, second, third = make_memories(
        [
            {"content": "a", "tier": Tier.ACTIVE},
            {"content": "b", "tier": Tier.THREAD, "namespace": "other"},
            {"content": "c", "tier": Tier.NETWORK},
        ],
        with_embeddings=False,
    )

    moved = memories_update_tier(
        namespace=None, memory_ids=[first.id, second.id, third.id], tier=Tier.STABLE, reason="cleanup"
    )

    assert moved == 3
    assert set(Memory.objects.values_list("tier", flat=True)) == {"stable"}
    audit = set(TierPromotion.objects.values_list("memory_id", "from_tier", "to_tier", "reason"))
    assert audit == {
        (first.id, "active", "stable", "cleanup"),
        (second.id, "thread", "stable", "cleanup"),
        (third.id, "network", "stable", "cleanup"),
    }
