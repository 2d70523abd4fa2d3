"""HTTP for memories: validate the input, call one service or selector, render the output
serializer. No rules here.

A module per resource: ``memories`` (``MemoryViewSet``, ``/memories/``: add, add-batch,
list, get, PATCH, DELETE, restore), with the sub-resources it mixes in under the same
prefix — ``memory_recall`` (query, feedback, bootstrap), ``memory_tiers`` (update-tier),
``memory_resonance`` (catalysts, stats); ``associations`` and ``namespaces`` have their
own prefixes.
"""
