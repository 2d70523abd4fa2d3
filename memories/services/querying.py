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
match no word of the question and are below it; a text match stays. Hybrid ranks the
union of its two pools exactly (the text pool holds ``2 × limit`` rows), as a fusion does; unlike semantic mode it does not
widen them to look for outsiders: the text scores come in few distinct values, so the
pools' floors seldom prove the top ``limit`` final, and widening both to 1,000 rows
tripled the query's time on the benchmark corpus (45 ms against 14 ms at 10k) while
changing no LoCoMo result.
"""

import hashlib
import time
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from django.conf import settings
from django.core.cache import caches
from django.db import connection, transaction
from django.db.models import BooleanField, F, FloatField, Q
from django.db.models.expressions import RawSQL
from django.utils import timezone
from pgvector.django import CosineDistance

from memories import ranking
from memories.background import work_after_query
from memories.embeddings import embed_texts
from memories.models import Memory, MemoryEmbedding, TierCount
from memories.services.access import AccessResult, memories_record_access

POOL_FACTOR = 4
#: The text pool holds this many times ``limit`` rows: on LoCoMo 2 × limit finds what 100
#: rows find (R@10 0.712 either way, scripts/offline_recall), at less than half the reads.
TEXT_POOL_FACTOR = 2
#: pgvector's upper limit for hnsw.ef_search, and the largest pool per side.
EF_SEARCH_MAX = 1000
POOL_MAX = EF_SEARCH_MAX
#: The text configuration of ``Memory.search_vector``.
TEXT_CONFIG = "english"
#: How long a question's words and their document frequencies are reused (per namespace).
TEXT_TERMS_CACHE_SECONDS = 300
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


def candidate_pool_queryset(*, namespace: str, vector, model_id: str, filters: QueryFilters, size: int, terms=None):
    """The nearest ``size`` embeddings by bare cosine distance: the statement HNSW serves.
    With ``terms`` (hybrid) each row also carries its text score."""
    rows = (
        MemoryEmbedding.objects.filter(filters.memory_q("memory__"), namespace=namespace, embedding_model=model_id)
        .annotate(distance=CosineDistance("embedding", vector))
        .order_by("distance")
    )
    return _with_text_score(rows, terms)[:size]


def _exact_pool_queryset(*, namespace, vector, model_id, filters, size, terms=None):
    """The same pool by an exact scan of the filtered rows (``+ 0`` keeps the HNSW index out)."""
    rows = (
        MemoryEmbedding.objects.filter(filters.memory_q("memory__"), namespace=namespace, embedding_model=model_id)
        .annotate(distance=CosineDistance("embedding", vector) + 0)
        .order_by("distance", "memory_id")
    )
    return _with_text_score(rows, terms)[:size]


def _with_text_score(rows, terms):
    if terms is None:
        return rows.values_list(*_COLUMNS)
    return rows.annotate(text_score=_text_score_sql(terms)).values_list(*_COLUMNS, "text_score")


def _vector_pool(*, namespace, vector, model_id, filters, size, terms=None) -> list[Candidate]:
    common = dict(namespace=namespace, vector=vector, model_id=model_id, filters=filters, size=size, terms=terms)
    rows = list(candidate_pool_queryset(**common))
    if len(rows) < size and filters.narrows():
        # A short pool under a filter may mean the iterative scan hit hnsw.max_scan_tuples
        # before finding enough matches (a filter matching < 1 % of the namespace). Then
        # the filtered rows are few enough to rank exactly: a short pool is never a guess.
        rows = list(_exact_pool_queryset(**common))
    if terms is None:
        pool = [_candidate(row) for row in rows]
    else:
        pool = [_candidate(row[:-1], text_score=row[-1]) for row in rows]
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
    rows = (
        Memory.objects.filter(filters.memory_q(), namespace=namespace, resonance_phi__gte=max(phi_star, 0.0))
        .filter(embedding__embedding_model=model_id)
        .exclude(pk__in=exclude)
        .annotate(
            distance=CosineDistance("embedding__embedding", vector),
            recency=_recency_sql(half_life_days=half_life_days, now=now),
        )
        .filter(distance__lte=1.0 - threshold)
        .annotate(weight=ranking.structural_weight_expression(1.0 - F("distance"), F("resonance_phi"), F("recency")))
        .order_by("-weight", "-resonance_phi", "id")
        .values_list("id", "distance", "resonance_phi", "embedding__truncated", "last_accessed")[:limit]
    )
    return [_candidate(row) for row in rows]


def _highest_phi(*, namespace, filters) -> float:
    """The highest φ among the memories the query may return (a walk of the φ index)."""
    top = (
        Memory.objects.filter(filters.memory_q(), namespace=namespace)
        .order_by("-resonance_phi")
        .values_list("resonance_phi", flat=True)
        .first()
    )
    return top or 0.0


def _semantic_ranking(*, namespace, vector, model_id, filters, limit, threshold, weigh, half_life_days, now):
    size = max(POOL_FACTOR * limit, settings.ANIMA_QUERY_POOL_MIN)
    phi_top = None
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
        if phi_top is None:
            phi_top = _highest_phi(namespace=namespace, filters=filters)
        if ranking.pool_is_decisive(limit_weight=limit_weight, relevance_floor=s_min, phi_top=phi_top):
            return kept[:limit]  # no memory has the φ it would take
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
    """The words of a question the text side scores, each with its idf, and the rarest of
    them, which it matches with (see ``text_terms``)."""

    lexemes: list[str]
    idfs: list[float]
    matched: list[str] = field(default_factory=list)

    @staticmethod
    def literal(lexeme: str) -> str:
        return f"'{lexeme}'"

    @property
    def any_of(self) -> str:
        return " | ".join(self.literal(lexeme) for lexeme in self.matched)


def _namespace_size(namespace: str) -> int:
    return sum(TierCount.objects.filter(namespace=namespace).values_list("count", flat=True))


def text_terms(*, namespace: str, query: str, generation: str) -> TextTerms:
    """``_text_terms`` through the default cache, per namespace and question, for
    TEXT_TERMS_CACHE_SECONDS: document frequencies are statistics, and a repeated question
    then costs no counting. The key names the namespace's cache generation: nothing is
    shared across namespaces, and nothing counted before a purge is used after it."""
    key = "anima:text-terms:" + hashlib.sha256(f"{namespace}\0{generation}\0{query}".encode()).hexdigest()
    cache = caches["default"]
    cached = cache.get(key)
    if cached is None:
        cached = _text_terms(namespace=namespace, query=query)
        cache.set(key, cached, TEXT_TERMS_CACHE_SECONDS)
    return cached


def _text_terms(*, namespace: str, query: str) -> TextTerms:
    """The question's English stems (stop words dropped) with their idf in the namespace.

    Words in more than TEXT_COMMON_SHARE of the namespace (or in more than
    TEXT_MATCH_BUDGET memories) are dropped unless all are. Rows are matched by the
    rarest words while their document frequencies add up to at most TEXT_MATCH_BUDGET,
    and scored by all: the work is bounded whatever the namespace size, and a memory
    with a rare word of the question is always a candidate. When every word is that
    common, nothing is matched and the words only re-rank the vector pool.
    """
    total = _namespace_size(namespace)
    cap = min(int(total * ranking.TEXT_COMMON_SHARE), ranking.TEXT_MATCH_BUDGET) + 1
    with connection.cursor() as cursor:
        cursor.execute(_TEXT_TERMS_SQL, {"namespace": namespace, "cap": cap, "config": TEXT_CONFIG, "query": query})
        counted = sorted(((df, lexeme) for lexeme, df in cursor.fetchall() if df > 0))
    scored = [(df, lexeme) for df, lexeme in counted if df < cap] or counted
    matched, budget = [], ranking.TEXT_MATCH_BUDGET
    for df, lexeme in scored:
        if df > budget:
            break
        matched.append(lexeme)
        budget -= df
    return TextTerms(
        lexemes=[lexeme for _, lexeme in scored],
        idfs=[ranking.inverse_document_frequency(df, max(total, df)) for df, _ in scored],
        matched=matched,
    )


def _vector_literal(vector) -> str:
    return "[" + ",".join(repr(float(x)) for x in vector) + "]"


def _text_score_sql(terms: TextTerms) -> RawSQL:
    """The sum of the idfs of the question's words a memory contains."""
    parts = ["(CASE WHEN memories_memory.search_vector @@ %s::tsquery THEN %s::float8 ELSE 0 END)"] * len(terms.lexemes)
    params = [value for lexeme, idf in zip(terms.lexemes, terms.idfs) for value in (terms.literal(lexeme), idf)]
    return RawSQL("(" + (" + ".join(parts) or "0") + ")", params, output_field=FloatField())


