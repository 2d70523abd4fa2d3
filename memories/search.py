"""Candidate search: the reads of a query. Given one ``CandidateSearch`` (namespace, query
vector, embedding model, filters) it finds the memories a query may return, each with
its exact similarity and, for the text side, its exact text score; ``memory_query``
(``memories.services.querying``) ranks them by ``memories.ranking``.

- **Vector pool**: the nearest rows by bare cosine distance, ``ORDER BY distance LIMIT n``,
  the only statement the HNSW index serves, with ``hnsw.iterative_scan`` so that filters
  do not starve it (``configure_hnsw``). A short pool is redone by an exact scan of the
  filtered rows: a short pool is never a guess.
- **Text pool**: the memories with the best text score among those holding one of the
  question's rarest words (``text_terms``: English stems, stop words dropped, each with
  its BM25 idf in the namespace), each with its similarity.
- **Heaviest**: the last resort of the semantic search, ranking exactly in SQL the
  memories outside a pool that could still enter (``ranking``'s formula as SQL).

Nothing here writes. Each PostgreSQL session starts with the HNSW settings of the default
pool (``hnsw_session_defaults``); ``configure_hnsw`` sets per-transaction settings for a
larger pool, so callers open a transaction around it and the statement it serves
(``needs_transaction`` says when).
"""

import hashlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property, partial
from datetime import datetime
from uuid import UUID

from django.conf import settings
from django.core.cache import caches
from django.db import connection
from django.db.models import BooleanField, F, FloatField, QuerySet, Value
from django.db.models.expressions import RawSQL
from pgvector import Vector
from pgvector.django import CosineDistance

from anima_site.db import CompiledRows
from memories import ranking
from memories.filters import MemoryFilters
from memories.models import Memory, MemoryEmbedding, TierCount

#: pgvector's upper limit for hnsw.ef_search, and the largest pool per side.
EF_SEARCH_MAX = 1000
#: The text configuration of ``Memory.search_vector``.
TEXT_CONFIG = "english"
#: How long a question's words and their document frequencies are reused (per namespace).
TEXT_TERMS_CACHE_SECONDS = 300
#: The cache holds pickled ``TextTerms``; the version changes with the class's module or
#: fields, so that no process reads an entry another version wrote (v2: moved here).
TEXT_TERMS_KEY_PREFIX = "anima:text-terms:v2:"


@dataclass(frozen=True, eq=False)
class CandidateSearch:
    """What every read of one query shares: where to look, with which vector, in which space."""

    namespace: str
    vector: object  # a sequence of floats (numpy array) of the model's dimension
    model_id: str
    filters: MemoryFilters = MemoryFilters()

    @cached_property
    def vector_text(self) -> str:
        """The vector as pgvector's text literal, made once per query (pgvector's own format)."""
        return Vector(self.vector).to_text()


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


_COLUMNS = ("memory_id", "distance", "memory__resonance_phi", "truncated", "memory__last_accessed")


def _candidate(row, **extra) -> Candidate:
    memory_id, distance, phi, truncated, last_accessed = row
    return Candidate(
        memory_id=memory_id, similarity=1.0 - distance, phi=phi, truncated=truncated, last_accessed=last_accessed, **extra
    )


_HNSW_SQL = (
    "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', {local}), "
    "set_config('hnsw.ef_search', %s, {local}), set_config('hnsw.max_scan_tuples', %s, {local})"
)


def _ef_search(pool_size: int) -> int:
    return min(max(settings.ANIMA_HNSW_EF_SEARCH, pool_size), EF_SEARCH_MAX)


def hnsw_session_defaults(sender, connection, **kwargs) -> None:
    """``connection_created``: give each new PostgreSQL session the HNSW settings of the
    default pool (iterative scan, ``ANIMA_HNSW_EF_SEARCH``, ``ANIMA_HNSW_MAX_SCAN_TUPLES``),
    so a query whose pool fits them sends no ``set_config`` (``configure_hnsw``)."""
    if connection.vendor != "postgresql":
        return
    ef_search = _ef_search(1)
    with connection.cursor() as cursor:
        cursor.execute(_HNSW_SQL.format(local="false"), [str(ef_search), str(settings.ANIMA_HNSW_MAX_SCAN_TUPLES)])
    connection.anima_hnsw_session = (ef_search, settings.ANIMA_HNSW_MAX_SCAN_TUPLES)


