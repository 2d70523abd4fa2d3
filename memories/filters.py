"""``MemoryFilters``: which live memories a read may return — one object for the query's
candidate search (``memories.search``) and the resource list (``memories.selectors.memories``).

Every condition is a column of ``Memory``, so the filters run inside the search (with the
HNSW index's iterative scan), never after it. That includes validity (SPEC "Facts that
change"): by default only current facts (``models.current``); ``as_of`` the facts valid at
that moment (``models.valid_at``); ``include_superseded`` every live memory.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q

from memories.models import current, valid_at


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
    #: The facts valid at this moment instead of the current ones.
    as_of: datetime | None = None
    #: Every live memory, superseded and expired ones too (exclusive with ``as_of``).
    include_superseded: bool = False

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
        if self.include_superseded:
            q = Q()
        elif self.as_of is not None:
            q = valid_at(self.as_of, prefix)
        else:
            q = current(prefix)
        for lookup, value in conditions.items():
            if value is not None:
                q &= Q(**{f"{prefix}{lookup}": value})
        return q
