"""The reflections app's reads: the latest reflections of both kinds, their averages, past handshakes."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Avg, Count, Max, Min, Q, QuerySet

from reflections.models import ConversationReflection, Handshake, MetaReflection


@dataclass(frozen=True)
class ReflectionStats:
    """The averages of a namespace's conversation reflections (``GET /reflection/stats``)."""

    total_reflections: int
    avg_context_quality: float | None
    avg_continuity_score: float | None
    corrections_needed: int
    emergence_moments: int
    first_reflection_at: datetime | None
    last_reflection_at: datetime | None


def _newest(rows: QuerySet, *, order: tuple[str, ...], limit: int, **lookups) -> list:
    """The first ``limit`` of ``rows`` by ``order`` that match every lookup given (None: not filtered)."""
    given = {lookup: value for lookup, value in lookups.items() if value is not None}
    return list(rows.filter(**given).order_by(*order)[:limit])


def reflections_latest(
    *, namespace: str, limit: int, conversation_id: str | None = None, reflection_type: str | None = None
) -> list[MetaReflection]:
    return _newest(
        MetaReflection.objects.filter(namespace=namespace),
        order=("-created_at", "-id"),
        limit=limit,
        conversation_id=conversation_id,
        reflection_type=reflection_type,
    )


def conversation_reflections_history(
    *, namespace: str, limit: int, conversation_id: str | None = None, min_quality: int | None = None
) -> list[ConversationReflection]:
    return _newest(
        ConversationReflection.objects.filter(namespace=namespace),
        order=("-reflected_at", "-id"),
        limit=limit,
        conversation_id=conversation_id,
        context_quality__gte=min_quality,
    )


def _rounded(value: float | None) -> float | None:
    return round(value, 2) if value is not None else None


def conversation_reflections_stats(*, namespace: str) -> ReflectionStats:
    totals = ConversationReflection.objects.filter(namespace=namespace).aggregate(
        total=Count("id"),
        avg_quality=Avg("context_quality"),
        avg_continuity=Avg("continuity_score"),
        corrections=Count("id", filter=Q(needed_correction=True)),
        emergence=Count("id", filter=Q(had_emergence_moment=True)),
        first=Min("reflected_at"),
        last=Max("reflected_at"),
    )
    return ReflectionStats(
        total_reflections=totals["total"],
        avg_context_quality=_rounded(totals["avg_quality"]),
        avg_continuity_score=_rounded(totals["avg_continuity"]),
        corrections_needed=totals["corrections"],
        emergence_moments=totals["emergence"],
        first_reflection_at=totals["first"],
        last_reflection_at=totals["last"],
    )


def handshakes_history(*, namespace: str, limit: int) -> list[Handshake]:
    return _newest(Handshake.objects.filter(namespace=namespace), order=("-created_at", "-id"), limit=limit)
