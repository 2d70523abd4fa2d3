"""The memory data model (SPEC §2).

The vector lives in ``MemoryEmbedding``, not on ``Memory``: every query hit updates the
access counters and φ of the rows it returns, and in PostgreSQL each such update writes
a new row version into every index of the table — an HNSW insertion is a graph search.
Counters change on every read, the vector only when content or model change, so they
live in different tables (measured at 50k rows: 16.9 ms vs 1.3 ms p50 for 20 updates).
"""

import uuid

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now
from django.utils import timezone
from pgvector.django import HnswIndex, VectorField

from memories.ranking import PHI_MAX, PHI_MIN

#: The dimension of the embedding column as created by the migrations. The embedding
#: system check compares the configured provider against the column in the database.
EMBEDDING_DIMENSIONS = 384

MAX_CONTENT_CHARS = 50_000
MAX_TAGS = 20
MAX_TAG_CHARS = 50
#: The most recent distinct conversations an association keeps (``memories.services.associations``).
MAX_CONVERSATION_CONTEXTS = 20
LIVE = Q(deleted_at__isnull=True)


def current(prefix: str = "") -> Q:
    """Facts that hold now: not superseded by a correction, not past their ``expires_at``
    (SPEC "Facts that change"). ``prefix`` reaches ``Memory`` from another model."""
    return Q(**{f"{prefix}valid_until__isnull": True}) & (
        Q(**{f"{prefix}expires_at__isnull": True}) | Q(**{f"{prefix}expires_at__gt": Now()})
    )


def valid_at(moment, prefix: str = "") -> Q:
    """Facts that held at ``moment``: valid from before it, not yet superseded, not yet expired."""
    return (
        Q(**{f"{prefix}valid_from__lte": moment})
        & (Q(**{f"{prefix}valid_until__isnull": True}) | Q(**{f"{prefix}valid_until__gt": moment}))
        & (Q(**{f"{prefix}expires_at__isnull": True}) | Q(**{f"{prefix}expires_at__gt": moment}))
    )


#: What default reads return: live memories whose facts hold now.
CURRENT = current()


class Tier(models.TextChoices):
    ACTIVE = "active"
    THREAD = "thread"
    STABLE = "stable"
    NETWORK = "network"


class DateWords(models.Func):
    """``anima_date_words(ts)``: the day, month name and year of ``ts`` in UTC
    ("8 May 2023"), a function of migration 0009. The full-text side indexes these words
    with the content, so a question that names a month or a year finds memories that
    happened then."""

    function = "anima_date_words"
    output_field = models.TextField()


