"""``memory_query``: find memories by meaning, rank them by structural weight, count the access.

Ranking: ``similarity = 1 − cosine distance`` (kept when ≥ the threshold) and
``structural_weight = 0.7 × similarity + 0.3 × φ / 5``; ties by φ, then id.

The search must use the HNSW index, which only serves ``ORDER BY distance LIMIT n``.
So a candidate pool of ``max(4 × limit, ANIMA_QUERY_POOL_MIN)`` rows is fetched by bare
distance, with ``hnsw.iterative_scan`` so that tier/category/tag filters do not starve
it, and re-ranked here. That alone would miss a high-φ memory just outside the pool;
the bound below makes the ranking exact up to HNSW's recall. Let W be the ``limit``-th
weight after re-ranking and s_min the lowest similarity of a full pool: an outside
memory (similarity ≤ s_min) can only reach W when φ ≥ φ* = (W − 0.7·s_min)·5/0.3. Those
are found in two parts:

- The band, ranked by exact weight in SQL: φ in [φ*, RESONANT_PHI) through the φ b-tree
  index (usually few: φ grows by 0.1 per use; when there are too many the pool grows
  instead), and resonant memories whose graph flag lags behind their φ (until the
  resonance sync, see memories.services.resonance) through ``memory_resonance_lag``.
- Resonant memories (flag set): searched by similarity in ``embedding_hnsw_resonant``, a
  second HNSW graph over them only, nearest first, until no memory further away can
  reach the ``limit``-th weight any more: with s the lowest similarity fetched so far,
  nothing unseen can weigh more than 0.7·s + 0.3. The fetch grows ×4 up to
  RESONANT_FETCH_MAX rows; past that the resonant memories with φ ≥ φ* are ranked by
  exact weight in SQL (rare: the stop rule holds long before on the benchmark corpus).
  Its cost grows with the graph's depth (log n), where reading every row with φ ≥ φ*
  grew with the namespace.

A full pool that ends below the threshold holds, in exact terms, every memory above it;
the resonant graph is still asked (with φ* = RESONANT_PHI), because HNSW's recall is
weakest at the far end of a pool, where a resonant memory the threshold barely admits
sits (this took the agreement on the benchmark corpus from 0.97 to 0.999).

``hybrid`` mode fuses the vector pool with the top full-text matches
(``websearch_to_tsquery``, same pool size) by reciprocal rank fusion (k = 60) and orders
by ``0.7 × rrf / rrf_max + 0.3 × φ / 5`` (reported as ``structuralWeight``, with
``rrfScore``). The threshold drops candidates that only the vector side found; a
full-text match stays whatever its similarity.
"""

import time
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from django.conf import settings
from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from pgvector.django import CosineDistance

from memories.embeddings import embed_texts
from memories.models import LIVE, RESONANCE_LAG, RESONANT_PHI, Memory, MemoryEmbedding
from memories.services.access import QUERY_PHI_INCREMENT, AccessResult, memories_record_access
from memories.tasks import enqueue_after_query

SIMILARITY_WEIGHT = 0.7
PHI_WEIGHT = 0.3
PHI_MAX = 5.0
POOL_FACTOR = 4
RRF_K = 60
#: With a recency half-life, at most this many high-φ outsiders are weighed in Python;
#: beyond it the pool grows (×4) instead.
PHI_BOUND_MAX_EXTRAS = 1000
#: Without one, up to this many rows with φ ≥ φ* are ranked by exact weight in SQL (the
#: count is checked first by a walk of the φ index); beyond it the pool grows instead.
PHI_BOUND_MAX_SCAN = 20_000
#: pgvector's upper limit for hnsw.ef_search.
EF_SEARCH_MAX = 1000
#: The first fetch from the resonant graph is this many times ``limit``; it grows ×4
#: while the stop rule does not hold, up to RESONANT_FETCH_MAX rows.
RESONANT_FETCH_FACTOR = 2
RESONANT_FETCH_MAX = EF_SEARCH_MAX
MODE_SEMANTIC = "semantic"
MODE_HYBRID = "hybrid"