def _text_pool(*, namespace, terms: TextTerms, filters, size, vector, model_id) -> list[Candidate]:
    """The ``size`` memories with the highest text score among those with a matched word,
    each with its similarity (one statement)."""
    if not terms.matched:
        return []
    matches = RawSQL("memories_memory.search_vector @@ %s::tsquery", [terms.any_of], output_field=BooleanField())
    best = (
        Memory.objects.filter(filters.memory_q(), matches, namespace=namespace)
        .annotate(text_score=_text_score_sql(terms))
        .order_by("-text_score", "id")
        .values_list("id", "text_score")[:size]
    )
    best_sql, best_params = best.query.sql_with_params()
    # The vectors of the best rows only: joined before the LIMIT, every match's would be read.
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH best(id, text_score) AS ({best_sql}) "
            f"SELECT b.id, e.embedding <=> %s::vector, m.resonance_phi, e.truncated, m.last_accessed, b.text_score "
            f"FROM best b JOIN {Memory._meta.db_table} m ON m.id = b.id "
            f"JOIN {MemoryEmbedding._meta.db_table} e ON e.memory_id = b.id AND e.embedding_model = %s",
            [*best_params, _vector_literal(vector), model_id],
        )
        found = [_candidate(row[:-1], text_score=row[-1]) for row in cursor.fetchall()]
    found.sort(key=lambda c: (-c.text_score, str(c.memory_id)))
    return found


