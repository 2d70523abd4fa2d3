"""Build memories straight into the database (bulk), with vectors the test chooses."""

import uuid
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.utils import timezone

from memories.models import Memory, MemoryEmbedding
from memories.text import content_hash, normalized_hash


def unit(vector) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def make_memories(specs, *, namespace="default", model_id=None, with_embeddings=True) -> list[Memory]:
    """``specs``: dicts with ``content``, ``vector`` (unless ``with_embeddings`` is false) and any
    Memory field overrides. Rows go in by ``bulk_create``, not through the API."""
    model_id = model_id or settings.ANIMA_EMBEDDING_MODEL
    now = timezone.now()
    memories, vectors = [], []
    for index, spec in enumerate(specs):
        spec = dict(spec)
        vector = spec.pop("vector", None)
        content = spec.pop("content")
        fields = {
            "id": uuid.uuid4(),
            "namespace": namespace,
            "content": content,
            "content_hash": content_hash(content),
            "normalized_hash": normalized_hash(content),
            "last_accessed": now - timedelta(seconds=index),
            "created_at": now - timedelta(seconds=index),
        }
        fields.update(spec)
        memories.append(Memory(**fields))
        vectors.append(vector)
    Memory.objects.bulk_create(memories, batch_size=1000)
    if not with_embeddings:
        return memories
    MemoryEmbedding.objects.bulk_create(
        [
            MemoryEmbedding(memory=m, namespace=namespace, embedding=unit(v), embedding_model=model_id)
            for m, v in zip(memories, vectors)
        ],
        batch_size=1000,
    )
    return memories
