"""What keying the embedding cache per namespace costs: medians of 200 ``embed_texts``
calls each — a miss (the model), a hit, the same texts from a second namespace (a miss
again: the price of isolation), and the namespace generation lookup alone.

    PYTHONPATH=. .venv/bin/python scripts/embedding_cache_cost.py                 # local-memory cache
    ANIMA_REDIS_URL=redis://127.0.0.1:6379/0 PYTHONPATH=. .venv/bin/python scripts/embedding_cache_cost.py
"""

import os
import statistics
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "anima_site.settings")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import django  # noqa: E402

django.setup()

from django.core.cache import caches  # noqa: E402

from memories import embeddings  # noqa: E402


def median_ms(call, count: int = 200) -> float:
    timings = []
    for index in range(count):
        started = time.perf_counter()
        call(index)
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def main() -> None:
    namespaces = ("cache-cost-a", "cache-cost-b")
    for namespace in namespaces:
        embeddings.namespace_cache_forget(namespace=namespace)
    embeddings.embed_texts(["warm up the model"], namespace="cache-cost-warm-up")
    texts = [f"Note {i}: the courier for order {1000 + i} arrives at gate {i % 7}." for i in range(200)]
    first, second = namespaces
    miss = median_ms(lambda i: embeddings.embed_texts([texts[i]], namespace=first))
    hit = median_ms(lambda i: embeddings.embed_texts([texts[i]], namespace=first))
    other = median_ms(lambda i: embeddings.embed_texts([texts[i]], namespace=second))
    generation = median_ms(lambda i: embeddings._generation(first), count=2000)
    for namespace in namespaces:
        embeddings.namespace_cache_forget(namespace=namespace)
    print(f"cache backend: {caches[embeddings.CACHE_ALIAS].__class__.__name__}")
    print(f"miss (model call)          {miss:8.3f} ms")
    print(f"hit                        {hit:8.3f} ms")
    print(f"same text, other namespace {other:8.3f} ms")
    print(f"generation lookup          {generation:8.3f} ms")


if __name__ == "__main__":
    main()
