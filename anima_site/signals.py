"""``namespace_purged(namespace)``: the one signal about a namespace as a whole.

Sent by memories' namespace purge; received by every app that keeps rows of a namespace
(keys, reflections). It lives in the foundation, not in ``memories.signals`` (which
re-exports it and documents the contract every signal follows), because keys may
import the foundation only.
"""

from django.dispatch import Signal

namespace_purged = Signal()
