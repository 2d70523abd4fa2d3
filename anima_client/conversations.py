"""The MCP server's view of a conversation: its id and the counters that become the
``sessionMetrics`` of ``POST /meta/conversation-end`` (SPEC §3 "Meta")."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from anima_client.models import Memory, QueryResult

#: Written into the session metrics, so a reflection tells which client sent it.
CLIENT_NAME = "anima-mcp"
#: A recall hit at least this similar counts as relevant (``relevant_results``).
RELEVANT_SIMILARITY = 0.5


def new_conversation_id() -> str:
    return f"mcp-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


@dataclass
class Conversation:
    """One conversation's id and what the server saw of it (the reflection's session metrics)."""

    id: str
    bootstrapped: bool = False
    loaded_ids: set[str] = field(default_factory=set)
    used_ids: set[str] = field(default_factory=set)
    recalled_ids: set[str] = field(default_factory=set)
    load_time_ms: float = 0.0
    queries_executed: int = 0
    total_results_returned: int = 0
    total_relevance_score: float = 0.0
    relevant_results: int = 0
    memories_stored: int = 0
    memories_promoted: int = 0

    def record_bootstrap(self, memories: list[Memory], elapsed_ms: float) -> None:
        self.bootstrapped = True
        self.load_time_ms += elapsed_ms
        self.loaded_ids.update(str(memory.id) for memory in memories)

    def record_recall(self, result: QueryResult) -> None:
        ids = {str(hit.id) for hit in result.memories}
        self.queries_executed += 1
        self.total_results_returned += result.count
        self.total_relevance_score += sum(hit.similarity for hit in result.memories)
        self.relevant_results += sum(1 for hit in result.memories if hit.similarity >= RELEVANT_SIMILARITY)
        self.recalled_ids |= ids
        self.used_ids |= ids

    def record_use(self, memory_id: Any) -> None:
        """A memory the conversation relied on outside recall (stored again, promoted)."""
        self.used_ids.add(str(memory_id))

    def session_metrics(self) -> dict[str, Any]:
        """The counters of SPEC §3 ``conversation-end``, plus a few of our own (passed through).

        ``memories_accessed`` counts the loaded memories that were used later (recalled,
        promoted or stored again), so that waste = loaded − accessed means what it says.
        """
        return {
            "memories_loaded": len(self.loaded_ids),
            "memories_accessed": len(self.loaded_ids & self.used_ids),
            "context_load_time_ms": round(self.load_time_ms, 1),
            "queries_executed": self.queries_executed,
            "total_results_returned": self.total_results_returned,
            "total_relevance_score": round(self.total_relevance_score, 4),
            "relevant_results": self.relevant_results,
            "memories_recalled": len(self.recalled_ids),
            "memories_stored": self.memories_stored,
            "memories_promoted": self.memories_promoted,
            "client": CLIENT_NAME,
        }


class Conversations:
    """The open conversation of each MCP session."""

    def __init__(self, first_id: str | None = None):
        self._first_id = first_id
        self._open: dict[str, Conversation] = {}

    def current(self, session: str) -> Conversation:
        if session not in self._open:
            return self.start(session)
        return self._open[session]

    def start(self, session: str, conversation_id: str | None = None) -> Conversation:
        if conversation_id is None:
            conversation_id, self._first_id = self._first_id or new_conversation_id(), None
        self._open[session] = Conversation(id=conversation_id)
        return self._open[session]

    def close(self, session: str) -> None:
        self._open.pop(session, None)
