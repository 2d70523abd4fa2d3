"""What a namespace name is: the one rule for the ``X-Anima-Namespace`` header, API keys,
imports and ``ANIMA_DEFAULT_NAMESPACE``.

1-64 ASCII letters, digits, ``-`` or ``_``, matched whole (``fullmatch``: a ``$`` anchor
would also accept a trailing newline, a namespace no key could act in). No Django
imports: the settings module checks its default namespace with it.
"""

import re

MAX_NAMESPACE_CHARS = 64
NAMESPACE_PATTERN = re.compile(rf"[-a-zA-Z0-9_]{{1,{MAX_NAMESPACE_CHARS}}}")
INVALID_NAMESPACE = f"Invalid namespace {{shown}}: a namespace is 1-{MAX_NAMESPACE_CHARS} letters, digits, '-' or '_'."
#: A refused name is quoted with ``repr`` and cut to this length (it may be a whole header).
_SHOWN_CHARS = 80


def is_valid_namespace(name) -> bool:
    """Whether ``name`` is a string the service accepts as a namespace."""
    return isinstance(name, str) and NAMESPACE_PATTERN.fullmatch(name) is not None


def namespace_error(name) -> str:
    """The message for a refused namespace, quoting it (``repr``: a newline shows as ``\\n``)."""
    shown = repr(name)
    if len(shown) > _SHOWN_CHARS:
        shown = shown[: _SHOWN_CHARS - 1] + "…"
    return INVALID_NAMESPACE.format(shown=shown)
