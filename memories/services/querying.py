"""``memory_query``: find memories by relevance, rank them by the one rule of
``memories.ranking`` (relevance plus a resonance bonus of at most 0.05), count the access.

The search must use the HNSW index, which only serves ``ORDER BY distance LIMIT n``.
So a candidate pool of ``max(4 × limit, ANIMA_QUERY_POOL_MIN)`` rows is fetched by bare
distance, with ``hnsw.iterative_scan`` so that tier/category/tag filters do not starve
it, and re-ranked here. Exactness: a memory outside a full pool has similarity at most
the pool's lowest, s_min, hence weight at most ``s_min + 0.05``; when the ``limit``-th
weight reaches that, the ranking is exact (up to HNSW's recall). Otherwise the pool
grows ×4, up to ``POOL_MAX`` rows; past that (a namespace where over a thousand
memories sit within 0.05 of each other, or a recency half-life that weighs the pool
down) the memories that could still enter are ranked by exact weight in SQL: those
with similarity ≥ the threshold and a bonus large enough, φ ≥ φ*, through the φ index.

``hybrid`` mode (the default) adds a full-text side: the question's words (English
stems, stop words dropped, words in more than 20 % of the namespace dropped unless all
are) are matched with OR, each matching memory scored by the sum of the inverse
document frequencies of the words it contains (BM25 with binary term frequency, no
length normalisation: as good as full BM25 on LoCoMo, and computable from the tsvector
alone). The top text matches (same pool size) join the vector pool; every candidate
gets its exact similarity and exact text score, and its relevance is
``0.7 × similarity + 0.3 × text / text_max``. The threshold drops candidates that
match no word of the question and are below it; a text match stays. Exactness as
above, with an outsider's relevance bounded by both pools' lowest scores; the pools
grow together up to ``POOL_MAX``.
"""

import time
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from django.conf import settings
from django.db import connection, transaction
from django.db.models import BooleanField, F, FloatField, Q
from django.db.models.expressions import RawSQL
from django.utils import timezone
from pgvector.django import CosineDistance

from memories import ranking
from memories.embeddings import embed_texts
from memories.models import Memory, MemoryEmbedding, TierCount
from memories.services.access import AccessResult, memories_record_access
from memories.tasks import enqueue_after_query

POOL_FACTOR = 4
#: pgvector's upper limit for hnsw.ef_search, and the largest pool per side.
EF_SEARCH_MAX = 1000
POOL_MAX = EF_SEARCH_MAX
#: The text configuration of ``Memory.search_vector``.
TEXT_CONFIG = "english"
MODE_SEMANTIC = "semantic"
MODE_HYBRID = "hybrid"


@dataclass
class Candidate:
    memory_id: UUID
    similarity: float
    phi: float
    truncated: bool
    last_accessed: datetime | None = None
    #: Hybrid: the sum of the idf of the question's words this memory contains.
    text_score: float | None = None
    relevance: float = 0.0
    weight: float = 0.0


@dataclass(frozen=True)
class QueryFilters:
    """Filters applied inside the candidate search (never after it)."""

    tiers: list[str] | None = None
    category: str | None = None
    tags: list[str] | None = None
    metadata: dict | None = None  # JSON containment: metadata @> this
    source: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    last_accessed_after: datetime | None = None
    occurred_after: datetime | None = None
    occurred_before: datetime | None = None

    def narrows(self) -> bool:
        return any(value not in (None, [], {}) for value in self.__dict__.values())

    def memory_q(self, prefix: str = "") -> Q:
        q = Q(**{f"{prefix}deleted_at__isnull": True})
        if self.tiers:
            q &= Q(**{f"{prefix}tier__in": self.tiers})
        if self.category is not None:
            q &= Q(**{f"{prefix}category": self.category})
        if self.tags:
            q &= Q(**{f"{prefix}tags__contains": self.tags})
        if self.metadata:
            q &= Q(**{f"{prefix}metadata__contains": self.metadata})
        if self.source is not None:
            q &= Q(**{f"{prefix}source": self.source})
        if self.created_after is not None:
            q &= Q(**{f"{prefix}created_at__gte": self.created_after})
        if self.created_before is not None:
            q &= Q(**{f"{prefix}created_at__lt": self.created_before})
        if self.last_accessed_after is not None:
            q &= Q(**{f"{prefix}last_accessed__gte": self.last_accessed_after})
        if self.occurred_after is not None:
            q &= Q(**{f"{prefix}occurred_at__gte": self.occurred_after})
        if self.occurred_before is not None:
            q &= Q(**{f"{prefix}occurred_at__lt": self.occurred_before})
        return q


