"""The JSON Lines format of an export (SPEC §7): one memory per line, camelCase keys as in
the API: ``id``, ``content``, ``namespace``, ``category``, ``tags``, ``source``,
``metadata``, ``tier``, ``tierLastUpdated``, ``resonancePhi``, ``phiDecayedAt``,
``isCatalyst``, ``pinned``, ``accessCount``, ``lastAccessed``, ``occurredAt``,
``createdAt``, ``updatedAt``, ``deletedAt``, ``mergedInto`` and, with embeddings,
``embedding`` (floats), ``embeddingModel``, ``embeddingTruncated``.
Timestamps are ISO 8601 in UTC with microseconds; a vector is written in pgvector's own
shortest text form, which reads back to the same float32 values.
"""

MEMORY_KEYS = (
    "id",
    "content",
    "namespace",
    "category",
    "tags",
    "source",
    "metadata",
    "tier",
    "tierLastUpdated",
    "resonancePhi",
    "phiDecayedAt",
    "isCatalyst",
    "pinned",
    "accessCount",
    "lastAccessed",
    "occurredAt",
    "createdAt",
    "updatedAt",
    "deletedAt",
    "mergedInto",
)
EMBEDDING_KEYS = ("embedding", "embeddingModel", "embeddingTruncated")
KNOWN_KEYS = frozenset(MEMORY_KEYS + EMBEDDING_KEYS)
