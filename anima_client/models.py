"""What the API answers, as pydantic models with snake_case attributes.

The API's keys are camelCase (``accessCount``); each model reads them through an alias
(``memory.access_count``) and ``to_api()`` gives them back as the API spells them. JSON
that a client stored (``metadata``, a reflection's ``sessionMetrics``) stays a plain
dict, untouched. Fields a newer server adds are kept (``model_extra``), never an error.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

Tier = Literal["active", "thread", "stable", "network"]
QueryMode = Literal["semantic", "hybrid"]


class ApiModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, validate_by_alias=True, extra="allow", frozen=False
    )

    def to_api(self) -> dict[str, Any]:
        """The API's own JSON shape (camelCase keys), e.g. for ``anima --json``."""
        return self.model_dump(mode="json", by_alias=True, exclude={"meta"})


class Promotion(ApiModel):
    """A tier move that an access caused (``meta.promotions``)."""

    memory_id: UUID
    from_tier: str
    to_tier: str


class ResponseMeta(ApiModel):
    """``meta`` of the envelope: the request id and what the endpoint adds."""

    request_id: str | None = None
    timestamp: datetime | None = None
    embedding_provider: str | None = None
    query_time: float | None = None
    promotions: list[Promotion] = Field(default_factory=list)
    #: Add: older memories the new one may correct (confirm with ``correct(old, corrected_by=new)``).
    possibly_corrects: list[UUID] = Field(default_factory=list)


class Memory(ApiModel):
    id: UUID
    namespace: str
    content: str
    content_hash: str
    category: str | None = None
    tags: list[str] = Field(default_factory=list)
    source: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    tier: str
    tier_last_updated: datetime | None = None
    access_count: int = 0
    last_accessed: datetime | None = None
    resonance_phi: float = 0.0
    phi_decayed_at: datetime | None = None
    is_catalyst: bool = False
    pinned: bool = False
    merged_into: UUID | None = None
    #: Facts that change: the memory that corrected this one (None while it is current)…
    superseded_by: UUID | None = None
    #: …and the memories this one corrected.
    supersedes: list[UUID] = Field(default_factory=list)
    valid_from: datetime | None = None
    #: When a correction superseded it (None while current).
    valid_until: datetime | None = None
    #: After this moment it behaves as superseded (None: never).
    expires_at: datetime | None = None
    embedding_truncated: bool = False
    occurred_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class QueryHit(Memory):
    """A memory found by a query, shown after the access it counted."""

    similarity: float
    #: Similarity (semantic) or 0.7 × similarity + 0.3 × normalised text score (hybrid).
    relevance: float | None = None
    #: relevance + a resonance bonus of at most 0.05 (× recency when asked).
    structural_weight: float
    #: Hybrid only: the sum of the idf of the question's words the memory contains.
    text_score: float | None = None


class AddResult(ApiModel):
    memory: Memory
    is_duplicate: bool
    message: str
    meta: ResponseMeta = Field(default_factory=ResponseMeta)

    @property
    def possibly_corrects(self) -> list[UUID]:
        """Older memories the new one may correct (a near-duplicate differing by a negation
        or a number): confirm with ``correct(old_id, corrected_by=memory.id)``."""
        return self.meta.possibly_corrects


class Correction(ApiModel):
    """``POST /memories/{id}/correct``: the correcting memory (new, or the ``corrected_by``
    one) and the corrected one, now superseded (``superseded_by``, ``valid_until`` set)."""

    memory: Memory
    corrected: Memory
    message: str
    meta: ResponseMeta = Field(default_factory=ResponseMeta)

    @property
    def embedding_provider(self) -> str | None:
        """The provider that embedded the new memory (None when an existing one corrected it)."""
        return self.meta.embedding_provider


BatchStatus = Literal["created", "duplicate", "invalid"]


class BatchItemResult(ApiModel):
    """One item of an add-batch, in request order: ``field``/``message`` say why an invalid one was refused."""

    index: int
    #: ``created``, ``duplicate`` or ``invalid`` (see ``BatchStatus``).
    status: str
    memory_id: UUID | None = None
    field: str | None = None
    message: str | None = None