def configure_hnsw(pool_size: int) -> None:
    """HNSW settings for a pool of ``pool_size`` rows: keep scanning past filtered-out rows;
    search wide enough for ``pool_size`` rows (at most ``EF_SEARCH_MAX``).

    Nothing to send when the session already has them (``hnsw_session_defaults``);
    otherwise per-transaction settings, so call it inside a transaction.
    """
    ef_search = _ef_search(pool_size)
    settings_wanted = (ef_search, settings.ANIMA_HNSW_MAX_SCAN_TUPLES)
    if getattr(connection, "anima_hnsw_session", None) == settings_wanted and connection.connection is not None:
        return
    with connection.cursor() as cursor:
        cursor.execute(_HNSW_SQL.format(local="true"), [str(ef_search), str(settings.ANIMA_HNSW_MAX_SCAN_TUPLES)])


def needs_transaction(pool_size: int) -> bool:
    """Whether ``configure_hnsw(pool_size)`` sets per-transaction settings."""
    settings_wanted = (_ef_search(pool_size), settings.ANIMA_HNSW_MAX_SCAN_TUPLES)
    return getattr(connection, "anima_hnsw_session", None) != settings_wanted


def _embeddings(search: CandidateSearch):
    return MemoryEmbedding.objects.filter(
        search.filters.q("memory__"), namespace=search.namespace, embedding_model=search.model_id
    )


def nearest_embeddings(*, search: CandidateSearch, exclude: UUID | None = None) -> QuerySet:
    """The embeddings of the live memories that pass the filters (but ``exclude``), nearest
    first by bare cosine distance (annotated ``distance``): sliced, the statement HNSW serves."""
    rows = _embeddings(search)
    if exclude is not None:
        rows = rows.exclude(memory_id=exclude)
    return rows.annotate(distance=CosineDistance("embedding", Value(search.vector_text))).order_by("distance")


def candidate_pool_queryset(*, search: CandidateSearch, size: int, terms: "TextTerms | None" = None):
    """The nearest ``size`` embeddings, as pool rows. With ``terms`` (hybrid) each row also
    carries its text score."""
    return _with_text_score(nearest_embeddings(search=search), terms)[:size]


def _exact_pool_queryset(*, search: CandidateSearch, size: int, terms: "TextTerms | None" = None):
    """The same pool by an exact scan of the filtered rows (``+ 0`` keeps the HNSW index out)."""
    rows = (
        _embeddings(search)
        .annotate(distance=CosineDistance("embedding", Value(search.vector_text)) + 0)
        .order_by("distance", "memory_id")
    )
    return _with_text_score(rows, terms)[:size]


def _with_text_score(rows, terms):
    if terms is None:
        return rows.values_list(*_COLUMNS)
    return rows.annotate(text_score=text_score_expression(terms)).values_list(*_COLUMNS, "text_score")


#: The pool-size counters of ``pool_sizes_recorded`` blocks now running.
_pool_size_recorders: list[Counter] = []


@contextmanager
def pool_sizes_recorded() -> Iterator[Counter]:
    """Count, by size, the vector pools asked for while the block runs (the benchmark's
    read-only instrumentation; this process only)."""
    sizes: Counter = Counter()
    _pool_size_recorders.append(sizes)
    try:
        yield sizes
    finally:
        _pool_size_recorders.remove(sizes)


#: The default query's pool statement, compiled once per (size, number of words scored).
_POOL_STATEMENTS = CompiledRows()


def _slot_pool_queryset(*, size: int, words: int, namespace: str, model: str, vector: str, **scores):
    """``candidate_pool_queryset`` of the default filters from plain values, as
    ``CompiledRows`` builds it: ``vector`` the text literal, ``w<i>``/``i<i>`` each scored
    word's tsquery literal and idf."""
    slot_search = CandidateSearch(namespace=namespace, vector=None, model_id=model)
    slot_search.__dict__["vector_text"] = vector  # the cached property, given
    terms = None
    if words is not None:
        terms = _LiteralTerms(
            lexemes=[scores[f"w{i}"] for i in range(words)], idfs=[scores[f"i{i}"] for i in range(words)]
        )
    return candidate_pool_queryset(search=slot_search, size=size, terms=terms)


def _pool_rows(*, search: CandidateSearch, size: int, terms: "TextTerms | None") -> list[tuple]:
    """``candidate_pool_queryset``'s rows. Under the default filters (every query that
    sets none) its SQL depends only on ``size`` and the number of words scored: compiled
    once per shape (``CompiledRows``), so the ORM's work per query is a dict read. Any
    filter runs the queryset as it is."""
    if search.filters != MemoryFilters():
        return list(candidate_pool_queryset(search=search, size=size, terms=terms))
    words = None if terms is None else len(terms.lexemes)
    scores = {}
    for i, (lexeme, idf) in enumerate(zip(terms.lexemes, terms.idfs) if terms else ()):
        scores[f"w{i}"], scores[f"i{i}"] = terms.literal(lexeme), idf
    return _POOL_STATEMENTS.rows(
        (size, words),
        partial(_slot_pool_queryset, size=size, words=words),
        namespace=search.namespace,
        model=search.model_id,
        vector=search.vector_text,
        **scores,
    )


