"""The conversation-start context (``GET /memories/bootstrap``): pinned memories, then
the active, thread and stable branches: the candidates' ordering columns in one
statement, then the chosen memories whole in a second."""

import math
from dataclasses import dataclass
from functools import partial

from django.db.models.functions import Length

from anima_site.db import CompiledRows

from memories.models import CURRENT, LIVE, Memory, Tier
from memories.output_sql import memories_shown_json_and_counts
from memories.selectors.memories import memories_shown
from memories.selectors.tiers import distribution_of, tier_counts_from, tier_distribution

THREAD_SHARE = 0.7


def _same(value):
    return value

#: ``bootstrap_queryset`` compiled once per set of sizes (``CompiledRows``).
_STATEMENTS = CompiledRows()


@dataclass(frozen=True)
class Bootstrap:
    """The branches' memories: ``Memory`` instances, or with ``as_json`` their API
    representation (``MemoryOutput``'s, written by PostgreSQL)."""

    pinned: list
    active: list
    thread: list
    stable: list
    distribution: dict[str, int]


@dataclass(frozen=True)
class _Candidate:
    """What choosing needs of a memory (its order, its branch, its length), not the memory."""

    id: object
    tier: str
    pinned: bool
    resonance_phi: float
    last_accessed: object
    chars: int


_CANDIDATE_COLUMNS = ("id", "tier", "pinned", "resonance_phi", "last_accessed", "chars")


def _candidates(rows, ordering: list[str], size: int):
    return rows.annotate(chars=Length("content")).order_by(*ordering).values_list(*_CANDIDATE_COLUMNS)[:size]


def _branch(namespace: str, tier: str, ordering: list[str], size: int):
    return _candidates(Memory.objects.filter(LIVE, CURRENT, namespace=namespace, tier=tier, pinned=False), ordering, size)


def bootstrap_queryset(*, namespace: str, active_size: int, thread_size: int, stable_size: int, pinned_size: int = 0):
    """The candidates, in one statement: index-ordered ``LIMIT`` branches under ``UNION ALL``,
    each row only the columns choosing needs (``_CANDIDATE_COLUMNS``).

    Its cost follows the sizes asked for, not the table: each branch walks its partial
    index (``memory_pinned`` / ``memory_tier_recent`` / ``memory_tier_phi``) and stops at
    its limit. Pinned memories come in their own branch and are skipped by the others.
    """
    pinned_rows = Memory.objects.filter(LIVE, CURRENT, namespace=namespace, pinned=True)
    pinned = _candidates(pinned_rows, ["-resonance_phi", "id"], pinned_size)
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
    as_json: bool = False,
) -> Bootstrap:
    """The conversation-start context: at most ``limit`` memories.

    Pinned memories come first (highest φ first) and count toward ``limit`` and
    ``max_chars``. Of what remains, active takes up to ``min(activeLimit, limit)``, most recently accessed first. Thread
    and stable share the rest: ``ceil(0.7 × rest)`` thread and the rest stable, highest
    φ first (ties: last accessed, id); a share one branch cannot fill goes to the other.
    ``rest`` counts the active memories actually returned. Each branch is read with
    ``LIMIT`` at most ``limit``, so the first statement reads at most 4 × limit rows, of
    which it returns only the columns choosing needs; the second reads the chosen
    memories (at most ``limit``) whole. (Reading every candidate whole cost 150 model
    instances and 900 parsed datetimes for 50 shown: most of a bootstrap's time.)

    With ``max_chars`` memories are taken stable → thread → active, each branch in its
    order; one that would overflow the budget is skipped and smaller ones after it
    may still fit.

    The chosen memories are read by id: ``memories_shown`` (model instances), or with
    ``as_json`` ``memories_shown_json_and_counts`` (their API representation, the view's),
    which also brings the tier counts (one round trip fewer).
    """
    active_cap = min(limit if active_limit is None else active_limit, limit) if include_active else 0
    sizes = {
        "pinned_size": limit,
        "active_size": active_cap,
        "thread_size": limit if include_thread else 0,
        "stable_size": limit if include_stable else 0,
    }
    shape = tuple(sizes.values())
    rows = [_Candidate(*row) for row in _STATEMENTS.rows(shape, partial(bootstrap_queryset, **sizes), namespace=namespace)]
    pinned = sorted((m for m in rows if m.pinned), key=lambda m: (-m.resonance_phi, str(m.id)))
    by_tier: dict[str, list[_Candidate]] = {Tier.ACTIVE: [], Tier.THREAD: [], Tier.STABLE: [], Tier.NETWORK: []}
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
        chosen: dict[str, list[_Candidate]] = {}
        for tier, branch in (("pinned", pinned), (Tier.STABLE, stable), (Tier.THREAD, thread), (Tier.ACTIVE, active)):
            chosen[tier] = []
            for memory in branch:
                if memory.chars <= budget:
                    chosen[tier].append(memory)
                    budget -= memory.chars
        pinned, active, thread, stable = chosen["pinned"], chosen[Tier.ACTIVE], chosen[Tier.THREAD], chosen[Tier.STABLE]

    ids = [c.id for c in (*pinned, *active, *thread, *stable)]
    if as_json:
        shown, counts = memories_shown_json_and_counts(ids, namespace=namespace)
        key, distribution = str, distribution_of(tier_counts_from(counts))
    else:
        shown, key, distribution = memories_shown(ids), _same, tier_distribution(namespace=namespace)

    def whole(branch: list[_Candidate]) -> list:
        return [shown[key(c.id)] for c in branch if key(c.id) in shown]  # gone in between: left out

    return Bootstrap(
        pinned=whole(pinned), active=whole(active), thread=whole(thread), stable=whole(stable), distribution=distribution
    )