@dataclass
class QueryResult:
    hits: list[tuple[Memory, Candidate]]
    embedding_provider: str
    promotions: list = field(default_factory=list)
    query_time_ms: float = 0.0


_COLUMNS = ("memory_id", "distance", "memory__resonance_phi", "truncated", "memory__last_accessed")


def _candidate(row, **extra) -> Candidate:
    memory_id, distance, phi, truncated, last_accessed = row
    return Candidate(
        memory_id=memory_id, similarity=1.0 - distance, phi=phi, truncated=truncated, last_accessed=last_accessed, **extra
    )


def _rank_key(candidate: Candidate):
    return ranking.rank_key(candidate.weight, candidate.phi, candidate.memory_id)


def _configure_hnsw(pool_size: int) -> None:
    """Per-transaction HNSW settings: keep scanning past filtered-out rows; search wide enough."""
    ef_search = min(max(settings.ANIMA_HNSW_EF_SEARCH, pool_size), EF_SEARCH_MAX)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), "
            "set_config('hnsw.ef_search', %s, true), set_config('hnsw.max_scan_tuples', %s, true)",
            [str(ef_search), str(settings.ANIMA_HNSW_MAX_SCAN_TUPLES)],
        )


def candidate_pool_queryset(*, namespace: str, vector, model_id: str, filters: QueryFilters, size: int):
    """The nearest ``size`` embeddings by bare cosine distance: the statement HNSW serves."""
    return (
        MemoryEmbedding.objects.filter(filters.memory_q("memory__"), namespace=namespace, embedding_model=model_id)
        .annotate(distance=CosineDistance("embedding", vector))
        .order_by("distance")
        .values_list(*_COLUMNS)[:size]
    )


def _exact_pool_queryset(*, namespace, vector, model_id, filters, size):
    """The same pool by an exact scan of the filtered rows (``+ 0`` keeps the HNSW index out)."""
    return (
        MemoryEmbedding.objects.filter(filters.memory_q("memory__"), namespace=namespace, embedding_model=model_id)
        .annotate(distance=CosineDistance("embedding", vector) + 0)
        .order_by("distance", "memory_id")
        .values_list(*_COLUMNS)[:size]
    )


def _vector_pool(*, namespace, vector, model_id, filters, size) -> list[Candidate]:
    rows = list(candidate_pool_queryset(namespace=namespace, vector=vector, model_id=model_id, filters=filters, size=size))
    if len(rows) < size and filters.narrows():
        # A short pool under a filter may mean the iterative scan hit hnsw.max_scan_tuples
        # before finding enough matches (a filter matching < 1 % of the namespace). Then
        # the filtered rows are few enough to rank exactly: a short pool is never a guess.
        rows = list(_exact_pool_queryset(namespace=namespace, vector=vector, model_id=model_id, filters=filters, size=size))
    pool = [_candidate(row) for row in rows]
    # relaxed_order may return neighbours slightly out of order.
    pool.sort(key=lambda c: (-c.similarity, str(c.memory_id)))
    return pool


def _recency_sql(*, half_life_days: float | None, now: datetime) -> RawSQL:
    """``ranking.recency_factor`` as SQL over ``memories_memory.last_accessed``."""
    if not half_life_days:
        return RawSQL("1.0", [], output_field=FloatField())
    return RawSQL(
        "power(0.5, GREATEST(EXTRACT(EPOCH FROM (%s - memories_memory.last_accessed)), 0) / 86400.0 / %s)",
        [now, half_life_days],
        output_field=FloatField(),
    )


def _heaviest(*, namespace, vector, model_id, filters, phi_star, exclude, limit, threshold, half_life_days, now):
    """The ``limit`` memories outside ``exclude`` with φ ≥ φ* and similarity ≥ the
    threshold of highest weight, ranked exactly in SQL (``ranking``'s formula).

    The last resort of the semantic search when a pool of POOL_MAX rows is not decisive.
    """
    bonus = ranking.PHI_BONUS_MAX / ranking.PHI_MAX
    rows = (
        Memory.objects.filter(filters.memory_q(), namespace=namespace, resonance_phi__gte=max(phi_star, 0.0))
        .filter(embedding__embedding_model=model_id)
        .exclude(pk__in=exclude)
        .annotate(distance=CosineDistance("embedding__embedding", vector), recency=_recency_sql(half_life_days=half_life_days, now=now))
        .filter(distance__lte=1.0 - threshold)
        .annotate(weight=((1.0 - F("distance")) + F("resonance_phi") * bonus) * F("recency"))
        .order_by("-weight", "-resonance_phi", "id")
        .values_list("id", "distance", "resonance_phi", "embedding__truncated", "last_accessed")[:limit]
    )
    return [_candidate(row) for row in rows]