class BatchCounts(ApiModel):
    created: int = 0
    duplicate: int = 0
    invalid: int = 0


class AddBatchResult(ApiModel):
    """``POST /memories/add-batch``: every item's outcome in request order, and the sums."""

    items: list[BatchItemResult]
    counts: BatchCounts
    meta: ResponseMeta = Field(default_factory=ResponseMeta)

    @property
    def memory_ids(self) -> list[UUID | None]:
        """The memory of each item, in request order (None for an invalid item)."""
        return [item.memory_id for item in self.items]

    @property
    def invalid(self) -> list[BatchItemResult]:
        return [item for item in self.items if item.status == "invalid"]


class QueryResult(ApiModel):
    memories: list[QueryHit]
    count: int
    query: str
    meta: ResponseMeta = Field(default_factory=ResponseMeta)


class FeedbackMemory(ApiModel):
    """A memory after a feedback mark: its new φ and access count."""

    memory_id: UUID
    resonance_phi: float
    access_count: int


class FeedbackResult(ApiModel):
    """``POST /memories/feedback``: the memories marked, and the ids that matched none
    (unknown, deleted, merged or of another namespace; nothing changed for them)."""

    updated: list[FeedbackMemory]
    not_found: list[UUID] = Field(default_factory=list)
    useful: bool
    meta: ResponseMeta = Field(default_factory=ResponseMeta)


class TierDistribution(ApiModel):
    active: int = 0
    thread: int = 0
    stable: int = 0
    total: int = 0


class BootstrapMemories(ApiModel):
    #: Pinned memories open every bootstrap, before the tiers (and are not repeated there).
    pinned: list[Memory] = Field(default_factory=list)
    active: list[Memory] = Field(default_factory=list)
    thread: list[Memory] = Field(default_factory=list)
    stable: list[Memory] = Field(default_factory=list)


class Bootstrap(ApiModel):
    memories: BootstrapMemories
    distribution: TierDistribution
    meta: ResponseMeta = Field(default_factory=ResponseMeta)

    @property
    def pinned(self) -> list[Memory]:
        """The pinned memories, highest φ first (also ``memories.pinned``)."""
        return self.memories.pinned

    @property
    def all(self) -> list[Memory]:
        """Every loaded memory, pinned first, then stable (the order the budget fills)."""
        return [*self.memories.pinned, *self.memories.stable, *self.memories.thread, *self.memories.active]


class TierPromotion(ApiModel):
    """The audit row of a tier move."""

    from_tier: str
    to_tier: str
    reason: str
    access_count_at_promotion: int
    created_at: datetime


class TierChange(ApiModel):
    memory: Memory
    promotion: TierPromotion | None = None
    message: str
    meta: ResponseMeta = Field(default_factory=ResponseMeta)


class Catalyst(ApiModel):
    id: UUID
    content: str
    tier: str
    category: str | None = None
    phi: float
    is_catalyst: bool
    access_count: int
    last_accessed: datetime | None = None


class Catalysts(ApiModel):
    catalysts: list[Catalyst]
    count: int
    meta: ResponseMeta = Field(default_factory=ResponseMeta)


class TopCategory(ApiModel):
    category: str | None = None
    total_phi: float
    memory_count: int


class PhiStats(ApiModel):
    total_phi: float
    avg_phi: float
    max_phi: float
    catalyst_count: int
    total_memories: int
    top_category: TopCategory | None = None
    meta: ResponseMeta = Field(default_factory=ResponseMeta)


class Association(ApiModel):
    """A neighbour of a memory and the pair's co-occurrence record."""

    memory_id: UUID
    content: str
    tier: str
    category: str | None = None
    tags: list[str] = Field(default_factory=list)
    access_count: int
    co_occurrence_count: int
    strength: float
    first_co_occurred_at: datetime | None = None
    last_co_occurred_at: datetime | None = None
    conversation_contexts: list[str] = Field(default_factory=list)


