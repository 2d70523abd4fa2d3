"""The reflections app's writes and reads: ``reflections`` (both kinds) and ``handshakes``."""
