"""Embeddings: one provider per process, behind the ``embeddings`` cache alias; the one
provider factory (``build_provider`` of a ``ProviderSpec``, the settings' by default).

``embed_texts`` is the only way the rest of the code obtains vectors. A repeated text
costs no model call: the cache holds the float32 bytes with a truncation flag under
SHA-256 of (namespace generation, model id, dimension, text).

The cache is **per namespace** so that it reveals nothing across tenants: a key of
namespace A cannot learn, from ``meta.embeddingProvider`` or from the latency, whether
namespace B stored or queried a text (a shared cache answered B's texts from the cache,
measurably faster). The price is one model call per namespace for a text several
namespaces embed (``manage.py embedding_cache_cost``). Each namespace's entries hang on
a random *generation* token kept in the database (``CacheGeneration``, one primary-key
read per call); every purge replaces it in its transaction, so the vectors the namespace
cached — the purged texts and its queries — become unreachable in every process at once,
a per-process local-memory cache included (they age out by LRU). Hit and miss counters
live in the cache itself, so with a shared backend (Redis) every process counts into the
same numbers.
"""

import hashlib
import threading
import uuid
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.core.cache import caches
from django.db import connection

from anima_site import metrics
from memories.embeddings.base import Embedding, EmbeddingError, EmbeddingProvider
from memories.models import CacheGeneration

__all__ = [
    "Embedding",
    "EmbeddingError",
    "EmbeddingProvider",
    "EmbeddedTexts",
    "ProviderSpec",
    "build_provider",
    "embed_texts",
    "get_provider",
    "namespace_cache_forget",
    "namespace_generation",
]

CACHE_ALIAS = "embeddings"
HITS_KEY = "anima:embedding-cache:hits"
MISSES_KEY = "anima:embedding-cache:misses"
PROVIDER_CACHE = "cache"

_provider: EmbeddingProvider | None = None
_provider_lock = threading.Lock()


@dataclass(frozen=True)
class ProviderSpec:
    """Which provider serves which model at which dimension, and how to reach it (OpenAI-
    compatible servers only). Timeouts, retries, the input limit and torch threads are
    process settings, not part of it."""

    provider: str  # local | openai
    model_id: str
    dimensions: int
    base_url: str = ""
    api_key: str = ""
    send_dimensions: bool = False

    @classmethod
    def from_settings(cls) -> "ProviderSpec":
        s = settings
        return cls(
            provider=s.ANIMA_EMBEDDING_PROVIDER, model_id=s.ANIMA_EMBEDDING_MODEL, dimensions=s.ANIMA_EMBEDDING_DIMENSIONS,
            base_url=s.ANIMA_OPENAI_BASE_URL, api_key=s.ANIMA_OPENAI_API_KEY, send_dimensions=s.ANIMA_OPENAI_SEND_DIMENSIONS,
        )


def build_provider(spec: ProviderSpec | None = None) -> EmbeddingProvider:
    """The one provider factory: the provider ``spec`` describes, by default the settings'
    (``reembed`` passes its target). Not cached; see :func:`get_provider`."""
    spec = spec or ProviderSpec.from_settings()
    if spec.provider == "openai":
        from memories.embeddings.openai import OpenAIProvider

        return OpenAIProvider(
            base_url=spec.base_url,
            api_key=spec.api_key,
            model_id=spec.model_id,
            dimensions=spec.dimensions,
            timeout=settings.ANIMA_OPENAI_TIMEOUT,
            retries=settings.ANIMA_OPENAI_RETRIES,
            send_dimensions=spec.send_dimensions,
            max_input_chars=settings.ANIMA_OPENAI_MAX_INPUT_CHARS,
        )
    from memories.embeddings.local import LocalProvider

    return LocalProvider(
        model_id=spec.model_id,
        dimensions=spec.dimensions,
        torch_threads=settings.ANIMA_TORCH_THREADS,
        engine=settings.ANIMA_EMBEDDING_ENGINE,
        cache_dir=settings.ANIMA_DATA_DIR / "models",
    )


def get_provider() -> EmbeddingProvider:
    """The process-wide provider; the local model loads once per process."""
    global _provider
    if _provider is None:
        with _provider_lock:
            if _provider is None:
                _provider = build_provider()
    return _provider


def set_provider(provider: EmbeddingProvider | None) -> None:
    """Replace the process-wide provider (tests, and re-reading settings)."""
    global _provider
    with _provider_lock:
        _provider = provider


