"""Reflections and the handshake: what the service and the assistant note about conversations.

Imports the foundation, ``memories`` and ``keys``; never ``meta`` or ``benchmarks``.
"""
