"""Writing reflections: the service's own numbers about a conversation, the assistant's view,
and their clean-up after purges and edits (the reads are in ``reflections.selectors``).

``reflection_record`` turns a client's ``sessionMetrics`` into a stored MetaReflection:

- friction: waste ratio = (loaded − accessed) / loaded (0 when nothing was loaded, 2
  decimals); feel ``rough`` when waste > 0.5, ``sticky`` when waste > 0.3 or the context
  took > 500 ms to load, else ``smooth``;
- retrieval: average results per query (rounded), average relevance = total relevance /
  total results, hit rate = relevant / total results (2 decimals) — both ``None`` when
  no results were returned (a count below one counts as none, so that no ratio of the
  counters, each at most ``METRIC_MAX``, can overflow), and then no insight or
  recommendation speaks of them;
- the namespace's tier distribution and its top hubs (limit 5, ≥ 3 connections);
- one-sentence insights and recommendations by the fixed rules below (SPEC §3).
"""

import math
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q

from memories.locks import quotes_lock
from memories.selectors.associations import associations_hubs
from memories.selectors.tiers import tier_counts
from reflections.models import ConversationReflection, MetaReflection

HUB_LIMIT = 5
HUB_MIN_CONNECTIONS = 3
HUB_PREVIEW_CHARS = 100
METRIC_KEYS = (
    "memories_loaded",
    "memories_accessed",
    "context_load_time_ms",
    "queries_executed",
    "total_results_returned",
    "total_relevance_score",
    "relevant_results",
)
#: The largest counter a session reports (validated at the API; clamped here as well, so
#: that no ratio of two counters can overflow or lose all precision).
METRIC_MAX = 1e12


@dataclass(frozen=True)
class Friction:
    waste_ratio: float
    feel: str


def friction(*, loaded: float, accessed: float, load_time_ms: float) -> Friction:
    waste = round((loaded - accessed) / loaded, 2) if loaded >= 1 else 0.0
    if waste > 0.5:
        feel = "rough"
    elif waste > 0.3 or load_time_ms > 500:
        feel = "sticky"
    else:
        feel = "smooth"
    return Friction(waste_ratio=waste, feel=feel)


def retrieval(*, queries: float, results: float, relevance: float, relevant: float) -> dict:
    """Counts below one count as none: every ratio then stays within the counters' bound
    (``METRIC_MAX``), so no division by a tiny count can overflow."""
    return {
        # Halves round up (4.5 → 5), as a reader expects; Python's round() would give 4.
        "avgResultsPerQuery": math.floor(results / queries + 0.5) if queries >= 1 else 0,
        "avgRelevance": round(relevance / results, 2) if results >= 1 else None,
        "hitRate": round(relevant / results, 2) if results >= 1 else None,
    }


def _share(distribution: dict, tier: str) -> float:
    return distribution[tier] / distribution["total"] if distribution["total"] else 0.0


def insights_for(metrics: dict) -> list[str]:
    fr, rt, dist, hubs = metrics["friction"], metrics["retrieval"], metrics["tierDistribution"], metrics["hubs"]
    waste = fr["wasteRatio"]
    insights = [
        {
            "smooth": "The conversation ran smoothly: the loaded context was mostly used.",
            "sticky": "The conversation felt sticky: part of the loaded context went unused or arrived slowly.",
            "rough": "The conversation felt rough: most of the loaded context went unused.",
        }[fr["feel"]]
    ]
    if waste < 0.2:
        insights.append(f"Little context was wasted ({waste:.0%} of loaded memories unused).")
    elif waste > 0.5:
        insights.append(f"Most loaded memories were never used ({waste:.0%} unused).")
    if rt["hitRate"] is not None:
        if rt["hitRate"] > 0.8:
            insights.append(f"Retrieval hit the mark: {rt['hitRate']:.0%} of results were relevant.")
        elif rt["hitRate"] < 0.5:
            insights.append(f"Retrieval often missed: only {rt['hitRate']:.0%} of results were relevant.")
    if rt["avgRelevance"] is not None:
        if rt["avgRelevance"] > 0.7:
            insights.append(f"Results were highly relevant on average ({rt['avgRelevance']:.2f}).")
        elif rt["avgRelevance"] < 0.5:
            insights.append(f"Results were weakly relevant on average ({rt['avgRelevance']:.2f}).")
    if _share(dist, "active") > 0.2:
        insights.append(f"{_share(dist, 'active'):.0%} of memories are still in the active tier.")
    if _share(dist, "stable") > 0.7:
        insights.append(f"Memory is mature: {_share(dist, 'stable'):.0%} of memories are stable.")
    if hubs:
        insights.append(f"The strongest hub connects {hubs[0]['totalConnections']} memories.")
    return insights


