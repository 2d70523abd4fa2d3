"""Embeddings: one provider per process, behind the ``embeddings`` cache alias.

``embed_texts`` is the only way the rest of the code obtains vectors. The cache key is
SHA-256 of (model id, text), the value the float32 bytes with a truncation flag, so a
repeated text costs no model call. Hit and miss counters live in the cache itself, so
with a shared backend (Redis) every process counts into the same numbers.
"""

import hashlib
import threading
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.core.cache import caches

from anima_site import metrics
from memories.embeddings.base import Embedding, EmbeddingError, EmbeddingProvider

__all__ = ["Embedding", "EmbeddingError", "EmbeddingProvider", "EmbeddedTexts", "embed_texts", "get_provider"]

CACHE_ALIAS = "embeddings"
HITS_KEY = "anima:embedding-cache:hits"
MISSES_KEY = "anima:embedding-cache:misses"
PROVIDER_CACHE = "cache"

_provider: EmbeddingProvider | None = None
_provider_lock = threading.Lock()


def build_provider() -> EmbeddingProvider:
    """The provider the settings describe (not cached; see :func:`get_provider`)."""
    if settings.ANIMA_EMBEDDING_PROVIDER == "openai":
        from memories.embeddings.openai import OpenAIProvider

        return OpenAIProvider(
            base_url=settings.ANIMA_OPENAI_BASE_URL,
            api_key=settings.ANIMA_OPENAI_API_KEY,
            model_id=settings.ANIMA_EMBEDDING_MODEL,
            dimensions=settings.ANIMA_EMBEDDING_DIMENSIONS,
            timeout=settings.ANIMA_OPENAI_TIMEOUT,
            retries=settings.ANIMA_OPENAI_RETRIES,
            send_dimensions=settings.ANIMA_OPENAI_SEND_DIMENSIONS,
            max_input_chars=settings.ANIMA_OPENAI_MAX_INPUT_CHARS,
        )
    from memories.embeddings.local import LocalProvider

    return LocalProvider(
        model_id=settings.ANIMA_EMBEDDING_MODEL,
        dimensions=settings.ANIMA_EMBEDDING_DIMENSIONS,
        torch_threads=settings.ANIMA_TORCH_THREADS,
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


def cache_key(model_id: str, text: str, dimensions: int) -> str:
    """SHA-256 of (model id, dimension, text): a model served at another dimension is another space."""
    digest = hashlib.sha256(f"{model_id}\x00{dimensions}\x00".encode() + text.encode()).hexdigest()
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


def embed_texts(texts: list[str]) -> EmbeddedTexts:
    """Vectors for ``texts`` in order: cached ones from the cache, the rest in one batch."""
    provider = get_provider()
    cache = caches[CACHE_ALIAS]
    keys = [cache_key(provider.model_id, text, provider.dimensions) for text in texts]
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
            {cache_key(provider.model_id, text, provider.dimensions): _encode(emb) for text, emb in fresh.items()}
        )
        for index in missing:
            results[index] = fresh[texts[index]]
    return EmbeddedTexts(
        embeddings=results,  # type: ignore[arg-type]
        provider_label=provider.name if missing else PROVIDER_CACHE,
        model_id=provider.model_id,
    )