def vector_pool(*, search: CandidateSearch, size: int, terms: "TextTerms | None" = None) -> list[Candidate]:
    """The ``size`` nearest live memories that pass the filters, most similar first; with
    ``terms`` each with its text score."""
    for sizes in _pool_size_recorders:
        sizes[size] += 1
    rows = _pool_rows(search=search, size=size, terms=terms)
    if len(rows) < size:
        # Short: the namespace (or the filter) may hold no more, or the iterative scan hit
        # hnsw.max_scan_tuples first: a filter matching < 1 % of the namespace, a small
        # namespace in a large table, or the dead index entries of deleted and rolled-back
        # rows (HNSW keeps them until VACUUM) nearer the vector than the live ones. Rank
        # the rows exactly: a short pool is never a guess. Cheap for the first two (few
        # rows); after a mass delete a large namespace pays a full scan per short walk
        # until (auto)vacuum has cleared the index.
        rows = list(_exact_pool_queryset(search=search, size=size, terms=terms))
    if terms is None:
        pool = [_candidate(row) for row in rows]
    else:
        pool = [_candidate(row[:-1], text_score=row[-1]) for row in rows]
    # relaxed_order may return neighbours slightly out of order.
    pool.sort(key=lambda c: (-c.similarity, str(c.memory_id)))
    return pool


def heaviest(
    *,
    search: CandidateSearch,
    phi_star: float,
    exclude: list[UUID],
    limit: int,
    threshold: float,
    half_life_days: float | None,
    now: datetime,
) -> list[Candidate]:
    """The ``limit`` memories outside ``exclude`` with φ ≥ φ* and similarity ≥ the
    threshold of highest weight, ranked exactly in SQL (``ranking``'s formula).

    The last resort of the semantic search when a pool of the largest size is not decisive.
    """
    rows = (
        Memory.objects.filter(search.filters.q(), namespace=search.namespace, resonance_phi__gte=max(phi_star, 0.0))
        .filter(embedding__embedding_model=search.model_id)
        .exclude(pk__in=exclude)
        .annotate(
            distance=CosineDistance("embedding__embedding", search.vector),
            recency=ranking.recency_expression(half_life_days=half_life_days, now=now),
        )
        .filter(distance__lte=1.0 - threshold)
        .annotate(weight=ranking.StructuralWeight(1.0 - F("distance"), F("resonance_phi"), F("recency")))
        .order_by("-weight", "-resonance_phi", "id")
        .values_list("id", "distance", "resonance_phi", "embedding__truncated", "last_accessed")[:limit]
    )
    return [_candidate(row) for row in rows]


def highest_phi(*, search: CandidateSearch) -> float:
    """The highest φ among the memories the query may return (a walk of the φ index)."""
    top = (
        Memory.objects.filter(search.filters.q(), namespace=search.namespace)
        .order_by("-resonance_phi")
        .values_list("resonance_phi", flat=True)
        .first()
    )
    return top or 0.0


# --- the text side ------------------------------------------------------------------------------

#: The live memories of the namespace (``TierCount``, kept by triggers) and the question's
#: lexemes (English stems, stop words dropped; ``unnest`` gives them in lexeme order), in
#: one round trip.
_SIZE_AND_LEXEMES_SQL = f"""
SELECT
    (SELECT coalesce(sum(c.count), 0)::bigint FROM {TierCount._meta.db_table} c WHERE c.namespace = %(namespace)s),
    ARRAY(
        SELECT q.lexeme FROM unnest(to_tsvector(%(config)s::regconfig, %(query)s)) AS q
        WHERE q.lexeme !~ '[''\\\\[:space:]]'
    )
"""