class Associations(ApiModel):
    memory_id: UUID
    associations: list[Association]
    count: int
    meta: ResponseMeta = Field(default_factory=ResponseMeta)


class Hub(ApiModel):
    memory_id: UUID
    content: str
    tier: str
    category: str | None = None
    phi: float
    total_connections: int
    total_co_occurrences: int
    avg_strength: float


class Hubs(ApiModel):
    hubs: list[Hub]
    count: int
    meta: ResponseMeta = Field(default_factory=ResponseMeta)


class NetworkStats(ApiModel):
    memory_id: UUID
    total_associations: int
    avg_strength: float
    max_strength: float
    total_co_occurrences: int
    meta: ResponseMeta = Field(default_factory=ResponseMeta)


class MetaReflection(ApiModel):
    """The service's reflection on a conversation (``/meta/conversation-end``)."""

    id: int
    reflection_type: str
    conversation_id: str | None = None
    session_metrics: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    insights: list[str] = Field(default_factory=list)
    recommendations: list[str] = Field(default_factory=list)
    created_at: datetime
    meta: ResponseMeta = Field(default_factory=ResponseMeta)


class ConversationReflection(ApiModel):
    """The assistant's own view of a conversation (``/reflection/conversation-end``)."""

    id: int
    conversation_id: str
    context_quality: int | None = None
    continuity_score: int | None = None
    needed_correction: bool = False
    had_emergence_moment: bool = False
    surprises: str = ""
    friction_notes: str = ""
    general_notes: str = ""
    reflected_at: datetime
    meta: ResponseMeta = Field(default_factory=ResponseMeta)


class Handshake(ApiModel):
    #: None when composed for a read-only key and not kept.
    id: int | None = None
    prompt_text: str
    top_memories: list[dict[str, Any]] = Field(default_factory=list)
    created_at: datetime
    expires_at: datetime
    #: True when this request generated it, False when the current one was reused.
    created: bool = False
    meta: ResponseMeta = Field(default_factory=ResponseMeta)


class HandshakeHistory(ApiModel):
    handshakes: list[Handshake]
    count: int
    meta: ResponseMeta = Field(default_factory=ResponseMeta)


class MemoryPage(ApiModel):
    memories: list[Memory]
    count: int
    next_cursor: str | None = None
    previous_cursor: str | None = None
    meta: ResponseMeta = Field(default_factory=ResponseMeta)


class MemoryUpdate(ApiModel):
    memory: Memory
    message: str
    meta: ResponseMeta = Field(default_factory=ResponseMeta)


class DeletedMemory(ApiModel):
    id: UUID
    deleted_at: datetime
    message: str
    meta: ResponseMeta = Field(default_factory=ResponseMeta)


class PurgeCounts(ApiModel):
    """What a purge removed: memories, copies of their text scrubbed from other rows,
    handshakes quoting them, task records and admin log entries naming them."""

    memories: int = 0
    copies_scrubbed: int = 0
    handshakes: int = 0
    task_records: int = 0
    admin_log_entries: int = 0


class PurgedMemory(ApiModel):
    """``DELETE /memories/{id}/?purge=true``: the memory is gone for good (not restorable)."""

    id: UUID
    purged: bool = True
    counts: PurgeCounts
    message: str
    meta: ResponseMeta = Field(default_factory=ResponseMeta)


class NamespacePurgeCounts(PurgeCounts):
    reflections: int = 0
    conversation_reflections: int = 0
    api_keys: int = 0


class NamespacePurge(ApiModel):
    """``POST /namespaces/purge``: everything of the namespace removed, its API keys too."""

    namespace: str
    counts: NamespacePurgeCounts
    meta: ResponseMeta = Field(default_factory=ResponseMeta)


class HealthCheck(ApiModel):
    status: str
    latency_ms: float | None = None
    error: str | None = None


class Health(ApiModel):
    """``GET /health``: ``ok`` is True when every check passed (the service answered 200)."""

    status: str
    checks: dict[str, HealthCheck] = Field(default_factory=dict)
    failing: list[str] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"