class Memory(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    namespace = models.SlugField(max_length=64, default="default")
    content = models.TextField()
    content_hash = models.CharField(max_length=64)
    normalized_hash = models.CharField(max_length=64)
    tier = models.CharField(max_length=16, choices=Tier.choices, default=Tier.ACTIVE)
    tier_last_updated = models.DateTimeField(default=timezone.now)
    access_count = models.PositiveIntegerField(default=0)
    last_accessed = models.DateTimeField(default=timezone.now)
    resonance_phi = models.FloatField(default=0.0)
    phi_decayed_at = models.DateTimeField(null=True, blank=True)
    is_catalyst = models.BooleanField(default=False)
    pinned = models.BooleanField(default=False)
    category = models.CharField(max_length=100, null=True, blank=True)
    tags = ArrayField(models.CharField(max_length=MAX_TAG_CHARS), size=MAX_TAGS, default=list, blank=True)
    source = models.CharField(max_length=100, null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged_variants"
    )
    # Facts that change (``memories.services.supersession``): a correction sets on the old
    # memory ``superseded_by`` and ``valid_until`` (the moment of the correction); the new
    # one lists the ids it replaced in ``supersedes`` and is valid from its creation.
    # ``expires_at``: after it the memory behaves as superseded (kept, out of default reads).
    superseded_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="superseded_memories"
    )
    supersedes = ArrayField(models.UUIDField(), default=list, blank=True)
    valid_from = models.DateTimeField(default=timezone.now)
    valid_until = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    # When the remembered thing happened (SPEC "Event time"); the add path sets it to
    # ``created_at`` when the client gives none.
    occurred_at = models.DateTimeField(default=timezone.now)
    search_vector = models.GeneratedField(
        expression=SearchVector("content", DateWords("occurred_at"), config="english"),
        output_field=SearchVectorField(),
        db_persist=True,
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "memories"
        constraints = [
            models.UniqueConstraint(fields=["namespace", "content_hash"], condition=LIVE, name="memory_live_hash_uniq"),
            models.CheckConstraint(
                condition=Q(resonance_phi__gte=PHI_MIN) & Q(resonance_phi__lte=PHI_MAX), name="memory_phi_range"
            ),
            models.CheckConstraint(condition=~Q(superseded_by=models.F("id")), name="memory_not_self_superseded"),
            models.CheckConstraint(
                condition=Q(superseded_by__isnull=True) | Q(valid_until__isnull=False), name="memory_superseded_until"
            ),
        ]
        indexes = [
            models.Index(fields=["namespace", "normalized_hash"], condition=LIVE, name="memory_live_norm_hash"),
            # Bootstrap's thread/stable branches: highest φ first, ties by recency then id.
            models.Index(
                fields=["namespace", "tier", "-resonance_phi", "-last_accessed", "id"],
                condition=LIVE,
                name="memory_tier_phi",
            ),
            # Bootstrap's active branch: most recently accessed first.
            models.Index(fields=["namespace", "tier", "-last_accessed", "id"], condition=LIVE, name="memory_tier_recent"),
            # Catalysts, stats and the query's exact-ranking bound (φ ≥ φ*).
            models.Index(
                fields=["namespace", "-resonance_phi", "-access_count"], condition=LIVE, name="memory_phi_access"
            ),
            # Event-time filters (occurredAfter / occurredBefore).
            models.Index(fields=["namespace", "occurred_at"], condition=LIVE, name="memory_live_occurred"),
            # The resource list's default order and its keyset cursor.
            models.Index(fields=["namespace", "-created_at", "-id"], condition=LIVE, name="memory_live_created"),
            GinIndex(fields=["tags"], name="memory_tags_gin"),
            # Query filters on metadata use JSON containment (metadata @> {...}).
            GinIndex(fields=["metadata"], opclasses=["jsonb_path_ops"], name="memory_metadata_gin"),
            # Pinned memories open every bootstrap: a tiny partial index finds them.
            models.Index(
                fields=["namespace", "-resonance_phi", "id"], condition=LIVE & Q(pinned=True), name="memory_pinned"
            ),
            GinIndex(fields=["search_vector"], name="memory_search_gin"),
        ]

    def __str__(self) -> str:
        return self.content[:80]


def _cosine_hnsw(name: str, **options) -> HnswIndex:
    """An HNSW graph over the vectors for cosine distance (pgvector's defaults m=16, ef_construction=64)."""
    return HnswIndex(name=name, fields=["embedding"], m=16, ef_construction=64, opclasses=["vector_cosine_ops"], **options)


class MemoryEmbedding(models.Model):
    memory = models.OneToOneField(Memory, primary_key=True, on_delete=models.CASCADE, related_name="embedding")
    namespace = models.SlugField(max_length=64)
    embedding = VectorField(dimensions=EMBEDDING_DIMENSIONS)
    embedding_model = models.CharField(max_length=200)
    truncated = models.BooleanField(default=False)

    class Meta:
        indexes = [
            _cosine_hnsw("embedding_hnsw_cosine"),
            models.Index(fields=["embedding_model"], name="embedding_model_idx"),
        ]


class MemoryAssociation(models.Model):
    """An unordered co-occurrence pair, stored ordered (a < b)."""

    namespace = models.SlugField(max_length=64)
    memory_a = models.ForeignKey(Memory, on_delete=models.CASCADE, related_name="+")
    memory_b = models.ForeignKey(Memory, on_delete=models.CASCADE, related_name="+")
    co_occurrence_count = models.PositiveIntegerField(default=0)
    strength = models.FloatField(default=0.0)
    first_co_occurred_at = models.DateTimeField(default=timezone.now)
    last_co_occurred_at = models.DateTimeField(default=timezone.now)
    conversation_contexts = ArrayField(
        models.CharField(max_length=200), size=MAX_CONVERSATION_CONTEXTS, default=list, blank=True
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["memory_a", "memory_b"], name="association_pair_uniq"),
            models.CheckConstraint(condition=Q(memory_a__lt=models.F("memory_b")), name="association_ordered"),
        ]
        indexes = [models.Index(fields=["memory_b"], name="association_b")]


