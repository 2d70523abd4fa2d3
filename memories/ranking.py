"""The ranking rule, in one place: relevance first, resonance earned and bounded (SPEC §3).

``weight = (relevance + resonance_bonus(φ)) × recency``

- **relevance** is the cosine similarity in ``semantic`` mode. In ``hybrid`` mode it is
  ``0.7 × similarity + 0.3 × text / text_max``: ``text`` is the sum of the inverse
  document frequencies of the question's words that a memory contains (BM25 with binary
  term frequency and no length normalisation; measured as good as full BM25 on LoCoMo),
  ``text_max`` the best text score among the candidates (the namespace's best when a
  word of the question is rare enough to be matched), so the text part is in [0, 1]
  like the similarity.
- **resonance_bonus(φ)** = ``0.05 × φ / 5``: a memory can gain at most
  ``PHI_BONUS_MAX`` = 0.05 of relevance from φ. It breaks near-ties and lifts memories
  that proved useful; a memory whose relevance is higher by more than 0.05 is never
  outranked by resonance.
- **recency** is ``0.5 ** (days since last access / half-life)`` when the query asks for
  it, else 1; it is at most 1, so it never lifts a memory above the bound either.
- **threshold** (``clears_threshold``): a candidate below the similarity threshold is
  dropped unless it matches a word of the question (hybrid).

The weight has one definition per language: ``structural_weight`` (Python),
``structural_weight_sql`` (SQL text) and ``StructuralWeight`` (the ORM's expression of
that same SQL); recency likewise (``recency_factor``, ``recency_expression``).

φ is earned: explicit feedback (``FEEDBACK_PHI_STEP`` per "useful", minus as much per
"not useful"), catalysts (φ = 1 at creation) and merges. A plain query hit adds
``settings.ANIMA_QUERY_PHI_INCREMENT`` (0 by default: measured on LoCoMo in order, any
increment only reorders near-ties by popularity — see the README's "Recall").

Exactness: a memory outside a candidate pool has relevance at most the pool's lowest
relevance ``r_min``, so its weight is at most ``r_min + PHI_BONUS_MAX``. When the
``limit``-th weight of the pool reaches that ceiling, no outsider can enter the top
``limit`` (``pool_is_decisive``); the ceiling is lower still when no memory of the
namespace has φ = 5 (``phi_top``, the highest φ there is). Otherwise the caller widens
the pool. ``phi_needed`` inverts the bound: the φ an outsider needs to enter.

Everything about φ is here too: its range, the clamp (in Python and SQL), the steps by
which feedback, catalysts and merges move it, and its monthly decay. The module is pure:
it reads no rows; its SQL forms are expressions for the callers' statements.
"""

import math
from datetime import datetime

from django.conf import settings
from django.db.models import FloatField, Func
from django.db.models.expressions import RawSQL

PHI_MAX = 5.0
PHI_MIN = 0.0
#: The most relevance φ can make up: a memory with φ = 5 gains exactly this much.
PHI_BONUS_MAX = 0.05
#: Hybrid relevance: this share from the similarity, the rest from the text score.
HYBRID_SIMILARITY_SHARE = 0.7
#: What one "useful" feedback adds to φ (and one "not useful" takes away).
FEEDBACK_PHI_STEP = 0.5
#: φ of a memory stored as a catalyst.
CATALYST_PHI = 1.0
#: What a merge adds to the survivor's φ: this much, or ``CATALYST_MERGE_PHI_STEP`` when the
#: merged memory was a catalyst, times ``NEAR_MATCH_FACTOR`` below ``EXACT_SIMILARITY``.
MERGE_PHI_STEP = 0.1
CATALYST_MERGE_PHI_STEP = 1.0
EXACT_SIMILARITY = 0.98
NEAR_MATCH_FACTOR = 0.9
#: Monthly decay: φ × ``PHI_DECAY_FACTOR`` for memories idle ``PHI_DECAY_IDLE_DAYS`` with
#: φ above ``PHI_DECAY_MIN`` (``memories.services.upkeep``).
PHI_DECAY_IDLE_DAYS = 30
PHI_DECAY_MIN = 0.5
PHI_DECAY_FACTOR = 0.95
#: Words found in more than this share of a namespace's memories are left out of the
#: text side's matching (unless every word of the question is that common): their
#: inverse document frequency is small, and matching them costs a scan of most rows.
TEXT_COMMON_SHARE = 0.2
#: The text side matches rows by the question's rarest words while their document
#: frequencies add up to at most this many rows, so its cost is bounded in a large
#: namespace (every word of the question still counts in the score of a matched row).
TEXT_MATCH_BUDGET = 2000


def clamp_phi(phi: float) -> float:
    return min(max(phi, PHI_MIN), PHI_MAX)


def clamp_phi_sql(phi: str) -> str:
    """``clamp_phi`` over an SQL expression."""
    return f"LEAST(GREATEST({phi}, {PHI_MIN}), {PHI_MAX})"


