"""``MemoryFilters``: which live memories a read may return — one object for the query's
candidate search (``memories.search``) and the resource list (``memories.selectors.memories``).

Every condition is a column of ``Memory``, so the filters run inside the search (with the
HNSW index's iterative scan), never after it.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q


@dataclass(frozen=True)
class MemoryFilters:
    tiers: list[str] | None = None
    category: str | None = None
    #: Every tag must be present.
    tags: list[str] | None = None
    #: JSON containment: ``metadata @> this``.
    metadata: dict | None = None
    source: str | None = None
    is_catalyst: bool | None = None
    #: Inclusive lower and exclusive upper bound of ``created_at``.
    created_after: datetime | None = None
    created_before: datetime | None = None
    #: Inclusive lower bound of ``last_accessed``.
    last_accessed_after: datetime | None = None
    #: Inclusive lower and exclusive upper bound of ``occurred_at``.
    occurred_after: datetime | None = None
    occurred_before: datetime | None = None

    def narrows(self) -> bool:
        """Whether any filter is set (the live memories of a namespace are all it allows otherwise)."""
        return any(value not in (None, [], {}) for value in self.__dict__.values())

    def q(self, prefix: str = "") -> Q:
        """Live memories that pass every filter; ``prefix`` reaches ``Memory`` from another
        model (``"memory__"`` from ``MemoryEmbedding``)."""
        conditions = {
            "deleted_at__isnull": True,
            "tier__in": self.tiers or None,
            "category": self.category,
            "tags__contains": list(self.tags) if self.tags else None,
            "metadata__contains": self.metadata or None,
            "source": self.source,
            "is_catalyst": self.is_catalyst,
            "created_at__gte": self.created_after,
            "created_at__lt": self.created_before,
            "last_accessed__gte": self.last_accessed_after,
            "occurred_at__gte": self.occurred_after,
            "occurred_at__lt": self.occurred_before,
        }
        q = Q()
        for lookup, value in conditions.items():
            if value is not None:
                q &= Q(**{f"{prefix}{lookup}": value})
        return q