def _hybrid_ranking(
    *, namespace, query, generation, vector, model_id, filters, limit, threshold, weigh
) -> list[Candidate]:
    """The union of the vector pool and the text pool, each candidate scored exactly: the
    vector pool's rows carry their text score, the text pool's their similarity."""
    size = max(POOL_FACTOR * limit, settings.ANIMA_QUERY_POOL_MIN)
    terms = text_terms(namespace=namespace, query=query, generation=generation)
    common = dict(namespace=namespace, vector=vector, model_id=model_id, filters=filters)
    _configure_hnsw(size)
    vector_pool = _vector_pool(terms=terms if terms.lexemes else None, size=size, **common)
    text_pool = _text_pool(terms=terms, size=TEXT_POOL_FACTOR * limit, **common)
    candidates = {c.memory_id: c for c in vector_pool}
    for candidate in text_pool:
        candidates.setdefault(candidate.memory_id, candidate)
    for candidate in candidates.values():
        candidate.text_score = candidate.text_score or 0.0
    # The text pool's best is the namespace's best; without a text pool, the candidates'.
    text_max = max((c.text_score for c in candidates.values()), default=0.0)
    kept = []
    for candidate in candidates.values():
        if candidate.text_score <= 0 and candidate.similarity < threshold:
            continue
        candidate.relevance = ranking.hybrid_relevance(candidate.similarity, candidate.text_score, text_max)
        candidate.weight = weigh(candidate)
        kept.append(candidate)
    kept.sort(key=_rank_key)
    return kept[:limit]


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
    embedded = embed_texts([query], namespace=namespace)
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
            ranked = _hybrid_ranking(query=query, generation=embedded.generation, **common)
        else:
            ranked = _semantic_ranking(half_life_days=recency_half_life_days, now=now, **common)
        access: AccessResult = memories_record_access(
            namespace=namespace,
            memory_ids=[c.memory_id for c in ranked],
            conversation_id=conversation_id,
            phi_increment=ranking.query_phi_increment(),
        )
        work_after_query(namespace=namespace, memory_ids=list(access.memories), conversation_id=conversation_id)
    hits = [(access.memories[c.memory_id], c) for c in ranked if c.memory_id in access.memories]
    return QueryResult(
        hits=hits,
        embedding_provider=embedded.provider_label,
        promotions=access.promotions,
        query_time_ms=(time.perf_counter() - started) * 1000,
    )