@dataclass
class Candidate:
    memory_id: UUID
    similarity: float
    phi: float
    truncated: bool
    last_accessed: datetime | None = None
    rrf: float | None = None
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
        return q


@dataclass
class QueryResult:
    hits: list[tuple[Memory, Candidate]]
    embedding_provider: str
    promotions: list = field(default_factory=list)
    query_time_ms: float = 0.0


def structural_weight(similarity: float, phi: float) -> float:
    return similarity * SIMILARITY_WEIGHT + (phi / PHI_MAX) * PHI_WEIGHT


def recency_factor(last_accessed: datetime | None, *, half_life_days: float | None, now: datetime) -> float:
    """``0.5 ** (age_days / half_life)`` of the last access; 1 without a half-life."""
    if not half_life_days or last_accessed is None:
        return 1.0
    age_days = max((now - last_accessed).total_seconds(), 0.0) / 86400
    return 0.5 ** (age_days / half_life_days)


def _candidate(row, **extra) -> Candidate:
    memory_id, distance, phi, truncated, last_accessed = row
    return Candidate(
        memory_id=memory_id, similarity=1.0 - distance, phi=phi, truncated=truncated, last_accessed=last_accessed, **extra
    )


def _rank_key(candidate: Candidate):
    return (-candidate.weight, -candidate.phi, str(candidate.memory_id))


def _unique(candidates):
    """The first candidate of each memory. Two statements of one query may both see a
    memory whose φ another request moved across 1 in between."""
    seen: set[UUID] = set()
    return [c for c in candidates if not (c.memory_id in seen or seen.add(c.memory_id))]


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
        .values_list("memory_id", "distance", "memory__resonance_phi", "truncated", "memory__last_accessed")[:size]
    )


