"""Results as readable text, for a person at a terminal (``anima``) and for a model
reading a tool result (``anima-mcp``): one line per memory, with the id to act on it and
its corrections (``corrects 1 older memory: 1a2b3c4d``, ``superseded by 5e6f7a8b``)."""

from __future__ import annotations

from anima_client import models as m

TIER_HEADINGS = {
    "pinned": "Pinned — always loaded first",
    "stable": "Stable — long-lived, most reinforced",
    "thread": "Thread — recurring, used across conversations",
    "active": "Active — recent",
}
#: How a handshake Anima composed for a read-only key, and did not store, is labelled.
HANDSHAKE_NOT_STORED = "composed for a read-only key, not stored"
#: How ``add_text`` says to confirm a suggested correction (``{old}``, ``{new}``: memory ids).
CONFIRM_CORRECTION = "anima correct {old} --by {new}"


_PLURALS = {"memory": "memories", "older memory": "older memories", "access": "accesses"}


def plural(count: int, noun: str) -> str:
    return f"{count} {noun if count == 1 else _PLURALS[noun]}"


def short_id(memory_id: object) -> str:
    """The first 8 characters of a memory id, enough to tell memories apart in a list."""
    return str(memory_id)[:8]


def correction_notes(memory: m.Memory) -> list[str]:
    """What a memory corrected and what corrected it, by short ids (empty for most memories)."""
    notes = []
    if memory.supersedes:
        ids = ", ".join(short_id(memory_id) for memory_id in memory.supersedes)
        notes.append(f"corrects {plural(len(memory.supersedes), 'older memory')}: {ids}")
    if memory.superseded_by is not None:
        notes.append(f"superseded by {short_id(memory.superseded_by)}")
    return notes


def memory_line(memory: m.Memory, *, extra: str = "") -> str:
    labels = []
    if memory.category:
        labels.append(memory.category)
    if memory.tags:
        labels.append("#" + " #".join(memory.tags))
    labels.append(f"φ {memory.resonance_phi:.2f}")
    if memory.is_catalyst:
        labels.append("catalyst")
    if memory.pinned:
        labels.append("pinned")
    if extra:
        labels.append(extra)
    labels.extend(correction_notes(memory))
    return f"- {memory.content}\n  [{memory.id} · {' · '.join(labels)}]"


def bootstrap_text(result: m.Bootstrap, *, conversation_id: str | None = None) -> str:
    distribution = result.distribution
    loaded = len(result.all)
    lines = [
        f"Anima memory: {plural(loaded, 'memory')} loaded of {distribution.total} stored "
        f"(active {distribution.active}, thread {distribution.thread}, stable {distribution.stable})."
    ]
    if conversation_id:
        lines.append(f"Conversation id: {conversation_id}")
    if not loaded:
        lines.append("")
        lines.append("No memories yet. Store what you learn that is worth keeping.")
        return "\n".join(lines)
    for tier in ("pinned", "stable", "thread", "active"):
        memories = getattr(result.memories, tier)
        if not memories:
            continue
        lines.append("")
        lines.append(f"## {TIER_HEADINGS[tier]} ({len(memories)})")
        lines.extend(memory_line(memory) for memory in memories)
    return "\n".join(lines)


def query_text(result: m.QueryResult) -> str:
    if not result.memories:
        return f"No memories match {result.query!r}."
    lines = [f"{plural(result.count, 'memory')} for {result.query!r} (best first):"]
    lines.extend(
        memory_line(hit, extra=f"{hit.tier} · similarity {hit.similarity:.2f}") for hit in result.memories
    )
    return "\n".join(lines)


def add_text(result: m.AddResult, *, confirm: str = CONFIRM_CORRECTION) -> str:
    """The stored (or reinforced) memory, and a line per older memory it may correct with
    how to ``confirm`` it (a template of ``{old}`` and ``{new}``)."""
    memory = result.memory
    if result.is_duplicate:
        return f"Already remembered as {memory.id} (tier {memory.tier}, {plural(memory.access_count, 'access')}); reinforced."
    truncated = " (long: only its beginning was embedded)" if memory.embedding_truncated else ""
    lines = [f"Remembered as {memory.id} (tier {memory.tier}){truncated}."]
    lines.extend(
        f"- may correct {short_id(old)} — confirm with: {confirm.format(old=old, new=memory.id)}"
        for old in result.possibly_corrects
    )
    return "\n".join(lines)


