"""The JSON Lines format of an export (SPEC §7): one memory per line, camelCase keys as in
the API: ``id``, ``content``, ``namespace``, ``category``, ``tags``, ``source``,
``metadata``, ``tier``, ``tierLastUpdated``, ``resonancePhi``, ``phiDecayedAt``,
``isCatalyst``, ``pinned``, ``accessCount``, ``lastAccessed``, ``occurredAt``,
``createdAt``, ``updatedAt``, ``deletedAt``, ``mergedInto``, the facts that change
(``supersededBy``: the id of the memory that corrected this one; ``supersedes``: the ids
it corrected; ``validFrom``, ``validUntil``: when it held, ``validUntil`` set once
superseded; ``expiresAt``) and, with embeddings, ``embedding`` (floats),
``embeddingModel``, ``embeddingTruncated``.
Timestamps are ISO 8601 in UTC with microseconds; a vector is written in pgvector's own
shortest text form, which reads back to the same float32 values.

The format has no version number: a key is only ever added, and an import gives a key
the line lacks its default (a file written before the facts that change: no links,
``validFrom`` = ``createdAt``, no ``validUntil`` or ``expiresAt``).
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
    "supersededBy",
    "supersedes",
    "validFrom",
    "validUntil",
    "expiresAt",
)
EMBEDDING_KEYS = ("embedding", "embeddingModel", "embeddingTruncated")
KNOWN_KEYS = frozenset(MEMORY_KEYS + EMBEDDING_KEYS)
