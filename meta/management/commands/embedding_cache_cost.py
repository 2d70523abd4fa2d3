"""``manage.py embedding_cache_cost``: what keying the embedding cache per namespace costs.

Medians of ``--calls`` ``embed_texts`` calls each: a miss (the model), a hit, the same
texts from a second namespace (a miss again: the price of isolation), and the namespace's
generation lookup alone (one primary-key read). With the configured cache: the local
memory one, or Redis when ``ANIMA_REDIS_URL`` is set.

    .venv/bin/python manage.py migrate && .venv/bin/python manage.py embedding_cache_cost
"""

import statistics
import time

from django.core.cache import caches
from django.core.management.base import BaseCommand

from memories import embeddings

NAMESPACES = ("cache-cost-a", "cache-cost-b")


def median_ms(call, count: int) -> float:
    timings = []
    for index in range(count):
        started = time.perf_counter()
        call(index)
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


class Command(BaseCommand):
    help = "Measure a cache miss, a hit, another namespace's miss and the generation lookup."

    def add_arguments(self, parser):
        parser.add_argument("--calls", type=int, default=200, help="calls per measurement (default 200)")

    def handle(self, *args, calls: int, **options):
        first, second = NAMESPACES
        texts = [f"Note {i}: the courier for order {1000 + i} arrives at gate {i % 7}." for i in range(calls)]
        embeddings.embed_texts(["warm up the model"], namespace=first)
        try:
            for namespace in NAMESPACES:
                embeddings.namespace_cache_forget(namespace=namespace)
            miss = median_ms(lambda i: embeddings.embed_texts([texts[i]], namespace=first), calls)
            hit = median_ms(lambda i: embeddings.embed_texts([texts[i]], namespace=first), calls)
            other = median_ms(lambda i: embeddings.embed_texts([texts[i]], namespace=second), calls)
            generation = median_ms(lambda i: embeddings.namespace_generation(first), calls * 10)
        finally:
            for namespace in NAMESPACES:
                embeddings.namespace_cache_forget(namespace=namespace, drop=True)
        self.stdout.write(f"cache backend: {caches[embeddings.CACHE_ALIAS].__class__.__name__}")
        for label, value in (
            ("miss (model call)", miss),
            ("hit", hit),
            ("same text, other namespace", other),
            ("generation lookup", generation),
        ):
            self.stdout.write(f"{label:28s}{value:9.3f} ms")
