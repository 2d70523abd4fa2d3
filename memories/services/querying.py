"""``memory_query``: find memories by relevance, rank them by the one rule of
``memories.ranking`` (relevance plus a resonance bonus of at most 0.05), count the access.

The query in three parts: ``memories.ranking`` holds the rule (pure), ``memories.search``
reads the candidates (one ``CandidateSearch``: namespace, vector, model, filters), and this
module decides how many to read and counts the access.

``semantic`` mode is exact. A candidate pool of ``max(4 × limit, ANIMA_QUERY_POOL_MIN)``
rows comes from the HNSW index and is re-ranked here. A memory outside a full pool has
similarity at most the pool's lowest, s_min, hence weight at most ``s_min + 0.05``; when
the ``limit``-th weight reaches that, the ranking is exact (up to HNSW's recall).
Otherwise the pool grows ×4, up to ``POOL_MAX`` rows; past that (a namespace where over
a thousand memories sit within 0.05 of each other, or a recency half-life that weighs the
pool down) the memories that could still enter are ranked by exact weight in SQL: those
with similarity ≥ the threshold and a bonus large enough, φ ≥ φ*, through the φ index.

``hybrid`` mode (the default) fuses the vector pool with the text pool (the ``2 × limit``
best text scores), every candidate with its exact similarity and exact text score, its
relevance ``0.7 × similarity + 0.3 × text / text_max``. The threshold drops candidates
that match no word of the question and are below it; a text match stays. Hybrid ranks the
union of its two pools exactly, as a fusion does; unlike semantic mode it does not widen
them to look for outsiders: the text scores come in few distinct values, so the pools'
floors seldom prove the top ``limit`` final, and widening both to 1,000 rows tripled the
query's time on the benchmark corpus (45 ms against 14 ms at 10k) while changing no
LoCoMo result.
"""

import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from memories import ranking, search
from memories.embeddings import embed_texts
from memories.filters import MemoryFilters
from memories.search import Candidate, CandidateSearch
from memories.output_sql import memories_shown_json, memory_output_sql
from memories.services.access import AccessResult, memories_record_access, memories_record_query_access

POOL_FACTOR = 4
#: The text pool holds this many times ``limit`` rows: on LoCoMo 2 × limit finds what 100
#: rows find (R@10 0.712 either way, scripts/offline_recall), at less than half the reads.
TEXT_POOL_FACTOR = 2
POOL_MAX = search.EF_SEARCH_MAX
MODE_SEMANTIC = "semantic"
MODE_HYBRID = "hybrid"

#: A candidate's weight from its relevance, φ and last access (``ranking.structural_weight``).
Weigh = Callable[[Candidate], float]


@dataclass(frozen=True)
class QueryHit:
    """One memory a query returns, with the scores it was ranked by."""

    #: As ``MemoryOutput`` shows it after the access (its ``embeddingTruncated`` aside:
    #: ``embedding_truncated`` is the candidate's).
    memory: dict
    similarity: float
    relevance: float
    weight: float
    #: Hybrid mode only: the sum of the idf of the question's words the memory contains.
    text_score: float | None
    embedding_truncated: bool


@dataclass
class QueryResult:
    hits: list[QueryHit]
    embedding_provider: str
    promotions: list = field(default_factory=list)
    query_time_ms: float = 0.0


def _first_pool_size(limit: int) -> int:
    return max(POOL_FACTOR * limit, settings.ANIMA_QUERY_POOL_MIN)


def _rank_key(candidate: Candidate):
    return ranking.rank_key(candidate.weight, candidate.phi, candidate.memory_id)


def _ranked(candidates: list[Candidate], *, weigh: Weigh) -> list[Candidate]:
    for candidate in candidates:
        candidate.weight = weigh(candidate)
    return sorted(candidates, key=_rank_key)


def _semantic_ranking(
    candidate_search: CandidateSearch, *, limit: int, threshold: float, weigh: Weigh, half_life_days, now
) -> list[Candidate]:
    size = _first_pool_size(limit)
    phi_top = None
    while True:
        search.configure_hnsw(size)
        pool = search.vector_pool(search=candidate_search, size=size)
        kept = [c for c in pool if ranking.clears_threshold(c.similarity, threshold)]
        for candidate in kept:
            candidate.relevance = candidate.similarity
        kept = _ranked(kept, weigh=weigh)
        if len(pool) < size:
            return kept[:limit]  # the namespace (or the filter) holds no more
        s_min = pool[-1].similarity
        if s_min < threshold:
            return kept[:limit]  # every memory above the threshold is in the pool
        limit_weight = kept[limit - 1].weight
        if ranking.pool_is_decisive(limit_weight=limit_weight, relevance_floor=s_min):
            return kept[:limit]
        if phi_top is None:
            phi_top = search.highest_phi(search=candidate_search)
        if ranking.pool_is_decisive(limit_weight=limit_weight, relevance_floor=s_min, phi_top=phi_top):
            return kept[:limit]  # no memory has the φ it would take
        if size >= POOL_MAX:
            extras = search.heaviest(
                search=candidate_search,
                phi_star=ranking.phi_needed(limit_weight=limit_weight, relevance_floor=s_min),
                exclude=[c.memory_id for c in pool],
                limit=limit,
                threshold=threshold,
                half_life_days=half_life_days,
                now=now,
            )
            for candidate in extras:
                candidate.relevance = candidate.similarity
            return _ranked(kept + extras, weigh=weigh)[:limit]
        size = min(size * POOL_FACTOR, POOL_MAX)