#: Lexemes' document frequency in the namespace, counted through the GIN index up to a cap
#: (a word in more than TEXT_COMMON_SHARE of the namespace is left out; counting further
#: would only cost time).
_DOCUMENT_FREQUENCY_SQL = f"""
SELECT q.lexeme, (
    SELECT count(*) FROM (
        SELECT 1 FROM {Memory._meta.db_table} m
        WHERE m.namespace = %(namespace)s AND m.deleted_at IS NULL
          AND m.search_vector @@ ('''' || q.lexeme || '''')::tsquery
        LIMIT %(cap)s
    ) AS matching
)
FROM unnest(%(lexemes)s::text[]) AS q(lexeme)
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


@dataclass(frozen=True)
class _LiteralTerms(TextTerms):
    """Terms whose lexemes are given as tsquery literals already (``_slot_pool_queryset``)."""

    @staticmethod
    def literal(lexeme: str) -> str:
        return lexeme


def text_terms(*, namespace: str, query: str, generation: str) -> TextTerms:
    """``_text_terms`` through the default cache, per namespace and question, for
    TEXT_TERMS_CACHE_SECONDS: document frequencies are statistics, and a repeated question
    then costs no counting. The key names the namespace's cache generation: nothing is
    shared across namespaces, and nothing counted before a purge is used after it."""
    key = TEXT_TERMS_KEY_PREFIX + hashlib.sha256(f"{namespace}\0{generation}\0{query}".encode()).hexdigest()
    cache = caches["default"]
    cached = cache.get(key)
    if cached is None:
        cached = _text_terms(namespace=namespace, query=query, generation=generation)
        cache.set(key, cached, TEXT_TERMS_CACHE_SECONDS)
    return cached


def _frequency_key(namespace: str, generation: str, cap: int, lexeme: str) -> str:
    digest = hashlib.sha256(f"{namespace}\0{generation}\0{cap}\0{lexeme}".encode()).hexdigest()
    return f"{TEXT_TERMS_KEY_PREFIX}df:{digest}"


def _document_frequencies(*, namespace: str, generation: str, lexemes: list[str], cap: int) -> dict[str, int]:
    """Each lexeme's document frequency (up to ``cap``), per word through the default cache
    for TEXT_TERMS_CACHE_SECONDS: a new question counts only the words no recent question
    had (counting is most of a new question's time at 100k memories)."""
    cache = caches["default"]
    keys = {lexeme: _frequency_key(namespace, generation, cap, lexeme) for lexeme in lexemes}
    cached = cache.get_many(list(keys.values()))
    found = {lexeme: cached[key] for lexeme, key in keys.items() if key in cached}
    missing = [lexeme for lexeme in lexemes if lexeme not in found]
    if missing:
        with connection.cursor() as cursor:
            cursor.execute(_DOCUMENT_FREQUENCY_SQL, {"namespace": namespace, "cap": cap, "lexemes": missing})
            counted = dict(cursor.fetchall())
        cache.set_many({keys[lexeme]: df for lexeme, df in counted.items()}, TEXT_TERMS_CACHE_SECONDS)
        found.update(counted)
    return found


def _text_terms(*, namespace: str, query: str, generation: str) -> TextTerms:
    """The question's English stems (stop words dropped) with their idf in the namespace.

    Words in more than TEXT_COMMON_SHARE of the namespace (or in more than
    TEXT_MATCH_BUDGET memories) are dropped unless all are. Rows are matched by the
    rarest words while their document frequencies add up to at most TEXT_MATCH_BUDGET,
    and scored by all: the work is bounded whatever the namespace size, and a memory
    with a rare word of the question is always a candidate. When every word is that
    common, nothing is matched and the words only re-rank the vector pool.
    """
    with connection.cursor() as cursor:
        cursor.execute(_SIZE_AND_LEXEMES_SQL, {"namespace": namespace, "config": TEXT_CONFIG, "query": query})
        total, lexemes = cursor.fetchone()
    cap = min(int(total * ranking.TEXT_COMMON_SHARE), ranking.TEXT_MATCH_BUDGET) + 1
    frequencies = _document_frequencies(namespace=namespace, generation=generation, lexemes=lexemes, cap=cap)
    counted = sorted((df, lexeme) for lexeme, df in frequencies.items() if df > 0)
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


def text_score_expression(terms: TextTerms) -> RawSQL:
    """A memory's text score: the sum of the idfs of the question's words it contains."""
    parts = ["(CASE WHEN memories_memory.search_vector @@ %s::tsquery THEN %s::float8 ELSE 0 END)"] * len(terms.lexemes)
    params = [value for lexeme, idf in zip(terms.lexemes, terms.idfs) for value in (terms.literal(lexeme), idf)]
    return RawSQL("(" + (" + ".join(parts) or "0") + ")", params, output_field=FloatField())


def text_pool(*, search: CandidateSearch, terms: TextTerms, size: int) -> list[Candidate]:
    """The ``size`` memories with the highest text score among those with a matched word,
    each with its similarity (one statement), best first."""
    if not terms.matched:
        return []
    matches = RawSQL("memories_memory.search_vector @@ %s::tsquery", [terms.any_of], output_field=BooleanField())
    best = (
        Memory.objects.filter(search.filters.q(), matches, namespace=search.namespace)
        .annotate(text_score=text_score_expression(terms))
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
            [*best_params, search.vector_text, search.model_id],
        )
        found = [_candidate(row[:-1], text_score=row[-1]) for row in cursor.fetchall()]
    found.sort(key=lambda c: (-c.text_score, str(c.memory_id)))
    return found
