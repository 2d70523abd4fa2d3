"""Anima's own Prometheus metrics: the one module that defines and records them.

Counters and histograms are recorded where things happen (``record_*`` functions below,
called by services). Values that live in the database are read at scrape time by the
operations layer (``meta.metrics``, which also serves ``/metrics``); this module imports
no app, so that every app may record here.
"""

from prometheus_client import Counter, Histogram

EMBEDDING_CACHE_LOOKUPS = Counter(
    "anima_embedding_cache_lookups_total", "Embedding cache lookups by result", ["result"]
)
EMBEDDING_SECONDS = Histogram(
    "anima_embedding_seconds",
    "Time to embed one batch, by provider",
    ["provider"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
PROMOTIONS = Counter("anima_promotions_total", "Tier changes", ["from_tier", "to_tier", "reason"])
CONSOLIDATIONS = Counter("anima_consolidations_total", "Consolidation outcomes", ["outcome"])
PURGES = Counter("anima_purges_total", "Purges by kind (memory, chain, namespace, retention)", ["kind"])
PURGED_MEMORIES = Counter("anima_purged_memories_total", "Memories removed for good")
CACHE_ERRORS = Counter("anima_cache_errors_total", "Cache calls that failed (Redis down)", ["operation"])
COOCCURRENCE_PAIRS = Counter("anima_cooccurrence_pairs_total", "Co-occurrence pairs recorded")


def record_cache_lookups(*, hits: int, misses: int) -> None:
    if hits:
        EMBEDDING_CACHE_LOOKUPS.labels(result="hit").inc(hits)
    if misses:
        EMBEDDING_CACHE_LOOKUPS.labels(result="miss").inc(misses)


def record_promotions(promotions, *, reason: str) -> None:
    for promotion in promotions:
        PROMOTIONS.labels(from_tier=promotion.from_tier, to_tier=promotion.to_tier, reason=reason).inc()


def record_consolidation(outcome: str) -> None:
    CONSOLIDATIONS.labels(outcome=outcome).inc()


def record_cooccurrence_pairs(count: int) -> None:
    if count:
        COOCCURRENCE_PAIRS.inc(count)
