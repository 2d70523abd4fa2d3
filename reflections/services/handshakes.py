"""The handshake: a short first-person continuity text for the next conversation.

Built without a language model by a fixed template, so the same data always gives the
same text: it opens with the theme of the highest-φ memory, names the top 3 memories by
φ then access count, the newest 3 open threads (category ``research_thread``, tier
active or thread) labelled α, β, γ, the latest reflection's first recommendation when
there is one, and ends with an invitation to continue. A handshake is reused for 24
hours unless a new one is forced, and expires after 7 days. A handshake records the ids
of every memory it quotes (``quoted_ids``): purging or editing one of them deletes it,
so no handshake keeps serving a text that is gone; nor one quoting a memory superseded or
expired since (it is composed anew): it quotes current facts only. A read-only key never
writes one.
"""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from memories.locks import quotes_lock
from memories.models import CURRENT, LIVE, Memory, Tier
from reflections.models import HANDSHAKE_LIFETIME, Handshake, MetaReflection

REUSE_FOR = timedelta(hours=24)
TOP_COUNT = 3
THREAD_CATEGORY = "research_thread"
THREAD_LABELS = ("α", "β", "γ")
THEME_WORDS = 8
QUOTE_CHARS = 80


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return f"“{text[:QUOTE_CHARS].rstrip()}…”" if len(text) > QUOTE_CHARS else f"“{text}”"


def _theme(memory: Memory) -> str:
    if memory.category:
        return memory.category.replace("_", " ")
    words = memory.content.split()
    return " ".join(words[:THEME_WORDS]) + ("…" if len(words) > THEME_WORDS else "")


def handshake_text(*, top: list[Memory], threads: list[Memory], recommendation: str | None) -> str:
    if not top:
        return (
            "I'm starting fresh: I hold no memories in this space yet. "
            "What matters to you, so that I can keep it?"
        )
    parts = [f"I'm picking up where we left off. What carries the most weight for me is {_theme(top[0])}."]
    named = "; ".join(f"{_quote(m.content)} (φ {m.resonance_phi:.2f})" for m in top)
    parts.append(f"The memories I lean on most: {named}.")
    if threads:
        listed = "; ".join(f"{label} {_quote(m.content)}" for label, m in zip(THREAD_LABELS, threads))
        parts.append(f"Open threads: {listed}.")
    if recommendation:
        parts.append(f"Last time I noted: {recommendation}")
    parts.append("Shall we continue from here?")
    return " ".join(parts)


def handshake_compose(*, namespace: str) -> Handshake:
    """A handshake built from the namespace's memories now, not saved."""
    top = list(
        Memory.objects.filter(LIVE, CURRENT, namespace=namespace)
        .defer("search_vector")
        .order_by("-resonance_phi", "-access_count", "id")[:TOP_COUNT]
    )
    threads = list(
        Memory.objects.filter(LIVE, CURRENT, namespace=namespace, category=THREAD_CATEGORY, tier__in=[Tier.ACTIVE, Tier.THREAD])
        .defer("search_vector")
        .order_by("-created_at", "id")[: len(THREAD_LABELS)]
    )
    latest = (
        MetaReflection.objects.filter(namespace=namespace)
        .exclude(recommendations=[])
        .order_by("-created_at", "-id")
        .values_list("recommendations", flat=True)
        .first()
    )
    now = timezone.now()
    return Handshake(
        namespace=namespace,
        created_at=now,
        expires_at=now + HANDSHAKE_LIFETIME,
        prompt_text=handshake_text(top=top, threads=threads, recommendation=latest[0] if latest else None),
        top_memories=[{"id": str(m.pk), "content": m.content, "phi": m.resonance_phi} for m in top],
        quoted_ids=list(dict.fromkeys(m.pk for m in [*top, *threads])),
    )


def handshake_generate(*, namespace: str) -> Handshake:
    with transaction.atomic():
        quotes_lock(namespace)  # no purge or edit scrubs between the reading and the saving
        handshake = handshake_compose(namespace=namespace)
        handshake.save(force_insert=True)
    return handshake


def _quotes_a_past_fact(handshake: Handshake) -> bool:
    """Whether a memory the handshake quotes was superseded or expired since: then it is
    not reused (a corrected fact never comes back from a handshake)."""
    quoted = Memory.objects.filter(namespace=handshake.namespace, pk__in=handshake.quoted_ids)
    return quoted.exclude(CURRENT).exists()


def handshake_current(*, namespace: str, force: bool = False, save: bool = True) -> tuple[Handshake, bool]:
    """The latest unexpired handshake younger than 24 h, else a new one; (handshake, created).

    With ``save=False`` (a read-only key) nothing is written: without a recent handshake
    the answer is composed now and not kept (``id`` is ``None``, ``created`` false).
    """
    now = timezone.now()
    if not force:
        recent = (
            Handshake.objects.filter(namespace=namespace, created_at__gt=now - REUSE_FOR, expires_at__gt=now)
            .order_by("-created_at", "-id")
            .first()
        )
        if recent is not None and not _quotes_a_past_fact(recent):
            return recent, False
    if not save:
        return handshake_compose(namespace=namespace), False
    return handshake_generate(namespace=namespace), True


def handshakes_forget_quoting(*, namespace: str, memory_ids) -> int:
    """Delete the handshakes that quote any of ``memory_ids`` (purged or edited); how many."""
    deleted, _ = Handshake.objects.filter(namespace=namespace, quoted_ids__overlap=list(memory_ids)).delete()
    return deleted


def handshakes_forget_namespace(*, namespace: str) -> int:
    """Delete every handshake of the namespace (its purge); how many."""
    deleted, _ = Handshake.objects.filter(namespace=namespace).delete()
    return deleted


def handshakes_delete_expired(*, now=None) -> int:
    deleted, _ = Handshake.objects.filter(expires_at__lte=now or timezone.now()).delete()
    return deleted
