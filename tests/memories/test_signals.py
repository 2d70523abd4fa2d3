"""The contract of ``memories.signals``: sent inside the change's transaction, each
receiver's counts added into the purge report, a receiver's error rolling the change back."""

import pytest

from memories.models import Memory
from memories.services.forgetting import memory_purge, namespace_purge
from memories.signals import memories_purged, namespace_purged
from tests.factories import axis, make_memories

pytestmark = pytest.mark.django_db

UID = "tests.memories.test_signals"


@pytest.fixture
def receiver():
    """Connect one receiver to a signal for the test's length: ``receiver(signal, function)``."""
    connected = []

    def connect(signal, function):
        signal.connect(function, dispatch_uid=UID, weak=False)
        connected.append(signal)

    yield connect
    for signal in connected:
        signal.disconnect(dispatch_uid=UID)


def test_a_memory_purge_sends_the_ids_and_texts_and_adds_the_receivers_counts(receiver):
    [memory] = make_memories([{"content": "Dana is allergic to peanuts.", "vector": axis(0)}])
    received = {}

    def count(sender, *, namespace, memory_ids, texts, **kwargs):
        received.update(sender=sender, namespace=namespace, memory_ids=memory_ids, texts=texts)
        return {"copiesScrubbed": 2, "handshakes": 3}

    receiver(memories_purged, count)

    counts = memory_purge(namespace="default", memory_id=memory.pk)

    assert received == {
        "sender": Memory,
        "namespace": "default",
        "memory_ids": {str(memory.pk)},
        "texts": {"Dana is allergic to peanuts."},
    }
    assert (counts.copies_scrubbed, counts.handshakes) == (2, 3)


def test_a_namespace_purge_reports_every_receivers_counts_by_name(receiver):
    make_memories([{"content": "kept apart", "vector": axis(1)}], namespace="tenant-a")
    receiver(namespace_purged, lambda sender, namespace, **kwargs: {"widgets": 4, "handshakes": 1})

    counts = namespace_purge(namespace="tenant-a").as_dict()

    assert counts == {
        "memories": 1,
        "copiesScrubbed": 0,
        "handshakes": 1,  # this receiver's; reflections' and keys' find nothing of tenant-a
        "taskRecords": 0,
        "apiKeys": 0,
        "reflections": 0,
        "conversationReflections": 0,
        "widgets": 4,
        "adminLogEntries": 0,
    }


def test_a_receivers_error_rolls_the_purge_back(receiver):
    [memory] = make_memories([{"content": "Dana's birthday is in May.", "vector": axis(2)}])

    def fail(sender, **kwargs):
        raise RuntimeError("receiver failed")

    receiver(memories_purged, fail)

    with pytest.raises(RuntimeError):
        memory_purge(namespace="default", memory_id=memory.pk)

    assert Memory.objects.filter(pk=memory.pk).exists()
