"""Fixtures shared by every test. The database is a real PostgreSQL + pgvector (the
embedded server unless DATABASE_URL is set); the embedder is the real bundled model
unless a test asks for the named deterministic fake."""

import hashlib

import numpy as np
import pytest
from django.core.cache import caches
from rest_framework.test import APIClient

from memories import embeddings
from memories.embeddings.base import Embedding, EmbeddingProvider


@pytest.fixture(autouse=True)
def _empty_embedding_cache():
    """Each test starts with empty caches: embeddings, and the default cache, which holds
    the query's cached term statistics (per namespace and question) and throttle counts."""
    for alias in (embeddings.CACHE_ALIAS, "default"):
        caches[alias].clear()
    yield
    for alias in (embeddings.CACHE_ALIAS, "default"):
        caches[alias].clear()


@pytest.fixture
def api_key_for(db):
    """Make a key and return its full string: ``api_key_for("read", namespace="b")``."""

    def make(scope="admin", namespace="default"):
        from keys.services import api_key_create

        return api_key_create(name=f"test {scope}", namespace=namespace, scope=scope)[1]

    return make


@pytest.fixture
def anonymous_api():
    """A client without credentials."""
    return APIClient()


@pytest.fixture
def api(api_key_for):
    """A client holding an admin-scope key of the ``default`` namespace."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_for('admin')}")
    return client


@pytest.fixture
def post_json(api):
    def post(path, body):
        return api.post(path, body, format="json")

    return post


@pytest.fixture
def model_calls(monkeypatch):
    """Counts the texts the real provider is asked to embed (a spy; the model still runs)."""
    provider = embeddings.get_provider()
    calls = []
    original = provider.embed_many

    def spy(texts):
        calls.append(list(texts))
        return original(texts)

    monkeypatch.setattr(provider, "embed_many", spy)
    return calls


class DeterministicFakeEmbedder(EmbeddingProvider):
    """FAKE embedder for tests that need vectors they control (named as such).

    ``vectors`` maps a text to its vector; any other text gets a unit vector seeded by
    its SHA-256. It claims the bundled model's id so that stored rows and the system
    check agree with the configured space.
    """

    name = "local"

    def __init__(self, model_id: str, dimensions: int):
        self.model_id = model_id
        self.dimensions = dimensions
        self.vectors: dict[str, np.ndarray] = {}

    def embed_many(self, texts):
        return [Embedding(vector=self._vector(text), truncated=False) for text in texts]

    def _vector(self, text):
        if text in self.vectors:
            vector = np.asarray(self.vectors[text], dtype=np.float32)
        else:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            vector = np.random.default_rng(seed).standard_normal(self.dimensions).astype(np.float32)
        return vector / np.linalg.norm(vector)


@pytest.fixture
def fake_embedder(settings):
    fake = DeterministicFakeEmbedder(settings.ANIMA_EMBEDDING_MODEL, settings.ANIMA_EMBEDDING_DIMENSIONS)
    real = embeddings.get_provider()
    embeddings.set_provider(fake)
    yield fake
    embeddings.set_provider(real)