def recommendations_for(metrics: dict, session: dict) -> list[str]:
    fr, rt, dist, hubs = metrics["friction"], metrics["retrieval"], metrics["tierDistribution"], metrics["hubs"]
    recommendations = []
    if fr["wasteRatio"] > 0.4:
        recommendations.append("Load a smaller bootstrap: lower its limit or set maxChars.")
    if session["context_load_time_ms"] > 300:
        recommendations.append("Context loading is slow: bootstrap fewer memories or check the database latency.")
    if rt["hitRate"] is not None and rt["hitRate"] < 0.6:
        recommendations.append("Lower the similarity threshold or sharpen the queries to raise the hit rate.")
    if rt["avgResultsPerQuery"] > 50:
        recommendations.append("Queries return many results: lower their limit or raise the threshold.")
    if rt["avgResultsPerQuery"] < 5 and session["queries_executed"] > 0:
        recommendations.append("Queries return few results: lower the threshold or store more memories.")
    if _share(dist, "active") > 0.3:
        recommendations.append("Many memories stay active: review the promotion thresholds.")
    if _share(dist, "network") > 0.5:
        recommendations.append("Over half the memories sit in the network tier: review how they are tiered.")
    if not hubs:
        recommendations.append(
            "No hubs yet: memories recalled together in a conversation (queries with a conversationId) "
            "become associated; hubs form as that repeats."
        )
    elif hubs[0]["totalConnections"] > 20:
        recommendations.append("The top hub has over 20 connections: consider splitting it into sharper memories.")
    return recommendations


def _session_numbers(session_metrics: dict) -> dict:
    numbers = {}
    for key in METRIC_KEYS:
        value = session_metrics.get(key)
        try:
            number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0
        except OverflowError:  # an integer beyond a double
            number = METRIC_MAX
        numbers[key] = min(max(number, 0.0), METRIC_MAX) if not math.isnan(number) else 0.0
    return numbers


def reflection_record(
    *, namespace: str, reflection_type: str, session_metrics: dict, conversation_id: str | None = None
) -> MetaReflection:
    session = _session_numbers(session_metrics)
    with transaction.atomic():
        quotes_lock(namespace)  # the hub previews quote memories: no purge or edit in between
        return _reflection_create(
            namespace=namespace,
            reflection_type=reflection_type,
            conversation_id=conversation_id,
            session_metrics=session_metrics,
            session=session,
        )


def _reflection_create(
    *, namespace: str, reflection_type: str, conversation_id: str | None, session_metrics: dict, session: dict
) -> MetaReflection:
    fr = friction(
        loaded=session["memories_loaded"],
        accessed=session["memories_accessed"],
        load_time_ms=session["context_load_time_ms"],
    )
    hubs = [
        {
            "memoryId": str(hub.memory.pk),
            "preview": hub.memory.content[:HUB_PREVIEW_CHARS],
            "totalConnections": hub.total_connections,
            "avgStrength": round(hub.avg_strength, 4),
        }
        for hub in associations_hubs(namespace=namespace, min_connections=HUB_MIN_CONNECTIONS, limit=HUB_LIMIT)
    ]
    metrics = {
        "friction": {"wasteRatio": fr.waste_ratio, "feel": fr.feel},
        "retrieval": retrieval(
            queries=session["queries_executed"],
            results=session["total_results_returned"],
            relevance=session["total_relevance_score"],
            relevant=session["relevant_results"],
        ),
        "tierDistribution": tier_counts(namespace=namespace),
        "hubs": hubs,
    }
    return MetaReflection.objects.create(
        namespace=namespace,
        reflection_type=reflection_type,
        conversation_id=conversation_id,
        session_metrics=session_metrics,
        metrics=metrics,
        insights=insights_for(metrics),
        recommendations=recommendations_for(metrics, session),
    )


def reflections_hubs_scrub(*, namespace: str, memory_ids, contents: dict[str, str] | None = None) -> int:
    """Reflections' hub entries of ``memory_ids``: removed (a purge) or, for the ids in
    ``contents`` (an edit), given the new text's preview. Rows changed."""
    ids = {str(memory_id) for memory_id in memory_ids}
    contents = contents or {}
    match = Q()
    for memory_id in ids:
        match |= Q(metrics__contains={"hubs": [{"memoryId": memory_id}]})
    if not match:
        return 0
    changed = 0
    for reflection in MetaReflection.objects.filter(match, namespace=namespace).only("metrics"):
        hubs = []
        for hub in reflection.metrics.get("hubs") or []:
            memory_id = hub.get("memoryId")
            if memory_id in contents:
                hubs.append({**hub, "preview": contents[memory_id][:HUB_PREVIEW_CHARS]})
            elif memory_id not in ids:
                hubs.append(hub)
        MetaReflection.objects.filter(pk=reflection.pk).update(metrics={**reflection.metrics, "hubs": hubs})
        changed += 1
    return changed


def reflections_forget_namespace(*, namespace: str) -> tuple[int, int]:
    """Delete every reflection of the namespace, both kinds (its purge); (meta, conversation) rows."""
    meta, _ = MetaReflection.objects.filter(namespace=namespace).delete()
    conversation, _ = ConversationReflection.objects.filter(namespace=namespace).delete()
    return meta, conversation


def conversation_reflection_record(*, namespace: str, **fields) -> ConversationReflection:
    return ConversationReflection.objects.create(namespace=namespace, **fields)