class TierPromotion(models.Model):
    memory = models.ForeignKey(Memory, on_delete=models.CASCADE, related_name="promotions")
    from_tier = models.CharField(max_length=16, choices=Tier.choices)
    to_tier = models.CharField(max_length=16, choices=Tier.choices)
    reason = models.CharField(max_length=200)
    access_count_at_promotion = models.PositiveIntegerField()
    days_since_last_access = models.FloatField(null=True)
    created_at = models.DateTimeField(default=timezone.now)


class MemoryAccess(models.Model):
    memory = models.ForeignKey(Memory, on_delete=models.CASCADE, related_name="accesses")
    conversation_id = models.CharField(max_length=200, null=True, blank=True)
    accessed_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name_plural = "memory accesses"
        indexes = [models.Index(fields=["memory", "-accessed_at"], name="access_memory_recent")]


class TierCount(models.Model):
    """Live memories per (namespace, tier), kept exact by database triggers.

    Bootstrap's ``distribution`` and the metrics read these few rows instead of counting
    a namespace that may hold a million memories.
    """

    namespace = models.SlugField(max_length=64)
    tier = models.CharField(max_length=16, choices=Tier.choices)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["namespace", "tier"], name="tiercount_uniq")]


class WorkKind(models.TextChoices):
    COOCCURRENCE = "cooccurrence"
    CONSOLIDATION = "consolidation"
    CATALYST = "catalyst"
    ACCESS = "access"


class BackgroundWork(models.Model):
    """Work a request leaves for the background, recorded in the request's own transaction.

    A query with a conversation and ≥ 2 hits leaves a ``cooccurrence`` row; every query
    with hits a ``catalyst`` row and an ``access`` row (its hits' counters, applied by the
    drain: ``memories.services.access``); an add (or a content edit) a ``consolidation`` row and,
    unless it is a catalyst, a ``catalyst`` row. A drain task claims rows of one kind in
    id order (``FOR UPDATE SKIP LOCKED``), applies them with set-based SQL and deletes
    them in the same transaction (``memories.services.draining``). No foreign key: a
    purge removes its ids from ``memory_ids`` itself, and a drain skips memories that
    are gone.
    """

    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=16, choices=WorkKind.choices)
    namespace = models.SlugField(max_length=64)
    memory_ids = ArrayField(models.UUIDField())
    conversation_id = models.CharField(max_length=200, null=True, blank=True)
    #: The database's clock, like the lag computed from it (/health, metrics, serve).
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        verbose_name_plural = "background work"
        indexes = [models.Index(fields=["kind", "id"], name="work_kind_order")]


class BackgroundDrain(models.Model):
    """One row per kind of work (created on first use): whether a drain is queued, and progress.

    ``queued_at`` coalesces requests: a request enqueues a drain only when none is
    queued (or the queued one is older than ``REQUEST_STALE_SECONDS`` and presumed
    lost); a drain clears it when it starts. ``progressed_at`` is the commit time of the
    last batch: ``manage.py serve`` restarts a task cluster that makes no progress while
    work waits.
    """

    kind = models.CharField(max_length=16, choices=WorkKind.choices, primary_key=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    progressed_at = models.DateTimeField(null=True, blank=True)
    processed = models.BigIntegerField(default=0)


class CacheGeneration(models.Model):
    """The token every cached embedding of a namespace is keyed with (one row per namespace,
    made on first use). A purge replaces it in its transaction, so every process's cached
    vectors of the namespace — in a local-memory cache too — become unreachable at once."""

    namespace = models.SlugField(max_length=64, primary_key=True)
    token = models.UUIDField(default=uuid.uuid4)
