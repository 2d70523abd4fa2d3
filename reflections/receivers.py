"""How reflections answers memories' signals (contract: ``memories.signals``).

No handshake keeps quoting a purged or edited memory, no hub preview keeps a purged
memory's text or an edited one's old text, and a namespace's purge takes its
reflections and handshakes with it.
"""

from memories.models import Memory
from memories.signals import memories_purged, memory_edited, namespace_purged
from reflections.services.handshakes import handshakes_forget_namespace, handshakes_forget_quoting
from reflections.services.reflections import reflections_forget_namespace, reflections_hubs_scrub


def on_memories_purged(sender, *, namespace: str, memory_ids: set[str], texts: set[str], **kwargs) -> dict[str, int]:
    return {
        "copiesScrubbed": reflections_hubs_scrub(namespace=namespace, memory_ids=memory_ids),
        "handshakes": handshakes_forget_quoting(namespace=namespace, memory_ids=memory_ids),
    }


def on_memory_edited(sender, *, memory: Memory, content_changed: bool, category_changed: bool, **kwargs) -> dict[str, int]:
    """Handshakes quoting the memory go (the next one is built from the new text or theme);
    hub previews take the new text."""
    handshakes = handshakes_forget_quoting(namespace=memory.namespace, memory_ids=[memory.pk])
    scrubbed = 0
    if content_changed:
        contents = {str(memory.pk): memory.content}
        scrubbed = reflections_hubs_scrub(namespace=memory.namespace, memory_ids=[memory.pk], contents=contents)
    return {"copiesScrubbed": scrubbed, "handshakes": handshakes}


def on_namespace_purged(sender, *, namespace: str, **kwargs) -> dict[str, int]:
    handshakes = handshakes_forget_namespace(namespace=namespace)
    reflections, conversation_reflections = reflections_forget_namespace(namespace=namespace)
    return {"handshakes": handshakes, "reflections": reflections, "conversationReflections": conversation_reflections}


def connect() -> None:
    memories_purged.connect(on_memories_purged, sender=Memory, dispatch_uid="reflections.memories_purged")
    memory_edited.connect(on_memory_edited, sender=Memory, dispatch_uid="reflections.memory_edited")
    namespace_purged.connect(on_namespace_purged, sender=Memory, dispatch_uid="reflections.namespace_purged")