def correction_text(result: m.Correction) -> str:
    """The correcting memory's id, and the old fact next to the new one."""
    old, new = result.corrected, result.memory
    return (
        f"Corrected {old.id}: superseded by {new.id} (the old fact stays in the history).\n"
        f"- was: {old.content}\n- now: {new.content}"
    )


def add_batch_text(result: m.AddBatchResult, *, labels: list[str] | None = None) -> str:
    """The sums, then one line per invalid item (``labels[index]`` names where it came from)."""
    counts = result.counts
    lines = [
        f"{len(result.items)} items: {counts.created} stored, {counts.duplicate} already remembered "
        f"(reinforced), {counts.invalid} invalid."
    ]
    for item in result.invalid:
        where = labels[item.index] if labels else f"item {item.index}"
        lines.append(f"- {where}: {item.field}: {item.message}")
    return "\n".join(lines)


def deleted_text(result: m.DeletedMemory) -> str:
    return f"Deleted {result.id} (soft: it can still be restored)."


def purged_text(result: m.PurgedMemory) -> str:
    counts = result.counts
    return (
        f"Purged {result.id} for good: {plural(counts.memories, 'memory')} removed, "
        f"{counts.copies_scrubbed} copies of its text scrubbed, {counts.handshakes} handshakes and "
        f"{counts.task_records} task records removed."
    )


def feedback_text(result: m.FeedbackResult) -> str:
    verdict = "useful" if result.useful else "not useful"
    lines = [f"Marked {plural(len(result.updated), 'memory')} {verdict}."]
    lines.extend(
        f"- {memory.memory_id}: φ {memory.resonance_phi:.2f}, {plural(memory.access_count, 'access')}"
        for memory in result.updated
    )
    if result.not_found:
        lines.append(f"No such memory (nothing changed): {', '.join(str(memory_id) for memory_id in result.not_found)}")
    return "\n".join(lines)


def tier_change_text(result: m.TierChange) -> str:
    memory = result.memory
    if result.promotion is None:
        return f"{memory.id} is already in tier {memory.tier}."
    return f"Moved {memory.id} from {result.promotion.from_tier} to {result.promotion.to_tier}: {memory.content}"


def stats_text(stats: m.PhiStats) -> str:
    lines = [
        f"memories:       {stats.total_memories}",
        f"catalysts:      {stats.catalyst_count}",
        f"total φ:        {stats.total_phi}",
        f"average φ:      {stats.avg_phi}",
        f"highest φ:      {stats.max_phi}",
    ]
    if stats.top_category is not None:
        top = stats.top_category
        lines.append(f"top category:   {top.category} ({plural(top.memory_count, 'memory')}, φ {top.total_phi})")
    return "\n".join(lines)


def reflection_text(reflection: m.MetaReflection) -> str:
    lines = [f"Reflection on conversation {reflection.conversation_id} recorded."]
    friction = reflection.metrics.get("friction") if isinstance(reflection.metrics, dict) else None
    if isinstance(friction, dict) and friction.get("feel"):
        lines.append(f"Feel: {friction['feel']} (waste ratio {friction.get('wasteRatio')}).")
    if reflection.insights:
        lines.append("Insights:")
        lines.extend(f"- {text}" for text in reflection.insights)
    if reflection.recommendations:
        lines.append("Recommendations:")
        lines.extend(f"- {text}" for text in reflection.recommendations)
    return "\n".join(lines)


def handshake_text(handshake: m.Handshake) -> str:
    if handshake.id is None:  # a read-only key's: composed for this request, never stored
        return f"{handshake.prompt_text}\n\n({HANDSHAKE_NOT_STORED})"
    return f"{handshake.prompt_text}\n\n(handshake {handshake.id}, valid until {handshake.expires_at:%Y-%m-%d %H:%M} UTC)"