def _semantic_ranking(*, namespace, vector, model_id, filters, limit, threshold, weigh, half_life_days, now):
    size = max(POOL_FACTOR * limit, settings.ANIMA_QUERY_POOL_MIN)
    while True:
        _configure_hnsw(size)
        pool = _vector_pool(namespace=namespace, vector=vector, model_id=model_id, filters=filters, size=size)
        kept = [c for c in pool if c.similarity >= threshold]
        for candidate in kept:
            candidate.relevance = candidate.similarity
            candidate.weight = weigh(candidate)
        kept.sort(key=_rank_key)
        if len(pool) < size:
            return kept[:limit]  # the namespace (or the filter) holds no more
        s_min = pool[-1].similarity
        if s_min < threshold:
            return kept[:limit]  # every memory above the threshold is in the pool
        limit_weight = kept[limit - 1].weight
        if ranking.pool_is_decisive(limit_weight=limit_weight, relevance_floor=s_min):
            return kept[:limit]
        if size >= POOL_MAX:
            # φ* : the φ whose bonus makes up the gap between the pool's floor and the
            # limit-th weight; below it nothing outside the pool can enter.
            phi_star = (limit_weight - s_min) / ranking.PHI_BONUS_MAX * ranking.PHI_MAX
            extras = _heaviest(
                namespace=namespace,
                vector=vector,
                model_id=model_id,
                filters=filters,
                phi_star=phi_star,
                exclude=[c.memory_id for c in pool],
                limit=limit,
                threshold=threshold,
                half_life_days=half_life_days,
                now=now,
            )
            for candidate in extras:
                candidate.relevance = candidate.similarity
                candidate.weight = weigh(candidate)
            return sorted(kept + extras, key=_rank_key)[:limit]
        size = min(size * POOL_FACTOR, POOL_MAX)


#: The question's lexemes with their document frequency in the namespace, counted through
#: the GIN index up to a cap (a word in more than TEXT_COMMON_SHARE of the namespace is
#: left out; counting further would only cost time).
_TEXT_TERMS_SQL = f"""
SELECT q.lexeme, (
    SELECT count(*) FROM (
        SELECT 1 FROM {Memory._meta.db_table} m
        WHERE m.namespace = %(namespace)s AND m.deleted_at IS NULL
          AND m.search_vector @@ ('''' || q.lexeme || '''')::tsquery
        LIMIT %(cap)s
    ) AS matching
)
FROM unnest(to_tsvector(%(config)s::regconfig, %(query)s)) AS q
WHERE q.lexeme !~ '[''\\\\[:space:]]'
"""


@dataclass(frozen=True)
class TextTerms:
    """The words of a question the text side matches, each with its idf."""

    lexemes: list[str]
    idfs: list[float]

    @property
    def tsqueries(self) -> list[str]:
        return [f"'{lexeme}'" for lexeme in self.lexemes]

    @property
    def any_of(self) -> str:
        return " | ".join(self.tsqueries)


def _namespace_size(namespace: str) -> int:
    return sum(TierCount.objects.filter(namespace=namespace).values_list("count", flat=True))


def text_terms(*, namespace: str, query: str) -> TextTerms:
    """The question's English stems (stop words dropped) with their idf in the namespace;
    the words of more than TEXT_COMMON_SHARE of it are dropped unless all are."""
    total = _namespace_size(namespace)
    cap = int(total * ranking.TEXT_COMMON_SHARE) + 1
    with connection.cursor() as cursor:
        cursor.execute(_TEXT_TERMS_SQL, {"namespace": namespace, "cap": cap, "config": TEXT_CONFIG, "query": query})
        counted = [(lexeme, df) for lexeme, df in cursor.fetchall() if df > 0]
    rare = [(lexeme, df) for lexeme, df in counted if df < cap] or counted
    return TextTerms(
        lexemes=[lexeme for lexeme, _ in rare],
        idfs=[ranking.inverse_document_frequency(df, max(total, df)) for _, df in rare],
    )


def _text_score_sql(terms: TextTerms) -> RawSQL:
    return RawSQL(
        "(SELECT COALESCE(sum(q.idf), 0) FROM unnest(%s::tsquery[], %s::float8[]) AS q(term, idf) "
        "WHERE memories_memory.search_vector @@ q.term)",
        [terms.tsqueries, terms.idfs],
        output_field=FloatField(),
    )