@dataclass(frozen=True)
class EmbeddedTexts:
    embeddings: list[Embedding]
    #: ``cache`` when every text was a cache hit, else the provider's name.
    provider_label: str
    model_id: str
    #: The namespace's cache generation: other per-namespace caches key with it too.
    generation: str


def namespace_generation(namespace: str) -> str:
    """The namespace's generation token (``CacheGeneration``; made on first use): one
    primary-key read, so that a purge in any process is seen by every other at once."""
    table = CacheGeneration._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT token FROM {table} WHERE namespace = %s", [namespace])
        row = cursor.fetchone()
        if row is None:
            cursor.execute(
                f"INSERT INTO {table} (namespace, token) VALUES (%s, %s) ON CONFLICT (namespace) DO NOTHING",
                [namespace, uuid.uuid4()],
            )
            cursor.execute(f"SELECT token FROM {table} WHERE namespace = %s", [namespace])
            row = cursor.fetchone()
    return row[0].hex


def namespace_cache_forget(*, namespace: str, drop: bool = False) -> None:
    """Make every cached vector of ``namespace`` unreachable, in every process (a purge;
    call it inside the purge's transaction: the new token is seen when the purge is).
    ``drop``: delete the row (a namespace purge leaves no row; the next use makes a new token)."""
    rows = CacheGeneration.objects.filter(namespace=namespace)
    if drop:
        rows.delete()
    else:
        rows.update(token=uuid.uuid4())


def cache_key(generation: str, model_id: str, text: str, dimensions: int) -> str:
    """SHA-256 of (generation, model id, dimension, text): another namespace (or a purged
    one) has another generation, a model served at another dimension is another space."""
    digest = hashlib.sha256(f"{generation}\x00{model_id}\x00{dimensions}\x00".encode() + text.encode()).hexdigest()
    return f"anima:embedding:{digest}"


def _encode(embedding: Embedding) -> bytes:
    return (b"\x01" if embedding.truncated else b"\x00") + embedding.vector.astype(np.float32).tobytes()


def _decode(value: bytes) -> Embedding:
    return Embedding(vector=np.frombuffer(value[1:], dtype=np.float32).copy(), truncated=value[:1] == b"\x01")


def _count(key: str, amount: int) -> None:
    if amount <= 0:
        return
    cache = caches[CACHE_ALIAS]
    cache.add(key, 0, timeout=None)
    try:
        cache.incr(key, amount)
    except ValueError:  # evicted between add and incr
        cache.add(key, amount, timeout=None)


def cache_counters() -> tuple[int, int]:
    cache = caches[CACHE_ALIAS]
    counts = cache.get_many([HITS_KEY, MISSES_KEY])
    return int(counts.get(HITS_KEY, 0)), int(counts.get(MISSES_KEY, 0))


def embed_texts(texts: list[str], *, namespace: str) -> EmbeddedTexts:
    """Vectors for ``texts`` in order: cached ones (of this namespace) from the cache, the rest in one batch."""
    provider = get_provider()
    cache = caches[CACHE_ALIAS]
    generation = namespace_generation(namespace)
    keys = [cache_key(generation, provider.model_id, text, provider.dimensions) for text in texts]
    cached = cache.get_many(keys)
    results: list[Embedding | None] = [
        _decode(cached[key]) if key in cached else None for key in keys
    ]
    missing = [index for index, result in enumerate(results) if result is None]
    _count(HITS_KEY, len(texts) - len(missing))
    _count(MISSES_KEY, len(missing))
    metrics.record_cache_lookups(hits=len(texts) - len(missing), misses=len(missing))
    if missing:
        # Embed each distinct missing text once.
        distinct = list(dict.fromkeys(texts[index] for index in missing))
        with metrics.EMBEDDING_SECONDS.labels(provider=provider.name).time():
            vectors = provider.embed_many(distinct)
        fresh = dict(zip(distinct, vectors))
        cache.set_many(
            {cache_key(generation, provider.model_id, text, provider.dimensions): _encode(emb) for text, emb in fresh.items()}
        )
        for index in missing:
            results[index] = fresh[texts[index]]
    return EmbeddedTexts(
        embeddings=results,  # type: ignore[arg-type]
        provider_label=provider.name if missing else PROVIDER_CACHE,
        model_id=provider.model_id,
        generation=generation,
    )
