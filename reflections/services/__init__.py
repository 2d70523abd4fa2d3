"""The reflections app's writes: ``reflections`` (both kinds) and ``handshakes``; the reads are in ``reflections.selectors``."""