def query_phi_increment() -> float:
    """What a returned query hit adds to φ (a setting; 0 by default)."""
    return settings.ANIMA_QUERY_PHI_INCREMENT


def merge_phi_step(*, similarity: float, was_catalyst: bool) -> float:
    """What merging a memory (of this similarity, a catalyst or not) adds to the survivor's φ."""
    base = CATALYST_MERGE_PHI_STEP if was_catalyst else MERGE_PHI_STEP
    return base * (1.0 if similarity >= EXACT_SIMILARITY else NEAR_MATCH_FACTOR)


def resonance_bonus(phi: float) -> float:
    return PHI_BONUS_MAX * clamp_phi(phi) / PHI_MAX


def hybrid_relevance(similarity: float, text_score: float, text_max: float) -> float:
    text = text_score / text_max if text_max > 0 else 0.0
    return HYBRID_SIMILARITY_SHARE * similarity + (1.0 - HYBRID_SIMILARITY_SHARE) * text


def clears_threshold(similarity: float, threshold: float, text_score: float | None = None) -> bool:
    """Whether a candidate may be returned: similarity ≥ the threshold, or (hybrid) a word
    of the question matched, whatever its similarity."""
    return (text_score or 0.0) > 0 or similarity >= threshold


def structural_weight(relevance: float, phi: float, recency: float = 1.0) -> float:
    return (relevance + resonance_bonus(phi)) * recency


def structural_weight_sql(relevance: str, phi: str, recency: str = "1.0") -> str:
    """``structural_weight`` over SQL expressions (e.g. ``"1 - (e.embedding <=> %s)"``,
    ``"m.resonance_phi"``), for a statement written in SQL."""
    return f"(({relevance}) + {clamp_phi_sql(phi)} * {PHI_BONUS_MAX / PHI_MAX!r}) * ({recency})"


class StructuralWeight(Func):
    """``structural_weight_sql`` as a Django expression, for a ranking done in the ORM (the
    arguments are expressions: e.g. ``1.0 - F("distance")``, ``F("resonance_phi")``)."""

    output_field = FloatField()

    def __init__(self, relevance, phi, recency):
        super().__init__(relevance, phi, recency)

    def as_sql(self, compiler, connection, **extra_context):
        parts, params = [], []
        for expression in self.get_source_expressions():
            sql, expression_params = compiler.compile(expression)
            parts.append(sql)
            params.extend(expression_params)
        return structural_weight_sql(*parts), params


def weight_ceiling(relevance_bound: float, phi_top: float = PHI_MAX) -> float:
    """The highest weight a memory of relevance ≤ ``relevance_bound`` and φ ≤ ``phi_top`` can have."""
    return relevance_bound + resonance_bonus(phi_top)


def pool_is_decisive(*, limit_weight: float, relevance_floor: float, phi_top: float = PHI_MAX) -> bool:
    """True when nothing with relevance ≤ ``relevance_floor`` (and φ ≤ ``phi_top``, the
    highest φ there is) can beat ``limit_weight``."""
    return limit_weight >= weight_ceiling(relevance_floor, phi_top)


def phi_needed(*, limit_weight: float, relevance_floor: float) -> float:
    """φ*: the φ whose bonus makes up the gap between ``relevance_floor`` and ``limit_weight``;
    a memory of relevance ≤ the floor and lower φ cannot reach the limit-th weight."""
    return (limit_weight - relevance_floor) / PHI_BONUS_MAX * PHI_MAX


def recency_factor(last_accessed: datetime | None, *, half_life_days: float | None, now: datetime) -> float:
    """``0.5 ** (age_days / half_life)`` of the last access; 1 without a half-life."""
    if not half_life_days or last_accessed is None:
        return 1.0
    age_days = max((now - last_accessed).total_seconds(), 0.0) / 86400
    return 0.5 ** (age_days / half_life_days)


def recency_expression(
    *, half_life_days: float | None, now: datetime, last_accessed: str = "memories_memory.last_accessed"
) -> RawSQL:
    """``recency_factor`` as SQL over the column ``last_accessed``."""
    if not half_life_days:
        return RawSQL("1.0", [], output_field=FloatField())
    return RawSQL(
        f"power(0.5, GREATEST(EXTRACT(EPOCH FROM (%s - {last_accessed})), 0) / 86400.0 / %s)",
        [now, half_life_days],
        output_field=FloatField(),
    )


def inverse_document_frequency(document_frequency: int, total: int) -> float:
    """BM25's idf, ``ln(1 + (N − df + 0.5) / (df + 0.5))``: always positive."""
    return math.log(1.0 + (total - document_frequency + 0.5) / (document_frequency + 0.5))


def rank_key(weight: float, phi: float, memory_id) -> tuple:
    """Order: weight, then φ, then id (deterministic)."""
    return (-weight, -phi, str(memory_id))
