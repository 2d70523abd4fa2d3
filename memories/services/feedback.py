"""Explicit feedback: a client says that recalled memories helped ("useful") or misled.

One mark moves φ by ``FEEDBACK_PHI_STEP`` (0.5) of memories.ranking, up or down, within
[0, ``PHI_MAX``]. Why that step: φ enters the ranking only as the resonance bonus, at
most ``PHI_BONUS_MAX`` = 0.05 of relevance at φ = 5, so one mark is worth 0.005 of
relevance. A few marks break a near-tie between memories that are about equally
relevant; no number of marks lets a memory outrank one more relevant by over 0.05.
"""

from dataclasses import dataclass
from uuid import UUID

from memories.models import Memory
from memories.ranking import FEEDBACK_PHI_STEP
from memories.services.access import memories_record_access
from memories.services.tiers import Promotion


@dataclass(frozen=True)
class FeedbackResult:
    #: The live memories of the namespace among the ids, after the change, in request order.
    updated: list[Memory]
    #: The other ids (unknown, deleted, merged or of another namespace): nothing changed for them.
    not_found: list[UUID]
    promotions: list[Promotion]


def memory_feedback(
    *, namespace: str, memory_ids: list[UUID], useful: bool, conversation_id: str | None = None
) -> FeedbackResult:
    """Move φ of each live memory in ``memory_ids`` by ±``FEEDBACK_PHI_STEP``, clamped to
    [0, 5], as one audited access each (a ``MemoryAccess`` row, the count, the promotion
    rule); a constant number of statements for any number of ids."""
    unique_ids = list(dict.fromkeys(memory_ids))
    access = memories_record_access(
        namespace=namespace,
        memory_ids=unique_ids,
        conversation_id=conversation_id,
        phi_increment=FEEDBACK_PHI_STEP if useful else -FEEDBACK_PHI_STEP,
    )
    return FeedbackResult(
        updated=[access.memories[memory_id] for memory_id in unique_ids if memory_id in access.memories],
        not_found=[memory_id for memory_id in unique_ids if memory_id not in access.memories],
        promotions=access.promotions,
    )