def _text_pool(*, namespace, terms: TextTerms, filters, size) -> list[tuple[UUID, float]]:
    """The ``size`` memories with the highest text score (at least one word matched)."""
    if not terms.lexemes:
        return []
    matches = RawSQL("memories_memory.search_vector @@ %s::tsquery", [terms.any_of], output_field=BooleanField())
    return list(
        Memory.objects.filter(filters.memory_q(), matches, namespace=namespace)
        .annotate(text_score=_text_score_sql(terms))
        .order_by("-text_score", "id")
        .values_list("id", "text_score")[:size]
    )


def _hybrid_ranking(*, namespace, query, vector, model_id, filters, limit, threshold, weigh) -> list[Candidate]:
    size = max(POOL_FACTOR * limit, settings.ANIMA_QUERY_POOL_MIN)
    terms = text_terms(namespace=namespace, query=query)
    while True:
        _configure_hnsw(size)
        vector_pool = _vector_pool(namespace=namespace, vector=vector, model_id=model_id, filters=filters, size=size)
        text_pool = _text_pool(namespace=namespace, terms=terms, filters=filters, size=size)
        candidates = {c.memory_id: c for c in vector_pool}
        text_scores = dict(text_pool)
        missing_vectors = [mid for mid in text_scores if mid not in candidates]
        if missing_vectors:
            for row in (
                MemoryEmbedding.objects.filter(memory_id__in=missing_vectors, embedding_model=model_id)
                .annotate(distance=CosineDistance("embedding", vector))
                .values_list(*_COLUMNS)
            ):
                candidates[row[0]] = _candidate(row)
        missing_text = [mid for mid in candidates if mid not in text_scores]
        if missing_text and terms.lexemes:
            text_scores.update(
                Memory.objects.filter(pk__in=missing_text)
                .annotate(text_score=_text_score_sql(terms))
                .values_list("id", "text_score")
            )
        text_max = text_pool[0][1] if text_pool else 0.0
        kept = []
        for candidate in candidates.values():
            candidate.text_score = text_scores.get(candidate.memory_id, 0.0)
            if candidate.text_score <= 0 and candidate.similarity < threshold:
                continue
            candidate.relevance = ranking.hybrid_relevance(candidate.similarity, candidate.text_score, text_max)
            candidate.weight = weigh(candidate)
            kept.append(candidate)
        kept.sort(key=_rank_key)
        vector_full = len(vector_pool) == size
        text_full = len(text_pool) == size
        if len(kept) < limit or not (vector_full or text_full) or size >= POOL_MAX:
            return kept[:limit]
        # An outsider is in neither pool: its similarity and text score are at most the
        # lowest of a full pool (and its text score 0 when the text pool is not full).
        s_floor = vector_pool[-1].similarity if vector_full else -1.0
        t_floor = text_pool[-1][1] if text_full else 0.0
        floor = ranking.hybrid_relevance(s_floor, t_floor, text_max)
        if s_floor < threshold and not text_full:
            return kept[:limit]  # outsiders match no word and are below the threshold
        if ranking.pool_is_decisive(limit_weight=kept[limit - 1].weight, relevance_floor=floor):
            return kept[:limit]
        size = min(size * POOL_FACTOR, POOL_MAX)


def memory_query(
    *,
    namespace: str,
    query: str,
    limit: int = 20,
    similarity_threshold: float | None = None,
    filters: QueryFilters | None = None,
    conversation_id: str | None = None,
    mode: str = MODE_HYBRID,
    recency_half_life_days: float | None = None,
) -> QueryResult:
    """Rank (``memories.ranking``), then count one access of each returned memory
    (access count, last access, the promotion rule; φ only by the configured query
    increment, 0 by default).

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
    filters = filters or QueryFilters()
    embedded = embed_texts([query])
    vector = embedded.embeddings[0].vector
    with transaction.atomic():
        common = dict(
            namespace=namespace,
            vector=vector,
            model_id=embedded.model_id,
            filters=filters,
            limit=limit,
            threshold=threshold,
            weigh=weigh,
        )
        if mode == MODE_HYBRID:
            ranked = _hybrid_ranking(query=query, **common)
        else:
            ranked = _semantic_ranking(half_life_days=recency_half_life_days, now=now, **common)
        access: AccessResult = memories_record_access(
            namespace=namespace,
            memory_ids=[c.memory_id for c in ranked],
            conversation_id=conversation_id,
            phi_increment=ranking.query_phi_increment(),
        )
        enqueue_after_query(namespace=namespace, memory_ids=list(access.memories), conversation_id=conversation_id)
    hits = [(access.memories[c.memory_id], c) for c in ranked if c.memory_id in access.memories]
    return QueryResult(
        hits=hits,
        embedding_provider=embedded.provider_label,
        promotions=access.promotions,
        query_time_ms=(time.perf_counter() - started) * 1000,
    )
