"""Export and import of memories as JSON Lines (SPEC §7: round-trip without loss).

``format`` (the keys of a line), ``export`` (``memories_export``: a streaming read),
``parsing`` (a line → a validated row: every rule of a line, no writes) and
``importing`` (``memories_import``: batches, embedding, merges and corrections, the
summary, resuming).
The management commands ``export_memories`` and ``import_memories`` use the names below.
"""

from memories.portability.export import EXPORT_CHUNK_SIZE, memories_export, memories_export_count
from memories.portability.format import EMBEDDING_KEYS, MEMORY_KEYS
from memories.portability.importing import (
    IMPORT_BATCH_SIZE,
    ImportInterrupted,
    ImportSummary,
    InvalidNamespace,
    memories_import,
)
from memories.portability.parsing import InvalidLine, import_row_parse

__all__ = [
    "EMBEDDING_KEYS",
    "EXPORT_CHUNK_SIZE",
    "IMPORT_BATCH_SIZE",
    "MEMORY_KEYS",
    "ImportInterrupted",
    "ImportSummary",
    "InvalidLine",
    "InvalidNamespace",
    "import_row_parse",
    "memories_export",
    "memories_export_count",
    "memories_import",
]