def _hybrid_ranking(
    candidate_search: CandidateSearch, *, query: str, generation: str, limit: int, threshold: float, weigh: Weigh
) -> list[Candidate]:
    """The union of the vector pool and the text pool, each candidate scored exactly: the
    vector pool's rows carry their text score, the text pool's their similarity."""
    size = _first_pool_size(limit)
    terms = search.text_terms(namespace=candidate_search.namespace, query=query, generation=generation)
    search.configure_hnsw(size)
    vector_pool = search.vector_pool(search=candidate_search, size=size, terms=terms if terms.lexemes else None)
    text_pool = search.text_pool(search=candidate_search, terms=terms, size=TEXT_POOL_FACTOR * limit)
    candidates = {c.memory_id: c for c in vector_pool}
    for candidate in text_pool:
        candidates.setdefault(candidate.memory_id, candidate)
    for candidate in candidates.values():
        candidate.text_score = candidate.text_score or 0.0
    # The text pool's best is the namespace's best; without a text pool, the candidates'.
    text_max = max((c.text_score for c in candidates.values()), default=0.0)
    kept = [c for c in candidates.values() if ranking.clears_threshold(c.similarity, threshold, c.text_score)]
    for candidate in kept:
        candidate.relevance = ranking.hybrid_relevance(candidate.similarity, candidate.text_score, text_max)
    return _ranked(kept, weigh=weigh)[:limit]


def memory_query(
    *,
    namespace: str,
    query: str,
    limit: int = 20,
    similarity_threshold: float | None = None,
    filters: MemoryFilters | None = None,
    conversation_id: str | None = None,
    mode: str = MODE_HYBRID,
    recency_half_life_days: float | None = None,
) -> QueryResult:
    """Rank (``memories.ranking``), then count one access of each returned memory
    (access count, last access, the promotion rule; φ only by the configured query
    increment, 0 by default). With the default increment the counters are written by
    the background drain (``memories_record_query_access``: the response shows them
    after this access all the same); with another, at once, as every other access.

    With ``recency_half_life_days`` each weight is multiplied by
    ``0.5 ** (days since last access / half-life)``: with a half-life of 7 days, a
    memory last used two weeks ago keeps a quarter of its weight. The factor is at most
    1, so the exactness bound stays valid.
    """
    started = time.perf_counter()
    now = timezone.now()

    def weigh(candidate: Candidate) -> float:
        recency = ranking.recency_factor(candidate.last_accessed, half_life_days=recency_half_life_days, now=now)
        return ranking.structural_weight(candidate.relevance, candidate.phi, recency)

    threshold = settings.ANIMA_SIMILARITY_THRESHOLD if similarity_threshold is None else similarity_threshold
    embedded = embed_texts([query], namespace=namespace)
    candidate_search = CandidateSearch(
        namespace=namespace,
        vector=embedded.embeddings[0].vector,
        model_id=embedded.model_id,
        filters=filters or MemoryFilters(),
    )
    # Reads and the access write need no common transaction (the write skips a memory
    # deleted meanwhile, and its hit is dropped below), unless the pool needs
    # per-transaction HNSW settings: the default hybrid query then is two statements and
    # one commit (``memories.services.access``).
    own_transaction = mode != MODE_HYBRID or search.needs_transaction(_first_pool_size(limit))
    with transaction.atomic() if own_transaction else nullcontext():
        if mode == MODE_HYBRID:
            ranked = _hybrid_ranking(
                candidate_search,
                query=query,
                generation=embedded.generation,
                limit=limit,
                threshold=threshold,
                weigh=weigh,
            )
        else:
            ranked = _semantic_ranking(
                candidate_search,
                limit=limit,
                threshold=threshold,
                weigh=weigh,
                half_life_days=recency_half_life_days,
                now=now,
            )
        hit_ids = [c.memory_id for c in ranked]
        increment = ranking.query_phi_increment()
        if increment:  # φ orders bootstrap and the ranking: changed at once
            access: AccessResult = memories_record_access(
                namespace=namespace,
                memory_ids=hit_ids,
                conversation_id=conversation_id,
                phi_increment=increment,
                query_work=True,
            )
        else:
            access = memories_record_query_access(
                namespace=namespace, memory_ids=hit_ids, conversation_id=conversation_id, output_sql=memory_output_sql
            )
    shown = access.memories
    if isinstance(access, AccessResult):  # model instances: read again as the API shows them
        shown = {UUID(key): memory for key, memory in memories_shown_json(list(access.memories)).items()}
    hits = [
        QueryHit(shown[c.memory_id], c.similarity, c.relevance, c.weight, c.text_score, c.truncated)
        for c in ranked
        if c.memory_id in shown
    ]
    return QueryResult(
        hits=hits,
        embedding_provider=embedded.provider_label,
        promotions=access.promotions,
        query_time_ms=(time.perf_counter() - started) * 1000,
    )