def _exact_pool_queryset(*, namespace, vector, model_id, filters, size):
    """The same pool by an exact scan of the filtered rows (``+ 0`` keeps the HNSW index out)."""
    return (
        MemoryEmbedding.objects.filter(filters.memory_q("memory__"), namespace=namespace, embedding_model=model_id)
        .annotate(distance=CosineDistance("embedding", vector) + 0)
        .order_by("distance", "memory_id")
        .values_list("memory_id", "distance", "memory__resonance_phi", "truncated", "memory__last_accessed")[:size]
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


_OUTSIDER_COLUMNS = ("id", "distance", "resonance_phi", "embedding__truncated", "last_accessed")


def _band_querysets(*, namespace, filters, phi_star) -> list:
    """Memories with φ ≥ φ* that the resonant graph does not answer for, as one queryset
    per index that serves it: φ in [φ*, RESONANT_PHI) through the φ index, and resonant
    memories whose flag lags through ``memory_resonance_lag``."""
    live = Memory.objects.filter(filters.memory_q(), namespace=namespace, resonance_phi__gte=phi_star)
    lagging = live.filter(RESONANCE_LAG)
    if phi_star >= RESONANT_PHI:
        return [lagging]
    return [live.filter(resonance_phi__lt=RESONANT_PHI), lagging.filter(resonance_phi__gte=RESONANT_PHI)]


def _high_phi_outsiders(*, namespace, vector, model_id, filters, phi_star, exclude, cap) -> list[Candidate]:
    """Band memories outside the pool, at most ``cap + 1``, similarity computed exactly."""
    found = []
    for band in _band_querysets(namespace=namespace, filters=filters, phi_star=phi_star):
        rows = (
            band.filter(embedding__embedding_model=model_id)
            .exclude(pk__in=exclude)
            .annotate(distance=CosineDistance("embedding__embedding", vector))
            .order_by("-resonance_phi", "-access_count")
            .values_list(*_OUTSIDER_COLUMNS)[: cap + 1 - len(found)]
        )
        found.extend(_candidate(row) for row in rows)
        if len(found) > cap:
            break
    return _unique(found)


def _heaviest(memories, *, vector, model_id, exclude, count, threshold) -> list[Candidate]:
    """The ``count`` of ``memories`` (a Memory queryset) outside ``exclude`` with the highest
    structural weight, ranked exactly in SQL (similarity ≥ ``threshold``)."""
    rows = (
        memories.filter(embedding__embedding_model=model_id)
        .exclude(pk__in=exclude)
        .annotate(distance=CosineDistance("embedding__embedding", vector))
        .filter(distance__lte=1.0 - threshold)
        .annotate(weight=(1.0 - F("distance")) * SIMILARITY_WEIGHT + F("resonance_phi") / PHI_MAX * PHI_WEIGHT)
        .order_by("-weight", "-resonance_phi", "id")
        .values_list(*_OUTSIDER_COLUMNS)[:count]
    )
    return [_candidate(row) for row in rows]


def _best_high_phi_outsiders(*, namespace, vector, model_id, filters, phi_star, exclude, limit, threshold):
    """The ``limit`` best band outsiders by exact structural weight, ranked in SQL.

    None when more than PHI_BOUND_MAX_SCAN rows are in a band (known from a walk of its
    index that stops there): then the pool grows instead.
    """
    bands = _band_querysets(namespace=namespace, filters=filters, phi_star=phi_star)
    if any(band.order_by("-resonance_phi").values("pk")[PHI_BOUND_MAX_SCAN:].exists() for band in bands):
        return None
    found = []
    for band in bands:
        found += _heaviest(band, vector=vector, model_id=model_id, exclude=exclude, count=limit, threshold=threshold)
    return _unique(found)


def resonant_queryset(*, namespace, vector, model_id, filters):
    """Resonant memories nearest first: the statement the resonant graph serves.

    No condition on φ here: one would offer PostgreSQL a plan through the φ index (every
    row with φ ≥ φ*, sorted), which it picks on fresh statistics and which grows with the
    namespace. Whatever the graph returns is weighed exactly; a memory whose flag is
    stale (φ fell below 1 since the last sync) is in the band too and counted once.
    """
    return (
        MemoryEmbedding.objects.filter(
            filters.memory_q("memory__"), namespace=namespace, embedding_model=model_id, resonant=True
        )
        .annotate(distance=CosineDistance("embedding", vector))
        .order_by("distance")
        .values_list("memory_id", "distance", "memory__resonance_phi", "truncated", "memory__last_accessed")
    )


def _exact_resonant_queryset(*, namespace, vector, model_id, filters):
    """The same rows nearest first by an exact scan (``+ 0`` keeps the graphs out), for a
    filter under which the graph walk gave up at ``hnsw.max_scan_tuples``."""
    return (
        MemoryEmbedding.objects.filter(
            filters.memory_q("memory__"), namespace=namespace, embedding_model=model_id, resonant=True
        )
        .annotate(distance=CosineDistance("embedding", vector) + 0)
        .order_by("distance", "memory_id")
        .values_list("memory_id", "distance", "memory__resonance_phi", "truncated", "memory__last_accessed")
    )


def _heaviest_resonant(*, namespace, vector, model_id, filters, phi_min, exclude, count, threshold):
    """The ``count`` resonant memories (flag set, φ ≥ ``phi_min``) of highest structural
    weight, ranked exactly in SQL: when the nearest-first search reached its cap."""
    resonant = Memory.objects.filter(
        filters.memory_q(), namespace=namespace, resonance_indexed=True, resonance_phi__gte=phi_min
    )
    return _heaviest(resonant, vector=vector, model_id=model_id, exclude=exclude, count=count, threshold=threshold)


def _resonant_outsiders(*, namespace, vector, model_id, filters, phi_min, ranked, limit, threshold, weigh, recency):
    """Resonant memories not in ``ranked`` that can enter its top ``limit``, weighed.

    Fetched nearest first from the resonant graph; stops when the ``limit``-th weight of
    ``ranked`` plus what was found beats anything further away (0.7·s_lowest + 0.3). A
    short answer under a filter is read again by an exact scan (the graph walk may have
    given up); a search that reaches RESONANT_FETCH_MAX rows without the stop rule
    holding ranks the resonant memories with φ ≥ ``phi_min`` by exact weight in SQL
    instead (with a recency half-life: the 1,000 heaviest, reweighed here).
    """
    seen = {c.memory_id for c in ranked}
    size = max(1, round(RESONANT_FETCH_FACTOR * limit))
    exact = False
    common = dict(namespace=namespace, vector=vector, model_id=model_id, filters=filters)
    while True:
        _configure_hnsw(size)
        rows = list((_exact_resonant_queryset if exact else resonant_queryset)(**common)[:size])
        if len(rows) < size and filters.narrows() and not exact:
            exact = True
            continue
        found = [_candidate(row) for row in rows if row[0] not in seen]
        found = [c for c in found if c.similarity >= threshold]
        for candidate in found:
            candidate.weight = weigh(candidate)
        if len(rows) < size:
            return found
        lowest = min(1.0 - row[1] for row in rows)
        if lowest < threshold:
            return found
        merged = sorted([*ranked, *found], key=_rank_key)
        w_limit = merged[limit - 1].weight if len(merged) >= limit else 0.0
        if SIMILARITY_WEIGHT * lowest + PHI_WEIGHT <= w_limit:
            return found
        if size >= RESONANT_FETCH_MAX:
            heaviest = _heaviest_resonant(
                **common,
                phi_min=phi_min,
                exclude=list(seen),
                count=PHI_BOUND_MAX_EXTRAS if recency else limit,
                threshold=threshold,
            )
            for candidate in heaviest:
                candidate.weight = weigh(candidate)
            return _unique(found + heaviest)
        size = min(size * POOL_FACTOR, RESONANT_FETCH_MAX)


def _semantic_ranking(*, namespace, vector, model_id, filters, limit, threshold, weigh, recency=False) -> list[Candidate]:
    size = max(POOL_FACTOR * limit, settings.ANIMA_QUERY_POOL_MIN)
    while True:
        _configure_hnsw(size)
        pool = _vector_pool(namespace=namespace, vector=vector, model_id=model_id, filters=filters, size=size)
        kept = [c for c in pool if c.similarity >= threshold]
        for candidate in kept:
            candidate.weight = weigh(candidate)
        kept.sort(key=_rank_key)
        if len(pool) < size:
            return kept[:limit]  # the namespace (or the filter) holds no more
        s_min = pool[-1].similarity
        if s_min < threshold:
            # In exact terms the pool holds every memory above the threshold; but HNSW's
            # recall is weakest at the far end of the pool, just where a resonant memory
            # that the threshold barely admits sits. The resonant graph is asked as well.
            phi_star = RESONANT_PHI
        else:
            w_limit = kept[limit - 1].weight
            phi_star = (w_limit - SIMILARITY_WEIGHT * s_min) * PHI_MAX / PHI_WEIGHT
            if phi_star > PHI_MAX:
                return kept[:limit]
        # Always asked, also when φ* ≥ 1: it holds the resonant memories whose flag lags.
        band = dict(
            namespace=namespace,
            vector=vector,
            model_id=model_id,
            filters=filters,
            phi_star=phi_star,
            exclude=[c.memory_id for c in pool],
        )
        if recency:
            # Recency reweighs in Python: weigh the band there too (bounded).
            extras = _high_phi_outsiders(cap=PHI_BOUND_MAX_EXTRAS, **band)
            too_many = len(extras) > PHI_BOUND_MAX_EXTRAS
        else:
            extras = _best_high_phi_outsiders(limit=limit, threshold=threshold, **band)
            too_many = extras is None
        if too_many:
            size *= POOL_FACTOR
            continue
        for candidate in extras:
            candidate.weight = weigh(candidate)
        extras = [c for c in extras if c.similarity >= threshold]
        ranked = sorted(kept + extras, key=_rank_key)
        resonant = _resonant_outsiders(
            namespace=namespace,
            vector=vector,
            model_id=model_id,
            filters=filters,
            phi_min=max(phi_star, RESONANT_PHI),
            ranked=ranked,  # the pool above the threshold; the rest of it stays below there too
            limit=limit,
            threshold=threshold,
            weigh=weigh,
            recency=recency,
        )
        merged = _unique(ranked + resonant)
        merged.sort(key=_rank_key)
        return merged[:limit]


def _hybrid_ranking(*, namespace, query, vector, model_id, filters, limit, threshold, weigh) -> list[Candidate]:
    size = max(POOL_FACTOR * limit, settings.ANIMA_QUERY_POOL_MIN)
    _configure_hnsw(size)
    vector_pool = _vector_pool(namespace=namespace, vector=vector, model_id=model_id, filters=filters, size=size)
    search = SearchQuery(query, search_type="websearch", config="english")
    text_ids = list(
        Memory.objects.filter(filters.memory_q(), namespace=namespace, search_vector=search)
        .annotate(rank=SearchRank(F("search_vector"), search))
        .order_by("-rank", "id")
        .values_list("id", flat=True)[:size]
    )
    candidates: dict[UUID, Candidate] = {}
    for rank, candidate in enumerate(vector_pool, start=1):
        candidate.rrf = 1.0 / (RRF_K + rank)
        candidates[candidate.memory_id] = candidate
    text_only = [mid for mid in text_ids if mid not in candidates]
    if text_only:
        for row in (
            MemoryEmbedding.objects.filter(memory_id__in=text_only, embedding_model=model_id)
            .annotate(distance=CosineDistance("embedding", vector))
            .values_list("memory_id", "distance", "memory__resonance_phi", "truncated", "memory__last_accessed")
        ):
            candidates[row[0]] = _candidate(row, rrf=0.0)
    text_found = set()
    for rank, mid in enumerate(text_ids, start=1):
        if mid in candidates:
            candidates[mid].rrf += 1.0 / (RRF_K + rank)
            text_found.add(mid)
    kept = [c for c in candidates.values() if c.memory_id in text_found or c.similarity >= threshold]
    rrf_max = max((c.rrf for c in kept), default=0.0) or 1.0
    for candidate in kept:
        fused = SIMILARITY_WEIGHT * candidate.rrf / rrf_max + PHI_WEIGHT * candidate.phi / PHI_MAX
        candidate.weight = fused * weigh(candidate, recency_only=True)
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
    mode: str = MODE_SEMANTIC,
    recency_half_life_days: float | None = None,
) -> QueryResult:
    """Rank, then count one access of each returned memory (φ + 0.1, promotion rule).

    With ``recency_half_life_days`` each weight is multiplied by
    ``0.5 ** (days since last access / half-life)``: with a half-life of 7 days, a
    memory last used two weeks ago keeps a quarter of its weight. The factor is at most
    1, so the φ bound stays valid.
    """
    started = time.perf_counter()
    now = timezone.now()

    def weigh(candidate: Candidate, recency_only: bool = False) -> float:
        factor = recency_factor(candidate.last_accessed, half_life_days=recency_half_life_days, now=now)
        return factor if recency_only else structural_weight(candidate.similarity, candidate.phi) * factor

    threshold = settings.ANIMA_SIMILARITY_THRESHOLD if similarity_threshold is None else similarity_threshold
    filters = filters or QueryFilters()
    embedded = embed_texts([query])
    vector = embedded.embeddings[0].vector
    with transaction.atomic():
        common = dict(
            namespace=namespace, vector=vector, model_id=embedded.model_id, filters=filters, limit=limit, weigh=weigh
        )
        if mode == MODE_HYBRID:
            ranked = _hybrid_ranking(query=query, threshold=threshold, **common)
        else:
            ranked = _semantic_ranking(threshold=threshold, recency=bool(recency_half_life_days), **common)
        access: AccessResult = memories_record_access(
            namespace=namespace,
            memory_ids=[c.memory_id for c in ranked],
            conversation_id=conversation_id,
            phi_increment=QUERY_PHI_INCREMENT,
        )
        enqueue_after_query(
            namespace=namespace,
            memory_ids=list(access.memories),
            conversation_id=conversation_id,
            resonance_crossed=any(
                (m.resonance_phi >= RESONANT_PHI) != m.resonance_indexed for m in access.memories.values()
            ),
        )
    hits = [(access.memories[c.memory_id], c) for c in ranked if c.memory_id in access.memories]
    return QueryResult(
        hits=hits,
        embedding_provider=embedded.provider_label,
        promotions=access.promotions,
        query_time_ms=(time.perf_counter() - started) * 1000,
    )
