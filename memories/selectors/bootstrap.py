"""The conversation-start context (``GET /memories/bootstrap``): pinned memories, then
the active, thread and stable branches, read in one statement."""

import math
from dataclasses import dataclass

from django.db.models import F

from memories.models import CURRENT, LIVE, Memory, Tier
from memories.selectors.tiers import tier_distribution

THREAD_SHARE = 0.7


@dataclass(frozen=True)
class Bootstrap:
    pinned: list[Memory]
    active: list[Memory]
    thread: list[Memory]
    stable: list[Memory]
    distribution: dict[str, int]


def _branch(namespace: str, tier: str, ordering: list[str], size: int):
    return (
        Memory.objects.filter(LIVE, CURRENT, namespace=namespace, tier=tier, pinned=False)
        .annotate(embedding_truncated=F("embedding__truncated"))
        .defer("search_vector")
        .order_by(*ordering)[:size]
    )


def bootstrap_queryset(*, namespace: str, active_size: int, thread_size: int, stable_size: int, pinned_size: int = 0):
    """One statement: index-ordered ``LIMIT`` branches under ``UNION ALL``.

    Its cost follows the sizes asked for, not the table: each branch walks its partial
    index (``memory_pinned`` / ``memory_tier_recent`` / ``memory_tier_phi``) and stops at
    its limit. Pinned memories come in their own branch and are skipped by the others.
    """
    pinned = (
        Memory.objects.filter(LIVE, CURRENT, namespace=namespace, pinned=True)
        .annotate(embedding_truncated=F("embedding__truncated"))
        .defer("search_vector")
        .order_by("-resonance_phi", "id")[:pinned_size]
    )
    active = _branch(namespace, Tier.ACTIVE, ["-last_accessed", "id"], active_size)
    thread = _branch(namespace, Tier.THREAD, ["-resonance_phi", "-last_accessed", "id"], thread_size)
    stable = _branch(namespace, Tier.STABLE, ["-resonance_phi", "-last_accessed", "id"], stable_size)
    return pinned.union(active, thread, stable, all=True)


def memories_bootstrap(
    *,
    namespace: str,
    limit: int = 50,
    include_active: bool = True,
    include_thread: bool = True,
    include_stable: bool = True,
    active_limit: int | None = None,
    max_chars: int | None = None,
) -> Bootstrap:
    """The conversation-start context: at most ``limit`` memories.

    Pinned memories come first (highest φ first) and count toward ``limit`` and
    ``max_chars``. Of what remains, active takes up to ``min(activeLimit, limit)``, most recently accessed first. Thread
    and stable share the rest: ``ceil(0.7 × rest)`` thread and the rest stable, highest
    φ first (ties: last accessed, id); a share one branch cannot fill goes to the other.
    ``rest`` counts the active memories actually returned. Each branch is read with
    ``LIMIT`` at most ``limit``, so the statement reads at most 3 × limit rows.

    With ``max_chars`` memories are taken stable → thread → active, each branch in its
    order; one that would overflow the budget is skipped and smaller ones after it
    may still fit.
    """
    active_cap = min(limit if active_limit is None else active_limit, limit) if include_active else 0
    rows = list(
        bootstrap_queryset(
            namespace=namespace,
            pinned_size=limit,
            active_size=active_cap,
            thread_size=limit if include_thread else 0,
            stable_size=limit if include_stable else 0,
        )
    )
    pinned = sorted((m for m in rows if m.pinned), key=lambda m: (-m.resonance_phi, str(m.id)))
    by_tier: dict[str, list[Memory]] = {Tier.ACTIVE: [], Tier.THREAD: [], Tier.STABLE: [], Tier.NETWORK: []}
    for memory in rows:
        if not memory.pinned:
            by_tier[memory.tier].append(memory)
    limit -= len(pinned)
    active_cap = min(active_cap, limit)
    # UNION ALL keeps no order across branches; restore each branch's own.
    by_tier[Tier.ACTIVE].sort(key=lambda m: (-m.last_accessed.timestamp(), str(m.id)))
    for tier in (Tier.THREAD, Tier.STABLE):
        by_tier[tier].sort(key=lambda m: (-m.resonance_phi, -m.last_accessed.timestamp(), str(m.id)))

    active = by_tier[Tier.ACTIVE][:active_cap]
    rest = limit - len(active)
    thread_quota = math.ceil(THREAD_SHARE * rest)
    stable_quota = rest - thread_quota
    thread_available, stable_available = len(by_tier[Tier.THREAD]), len(by_tier[Tier.STABLE])
    if thread_available < thread_quota:
        stable_quota += thread_quota - thread_available
    elif stable_available < stable_quota:
        thread_quota += stable_quota - stable_available
    thread = by_tier[Tier.THREAD][:thread_quota]
    stable = by_tier[Tier.STABLE][:stable_quota]

    if max_chars is not None:
        budget = max_chars
        chosen: dict[str, list[Memory]] = {}
        for tier, branch in (("pinned", pinned), (Tier.STABLE, stable), (Tier.THREAD, thread), (Tier.ACTIVE, active)):
            chosen[tier] = []
            for memory in branch:
                if len(memory.content) <= budget:
                    chosen[tier].append(memory)
                    budget -= len(memory.content)
        pinned, active, thread, stable = chosen["pinned"], chosen[Tier.ACTIVE], chosen[Tier.THREAD], chosen[Tier.STABLE]

    distribution = tier_distribution(namespace=namespace)
    return Bootstrap(pinned=pinned, active=active, thread=thread, stable=stable, distribution=distribution)
