"""Build memories straight into the database (bulk), with vectors the test chooses: the
bundled model's space (``MODEL``, ``DIM``), ``axis`` for vectors of known similarity."""

import uuid
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.utils import timezone

from memories.models import Memory, MemoryEmbedding
from memories.text import content_hash, normalized_hash

#: The bundled model the tests embed with, and the length of its vectors.
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DIM = 384


def axis(i: int, j: int | None = None, mix: float = 0.0) -> np.ndarray:
    """A unit vector on axis i, tilted towards axis j: similarity to axis i is known."""
    vector = np.zeros(DIM, dtype=np.float32)
    vector[i] = 1.0
    if j is not None:
        vector[i] = np.sqrt(1 - mix**2)
        vector[j] = mix
    return vector


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
