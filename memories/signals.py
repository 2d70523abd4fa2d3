"""What memories tells the apps above it when memories go or change, so that it imports none of them.

Other apps keep copies of what memories holds (reflections quote hub previews,
handshakes quote memories) or rows of a namespace (API keys). Each connects receivers to
these signals in its ``AppConfig.ready()``; memories only sends them.

The contract, for every signal:

- It is sent inside the transaction that makes the change, after the memories' row
  locks and after the namespace's quotes lock (``memories.locks.quotes_lock``): a
  receiver works in that transaction, sees no concurrent quoting, and an error it raises
  rolls the whole change back (``send``, never ``send_robust``).
- ``sender`` is ``Memory``. A receiver returns the rows it changed or deleted as a
  ``dict[str, int]`` named as the purge report names them (``copiesScrubbed``,
  ``handshakes``, ``reflections``, ``conversationReflections``, ``apiKeys``; ``{}`` for
  none); ``counts_sent`` adds them up.

Signals and their arguments:

- ``memories_purged(namespace, memory_ids: set[str], texts: set[str])``: these memories
  (ids as strings, and their contents) are being removed for good.
- ``memory_edited(memory, content_changed: bool, category_changed: bool)``: a live
  memory's content or category changed (at least one is true).
- ``namespace_purged(namespace)``: everything of the namespace is being removed. Defined
  in ``anima_site.signals`` (keys, which imports no app, receives it) and re-exported here.
"""

from django.dispatch import Signal

from anima_site.signals import namespace_purged

__all__ = ["counts_sent", "memories_purged", "memory_edited", "namespace_purged"]

memories_purged = Signal()
memory_edited = Signal()


def counts_sent(signal: Signal, *, sender, **arguments) -> dict[str, int]:
    """Send ``signal`` and add up, name by name, the counts its receivers return."""
    totals: dict[str, int] = {}
    for _, counts in signal.send(sender=sender, **arguments):
        for name, count in (counts or {}).items():
            totals[name] = totals.get(name, 0) + count
    return totals
