"""``AttributeOutput`` shows exactly what DRF's own ``Serializer.to_representation`` shows."""

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.utils import timezone as django_timezone
from rest_framework import serializers

from anima_site.serializers import AttributeOutput
from memories.models import Memory
from memories.serializers.memories import MemoryOutput
from memories.serializers.recall import HybridHitOutput
from memories.services.querying import QueryHit


def drf_representation(serializer, instance) -> dict:
    return serializers.Serializer.to_representation(serializer, instance)


def memory(**fields) -> Memory:
    now = django_timezone.now()
    values = {
        "id": uuid.uuid4(), "namespace": "default", "content": "Dana is allergic to peanuts.", "content_hash": "h",
        "normalized_hash": "n", "created_at": now, "updated_at": now, **fields,
    }
    shown = Memory(**values)
    shown.embedding_truncated = False
    return shown


MEMORIES = [
    memory(),
    memory(category="health", tags=["dana", "food"], metadata={"nested": {"list": [1, 2.5, None]}}, pinned=True),
    memory(expires_at=datetime(2027, 1, 1, 12, 0, tzinfo=UTC), valid_until=django_timezone.now(),
           superseded_by_id=uuid.uuid4(), supersedes=[uuid.uuid4(), uuid.uuid4()]),
    # An offset other than UTC, whole seconds, and year 1: DRF's path for the first, the same text for the others.
    memory(occurred_at=datetime(2023, 5, 8, 9, 30, tzinfo=timezone(timedelta(hours=2))),
           phi_decayed_at=datetime(2026, 1, 1, tzinfo=UTC), valid_from=datetime(1, 1, 1, tzinfo=UTC)),
]


@pytest.mark.parametrize("shown", MEMORIES, ids=["plain", "tagged", "superseded", "offsets"])
def test_a_memory_is_shown_as_drf_shows_it(shown):
    serializer = MemoryOutput()

    assert serializer.to_representation(shown) == drf_representation(serializer, shown)


@pytest.mark.parametrize("text_score", [None, 1.2345678])
def test_a_query_hit_is_shown_as_drf_shows_it(text_score):
    hit = QueryHit(MEMORIES[1], 0.81234567, 0.7, 0.72, text_score, True)
    serializer = HybridHitOutput()

    shown = serializer.to_representation(hit)

    assert shown == drf_representation(serializer, hit)
    assert ("textScore" in shown) is (text_score is not None)  # a skipped field stays skipped


def test_a_datetime_in_another_offset_is_converted_to_utc_as_drf_does():
    shown = MemoryOutput().to_representation(MEMORIES[3])

    assert shown["occurredAt"] == "2023-05-08T07:30:00Z"
    assert shown["validFrom"] == "0001-01-01T00:00:00Z"


def test_fields_that_are_not_plain_attributes_are_read_drfs_way():
    class Shape(AttributeOutput):
        whole = serializers.SerializerMethodField()
        tier_label = serializers.CharField(source="get_tier_display")

        def get_whole(self, shown) -> str:
            return shown.content.upper()

    serializer = Shape()

    assert serializer.to_representation(MEMORIES[0]) == {"whole": "DANA IS ALLERGIC TO PEANUTS.", "tier_label": "Active"}
    assert serializer.to_representation(MEMORIES[0]) == drf_representation(serializer, MEMORIES[0])


def test_memory_output_plans_are_built_once_per_class_and_kind_of_instance():
    first, second, hit = MemoryOutput(), MemoryOutput(many=True).child, HybridHitOutput()
    shown = memory(tags=["food"])

    assert first._plan() is second._plan()
    assert hit._plan() is HybridHitOutput()._plan() is not first._plan()
    assert MemoryOutput(from_result=True)._plan() is not first._plan()
    # Bound to a fresh instance of its own, not to the first one asked (whose parent holds a response).
    assert all(field.parent is not first for _, _, field, _ in first._plan())
    assert second.to_representation(shown) == drf_representation(MemoryOutput(), shown)


def test_a_plain_attribute_output_keeps_a_plan_per_instance():
    class Shape(AttributeOutput):
        name = serializers.CharField()

    assert Shape()._plan() is not Shape()._plan()
